/** `node dist/bench/e2e/report.js [results.json]`: prints the Markdown block docs/performance.md
 *  carries for a results file (default: the newest in bench/results): the throughput tables for
 *  a `npm run bench` file, the figures and goals for a `npm run bench:priority` file (one with
 *  `phases`), the per-cell table for a `npm run bench:queue` file, the table and targets of a `npm run bench:ceiling` file. `--summary` prints the longer per-run summary instead. */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { displayPath, repoRoot } from "../lib/paths.js";
import type { CeilingResults, PriorityResults, QueueBenchResults } from "../lib/results-schema.js";
import { renderCeilingBlock } from "../ceiling/report-format.js";
import { renderQueueReport } from "../queue/report-format.js";
import { renderPriorityReport, renderPrioritySummary } from "../priority/report-format.js";
import { renderReport, renderSummary } from "./report-format.js";
import type { BenchResults } from "../lib/results-schema.js";

function newestResults(): string {
  const dir = path.join(repoRoot, "bench", "results");
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  if (files.length === 0) throw new Error("no results file in bench/results; run `npm run bench` first");
  return path.join(dir, files[files.length - 1]);
}

/** The block for either kind of results file, as docs/performance.md carries it. */
export function renderResultsBlock(
  results: BenchResults | PriorityResults | QueueBenchResults | CeilingResults,
  file: string,
  summary = false,
): string {
  if ("bench" in results && results.bench === "ceiling") return renderCeilingBlock(results, file);
  if ("bench" in results && results.bench === "queue") return renderQueueReport(results, file);
  if ("phases" in results) return summary ? renderPrioritySummary(results, file) : renderPriorityReport(results, file);
  return summary ? renderSummary(results, file) : renderReport(results, file);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith("--")) ?? newestResults();
  const results = JSON.parse(readFileSync(file, "utf8")) as
    BenchResults | PriorityResults | QueueBenchResults | CeilingResults;
  process.stdout.write(renderResultsBlock(results, displayPath(file), args.includes("--summary")));
}
