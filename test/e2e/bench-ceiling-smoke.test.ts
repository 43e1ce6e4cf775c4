/** Runs `npm run bench:ceiling` tiny (the bundled sample, the generated tokenizer, one chunk
 *  size dense+sparse and with ColBERT, one run each) into a temporary folder, and checks that the
 *  results file has the shape and values only a working run can give: every chunk enqueued
 *  embedded and stored once, CPU on the main, tokenizer and model threads (so the threads were
 *  told apart), figures consistent with the raw CPU seconds and the H100 estimate of
 *  bench/e2e/gpu-figures.ts, tokenizer CPU charged by the backend the worker reported (native:
 *  tokenizer plus GC/other threads, footnoted), targets consistent with their values, the stand-in
 *  label on the table. No timing thresholds: the targets are judged by the bench on real runs. Needs Redis. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import { GPU_ESTIMATES } from "../../bench/e2e/gpu-figures.js";
import { CEILING_LABEL, type CeilingResults } from "../../bench/lib/results-schema.js";
import { repoRoot } from "../../kit/harness.js";
import { resolveTokenizerBackend, type TokenizerBackendSetting } from "../../worker/adapters/tokenizer-backend.js";

const out = mkdtempSync(path.join(os.tmpdir(), "bench-ceiling-smoke-"));
after(() => rmSync(out, { recursive: true, force: true }));

const TINY = [
  "--corpus",
  path.join(repoRoot, "bench", "sample"),
  "--tokenizer",
  "generated",
  "--sizes",
  "32",
  "--colbert-sizes",
  "32",
  "--chunks",
  "60",
  "--colbert-chunks",
  "20",
  "--runs",
  "1",
  "--quiet-wait",
  "0",
  "--out",
  out,
];

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

test(
  "bench:ceiling (tiny) writes a results file with consistent per-thread figures",
  { timeout: 120_000 },
  async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(repoRoot, "dist", "bench", "ceiling", "run.js"), ...TINY],
      { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
    );
    const json = readdirSync(out).find((f) => f.endsWith(".json"));
    assert.ok(json, `no results file written; output:\n${stdout}`);
    const md = readFileSync(path.join(out, json.replace(/\.json$/, ".md")), "utf8");
    const r = JSON.parse(readFileSync(path.join(out, json), "utf8")) as CeilingResults;

    assert.equal(r.schema, 1);
    assert.equal(r.bench, "ceiling");
    assert.equal(r.label, CEILING_LABEL);
    assert.equal(r.corpus.kind, "sample");
    assert.ok(!JSON.stringify(r).includes(repoRoot), "the results file contains an absolute path of this machine");
    assert.ok(r.method.length >= 5 && r.method.every((m) => m.length > 20), "the run does not say how it was done");
    const h100 = GPU_ESTIMATES.find((g) => g.gpu.startsWith("H100"))!;
    assert.deepEqual([r.h100.low, r.h100.high], [h100.low, h100.high]);

    assert.deepEqual(
      r.cases.map((c) => [c.mode, c.targetTokens, c.runs.length]),
      [
        ["dense+sparse", 32, 1],
        ["colbert", 32, 1],
      ],
    );
    for (const c of r.cases) {
      const run = c.runs[0];
      const what = `${c.mode} ${c.targetTokens}`;
      assert.ok(run.chunksEnqueued >= 10, `${what}: only ${run.chunksEnqueued} chunks`);
      assert.equal(run.chunks, run.chunksEnqueued, `${what}: chunks embedded`);
      assert.equal(run.pointsStored, run.chunksEnqueued, `${what}: points stored`);
      assert.equal(run.failedJobs, 0);
      assert.deepEqual(
        run.vectorSizes,
        c.mode === "colbert" ? { dense: 1024, colbert: 1024 } : { dense: 1024 },
        `${what}: the worker did not run the stand-in session's BGE-M3 shapes`,
      );
      assert.ok(run.tokens > 2 * run.chunks && run.tokens / run.chunks <= 34, `${what}: ${run.tokens} tokens`);
      assert.ok(run.batches >= 1 && run.sinkRequests >= 1 && run.windowSeconds > 0);
      const cpu = run.cpuSeconds;
      assert.ok(cpu.main > 0, `${what}: no main-thread CPU`);
      assert.equal(cpu.tokenizer.length, Number(r.workerConfig.TOKENIZER_THREADS), `${what}: tokenizer threads found`);
      assert.ok(
        cpu.tokenizer.every((s) => s > 0),
        `${what}: tokenizer CPU ${cpu.tokenizer}`,
      );
      assert.ok(cpu.model > 0, `${what}: no model-thread CPU (the model thread was not told apart)`);
      assert.ok(cpu.other >= 0);

      const m = c.median;
      assert.deepEqual(m, c.perRun[0], "the median of one run is that run");
      assert.ok(close(m.mainPer1k, (cpu.main / run.chunks) * 1000));
      assert.ok(close(m.ceilingChunksPerSecond, run.chunks / cpu.main));
      assert.ok(close(m.ceilingTokensPerSecond, run.tokens / cpu.main));
      assert.ok(close(m.ratioToH100High, m.ceilingTokensPerSecond / h100.high));
      assert.ok(close(m.h100ChunksPerSecondLow, h100.low / m.meanTokens));
      // The backend the worker reported on /health decides what tokenizer CPU is (native: an upper bound).
      assert.ok(run.tokenizerBackend === "js" || run.tokenizerBackend === "native", `${what}: ${run.tokenizerBackend}`);
      const tokenizerCpu =
        cpu.tokenizer.reduce((a, b) => a + b, 0) + (run.tokenizerBackend === "native" ? cpu.other : 0);
      assert.ok(close(m.tokenizerTokensPerCpuSecond, run.tokens / tokenizerCpu));
    }

    assert.deepEqual(
      r.targets.map((t) => t.id),
      ["tokenizer-32", "colbert-32"],
      "32-token chunks have no ceiling target; the tokenizer and ColBERT targets apply at every size",
    );
    for (const t of r.targets)
      assert.equal(t.met, t.comparator === ">=" ? t.value >= t.threshold : t.value <= t.threshold);
    assert.equal(r.targets[1].value, r.cases[1].median.mainMicrosPerToken);
    assert.ok(md.includes(`**${CEILING_LABEL}**`), "the table is not labelled as a stand-in measurement");
    assert.match(md, /\| 32 with ColBERT \(\d+\) \|/);
    assert.match(md, /## Targets/);
    const setting = (r.workerConfig.TOKENIZER_BACKEND ?? "auto") as TokenizerBackendSetting;
    const expected = (await resolveTokenizerBackend(setting)).backend;
    for (const c of r.cases)
      for (const run of c.runs) assert.equal(run.tokenizerBackend, expected, "backend read from /health");
    const native = expected === "native";
    assert.equal(md.includes("† native tokenizer backend"), native, "the upper-bound footnote iff native");
    assert.equal(/upper bound of its CPU/.test(r.targets[0].description), native);
    assert.ok(
      r.method.some((l) => l.startsWith(`Tokenizer backend (the worker's /health): ${native ? "native" : "js"}`)),
    );
  },
);
