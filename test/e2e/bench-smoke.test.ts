/** Runs `npm run bench` end to end in a tiny mode (tiny generated model and tokenizer, a few
 *  dozen chunks of the bundled sample) into a temporary folder, and checks that the results
 *  file has every measurement with values that can only come from a working pipeline: the same
 *  token counts everywhere, every point written exactly once, padding efficiency in (0, 1], the
 *  peer computing the same vectors as the worker's model. Needs Redis. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import type { BenchResults, MeasurementKind } from "../../bench/lib/results-schema.js";
import { repoRoot } from "../../kit/harness.js";

const out = mkdtempSync(path.join(os.tmpdir(), "bench-smoke-"));
after(() => rmSync(out, { recursive: true, force: true }));

const TINY = [
  "--corpus",
  path.join(repoRoot, "bench", "sample"),
  "--tokenizer",
  "generated",
  "--layers",
  "2",
  "--hidden",
  "32",
  "--turn-chunks",
  "40",
  "--window-chunks",
  "8",
  "--latency-seconds",
  "2",
  "--latency-job-chunks",
  "4",
  "--repeat",
  "1",
  "--quiet-wait",
  "0",
  "--out",
  out,
  // Not the CPU default (1), so the PAD_MULTIPLE=1 variant runs too.
  "--pad-multiple",
  "8",
];

test(
  "bench (tiny mode) writes a results file with every measurement and sane values",
  { timeout: 120_000 },
  async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(repoRoot, "dist", "bench", "e2e", "run.js"), ...TINY],
      { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
    );
    const files = readdirSync(out);
    const json = files.find((f) => f.endsWith(".json"));
    assert.ok(json, `no results file written; output:\n${stdout}`);
    assert.ok(files.includes(json.replace(/\.json$/, ".md")), "no Markdown summary beside the results file");
    const r = JSON.parse(readFileSync(path.join(out, json), "utf8")) as BenchResults;

    assert.equal(r.schema, 1);
    assert.match(r.git.commit, /^[0-9a-f]{7,}$|^unknown$/);
    assert.ok(r.machine.cpus > 0 && r.machine.totalMemoryBytes > 0 && r.machine.node.startsWith("v"));
    assert.equal(r.model.layers, 2);
    assert.ok(r.model.parameters > 0 && r.model.fileBytes > 0);
    assert.equal(r.corpus.kind, "sample");
    assert.ok(!JSON.stringify(r).includes(repoRoot), "the results file contains an absolute path of this machine");

    for (const name of ["turns", "windows"] as const) {
      const g = r.granularities.find((x) => x.granularity === name);
      assert.ok(g, `no ${name} results`);
      const expected: MeasurementKind[] =
        name === "turns" ? ["model", "e2e", "e2e-pad1", "fifo", "peer"] : ["model", "e2e", "fifo", "peer"];
      assert.deepEqual([...new Set(g.runs.map((x) => x.kind))].sort(), [...expected].sort(), `${name}: measurements`);
      for (const run of g.runs) {
        const what = `${name} ${run.kind}`;
        assert.equal(run.chunks, g.lengths.count, `${what}: chunks`);
        assert.equal(run.tokens, g.lengths.total, `${what}: counted other tokens than the harness's tokenization`);
        assert.ok(
          run.tokens > 0 && run.seconds > 0 && Number.isFinite(run.tokensPerSecond) && run.tokensPerSecond > 0,
          `${what}: throughput`,
        );
        assert.ok(run.paddedTokens >= run.tokens, `${what}: fewer computed than real tokens`);
        assert.ok(
          run.paddingEfficiency > 0 && run.paddingEfficiency <= 1,
          `${what}: padding efficiency ${run.paddingEfficiency}`,
        );
        assert.ok(run.batches >= 1 && run.batches <= run.chunks, `${what}: batches`);
        if (run.e2e) {
          assert.equal(
            run.e2e.pointsWritten,
            run.e2e.expectedPoints,
            `${what}: points written to the Qdrant test server`,
          );
          assert.equal(run.e2e.expectedPoints, g.lengths.count);
          assert.equal(run.e2e.failedJobs, 0, `${what}: failed jobs`);
          assert.ok(
            run.e2e.analysis.modelBusySeconds > 0 && run.e2e.analysis.modelBusySeconds <= run.seconds * 1.05,
            `${what}: model busy time`,
          );
          assert.ok(run.peakRssBytes! > 0);
        }
      }
      const peer = g.runs.find((x) => x.kind === "peer")!;
      assert.ok(
        peer.peerDenseMaxCosineGap! < 1e-3,
        `${name}: transformers.js vectors differ from the worker model's (gap ${peer.peerDenseMaxCosineGap})`,
      );
      const perfect = g.planner.find((p) => p.padMultiple === 1 && p.batchOverheadTokens === 0);
      assert.equal(
        perfect?.paddingEfficiency,
        1,
        `${name}: the planner with no per-call cost and PAD_MULTIPLE=1 must not pad at all`,
      );
    }

    const l = r.latency!;
    assert.ok(l.jobs > 0 && l.failedJobs === 0, "latency: jobs");
    assert.ok(
      l.p50Ms > 0 && l.p50Ms <= l.p95Ms && l.p95Ms <= l.p99Ms && l.p99Ms <= l.maxMs,
      "latency: percentiles out of order",
    );

    const t = r.tokenizers!;
    assert.ok(t.js.tokens > 0 && t.native.tokens > 0 && t.js.tokensPerSecond > 0 && t.native.tokensPerSecond > 0);
    assert.equal(t.identicalIdsRate, 1, "the JS and native tokenizers disagree on the generated tokenizer");

    const ids = r.targets.map((x) => x.id).sort();
    assert.deepEqual(ids, [
      "e2e-vs-fifo",
      "e2e-vs-model",
      "e2e-vs-peer",
      "padding",
      "padding-pad1",
      "tokenizer-vs-model",
    ]);
    for (const x of r.targets) assert.equal(x.met, x.value >= x.threshold, `${x.id}: met flag`);
    assert.match(
      readFileSync(path.join(out, json.replace(/\.json$/, ".md")), "utf8"),
      /\| turns \| end to end \(worker\) \|/,
    );
  },
);
