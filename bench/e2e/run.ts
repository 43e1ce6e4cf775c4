/** `npm run bench -- [options]` (`--help` lists them): runs every measurement on the same
 *  chunks in one run, prints each result as it comes, then the report, and writes
 *  bench/results/<timestamp>-<commit>.json with a Markdown summary beside it. Exits non-zero
 *  if a run lost or failed jobs; a missed target is a result, not an error. */
import path from "node:path";
import { runBenchmark } from "./run-benchmark.js";
import { parseBenchArgs } from "./options.js";
import { displayPath, repoRoot } from "../lib/paths.js";
import { renderReport, renderSummary } from "./report-format.js";
import { resultsBaseName, writeResults } from "../lib/results-file.js";
import type { BenchResults } from "../lib/results-schema.js";

function problems(r: BenchResults): string[] {
  const out: string[] = [];
  for (const g of r.granularities) {
    for (const run of g.runs) {
      const e = run.e2e;
      if (e && (e.pointsWritten !== e.expectedPoints || e.failedJobs > 0)) {
        out.push(
          `${g.granularity} ${run.kind} #${run.round}: ${e.pointsWritten} of ${e.expectedPoints} points written, ${e.failedJobs} failed jobs`,
        );
      }
    }
  }
  if (r.latency && r.latency.failedJobs > 0) out.push(`latency: ${r.latency.failedJobs} failed jobs`);
  return out;
}

const args = process.argv.slice(2);
const opts = parseBenchArgs(args);
try {
  const results = await runBenchmark(opts, args);
  const dir = path.resolve(repoRoot, opts.out);
  const file = displayPath(path.join(dir, `${resultsBaseName(results)}.json`));
  console.log("\n" + renderReport(results, file));
  if (results.profile) {
    for (const t of results.profile) {
      console.log(
        `profile ${t.thread}: ${t.sampledSeconds.toFixed(1)} s sampled, ${t.idleSeconds.toFixed(1)} s idle; top: ${t.top
          .slice(0, 5)
          .map((f) => `${f.fn} ${f.seconds.toFixed(2)} s`)
          .join("; ")}`,
      );
    }
  }
  if (opts.write) {
    const written = writeResults(dir, results, renderSummary(results, file));
    console.log(`wrote ${displayPath(written.json)} and ${displayPath(written.md)}`);
  }
  const bad = problems(results);
  for (const p of bad) console.error(`problem: ${p}`);
  process.exit(bad.length ? 1 : 0);
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
