/** The ceiling bench's arithmetic (bench/ceiling/figures.ts) on hand-made runs: per-1,000-chunk
 *  CPU, the main thread's ceiling, the H100 ratios, medians over runs, and the issue-15 targets
 *  met or missed exactly at their thresholds. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { evaluateCeilingTargets, medianFigures, runFigures, tokenizerCpuSeconds } from "../../bench/ceiling/figures.js";
import { renderCeilingTable } from "../../bench/ceiling/report-format.js";
import type { CeilingCase, CeilingRun } from "../../bench/lib/results-schema.js";

const H100 = { low: 600_000, high: 900_000 };

function run(chunks: number, tokens: number, main: number, tokenizer: number[], round = 1): CeilingRun {
  return {
    round,
    windowSeconds: 2,
    jobs: 10,
    chunksEnqueued: chunks,
    chunks,
    tokens,
    paddedTokens: tokens,
    batches: 5,
    sinkRequests: 5,
    pointsStored: chunks,
    vectorSizes: { dense: 1024 },
    failedJobs: 0,
    cpuSource: "schedstat",
    cpuSeconds: { main, tokenizer, model: 0.1, other: 0.2 },
    quietWait: { waitedSeconds: 0, othersShareBefore: NaN, quiet: false },
  };
}

function caseOf(mode: CeilingCase["mode"], targetTokens: number, runs: CeilingRun[]): CeilingCase {
  const perRun = runs.map((r) => runFigures(r, H100));
  return { mode, targetTokens, how: "", runs, perRun, median: medianFigures(perRun) };
}

test("runFigures: CPU per 1,000 chunks, the ceiling as 1 / main CPU per chunk, the H100 ratios", () => {
  const f = runFigures(run(2000, 940_000, 0.5, [1.5, 2.2]), H100);
  assert.equal(f.meanTokens, 470);
  assert.equal(f.mainPer1k, 0.25);
  assert.ok(Math.abs(f.tokenizerPer1k - 1.85) < 1e-12);
  assert.equal(f.modelPer1k, 0.05);
  assert.equal(f.ceilingChunksPerSecond, 4000);
  assert.equal(f.ceilingTokensPerSecond, 1_880_000);
  assert.equal(f.mainMicrosPerChunk, 250);
  assert.equal(f.tokenizerTokensPerCpuSecond, 940_000 / 3.7);
  assert.ok(Math.abs(f.ratioToH100High - 1_880_000 / 900_000) < 1e-12);
  assert.ok(Math.abs(f.ratioToH100Low - 1_880_000 / 600_000) < 1e-12);
  assert.equal(f.h100ChunksPerSecondHigh, 900_000 / 470);
  assert.equal(f.drainChunksPerSecond, 1000);
});

test("medianFigures takes the median of each figure over the runs", () => {
  const c = caseOf("dense+sparse", 128, [
    run(1000, 110_000, 0.1, [0.5], 1),
    run(1000, 110_000, 0.3, [0.4], 2),
    run(1000, 110_000, 0.2, [0.9], 3),
  ]);
  assert.equal(c.median.mainPer1k, 0.2);
  assert.equal(c.median.tokenizerPer1k, 0.5);
  assert.equal(c.median.ceilingChunksPerSecond, 5000);
});

test("targets: 2x the H100 high end at 512, 1x at 128, none at 16; tokenizer and ColBERT at every size", () => {
  // 512: exactly 2x the high end (1.8M tokens/s) is met; 128: just under 1x is missed.
  const cases = [
    caseOf("dense+sparse", 16, [run(1000, 15_000, 0.4, [0.05])]),
    caseOf("dense+sparse", 128, [run(1000, 110_000, 110_000 / 899_000, [0.44])]),
    caseOf("dense+sparse", 512, [run(1000, 450_000, 0.25, [1.8])]),
    caseOf("colbert", 128, [run(1000, 100_000, 0.5, [0.4])]),
    caseOf("colbert", 512, [run(1000, 400_000, 2.4, [1.6])]),
  ];
  const t = evaluateCeilingTargets(cases, H100);
  assert.deepEqual(
    t.map((x) => [x.id, x.met]),
    [
      ["ceiling-128", false],
      ["ceiling-512", true],
      ["tokenizer-16", true],
      ["tokenizer-128", true],
      ["tokenizer-512", true],
      ["colbert-128", true],
      ["colbert-512", false],
    ],
  );
  assert.equal(t[1].threshold, 2);
  assert.match(t[1].description, /1,800,000 tokens\/s = 4,000 chunks\/s, <= 250 us\/chunk/);
  assert.equal(t[2].value, 300_000);
  assert.match(t[2].description, /4 threads feed an H100/);
  assert.equal(t[5].value, 5, "0.5 s over 100,000 tokens is 5 µs per token: met at the threshold");
  assert.equal(t[6].value, 6);
});

test("native tokenizer backend: tokenizer CPU is tokenizer + GC/other threads, labelled an upper bound", () => {
  const js = { ...run(1000, 110_000, 0.1, [0.3, 0.1]), tokenizerBackend: "js" };
  const native = { ...run(1000, 110_000, 0.1, [0.3, 0.1]), tokenizerBackend: "native" };
  assert.equal(tokenizerCpuSeconds(js), 0.4);
  assert.ok(Math.abs(tokenizerCpuSeconds(native) - 0.6) < 1e-12, "0.4 in the tokenizer threads + 0.2 other");
  assert.ok(Math.abs(runFigures(native, H100).tokenizerTokensPerCpuSecond - 110_000 / 0.6) < 1e-6);
  assert.equal(runFigures(js, H100).tokenizerTokensPerCpuSecond, 110_000 / 0.4);
  // An older results file without the field counts the tokenizer threads only.
  assert.equal(tokenizerCpuSeconds(run(1000, 110_000, 0.1, [0.3])), 0.3);

  const [tn] = evaluateCeilingTargets([caseOf("dense+sparse", 16, [native])], H100);
  const [tj] = evaluateCeilingTargets([caseOf("dense+sparse", 16, [js])], H100);
  assert.ok(Math.abs(tn.value - 110_000 / 0.6) < 1e-6);
  assert.match(tn.description, /plus GC\/other threads \(native backend.*upper bound/);
  assert.doesNotMatch(tj.description, /upper bound/);

  const table = (c: CeilingCase) =>
    renderCeilingTable({
      label: "stand-in",
      cases: [c],
      h100: { gpu: "H100", low: H100.low, high: H100.high, how: "x" },
    } as never);
  assert.match(table(caseOf("dense+sparse", 16, [native])), /† native tokenizer backend/);
  assert.doesNotMatch(table(caseOf("dense+sparse", 16, [js])), /†/);
});
