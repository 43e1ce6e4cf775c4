/** Keeps the README's performance numbers true: its Performance section names a results file
 *  under bench/results, and the tables there must be exactly what `node dist/bench/report.js
 *  <that file>` prints. Also checks how targets and ratios are computed from a results file. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { renderReport } from "../../bench/report-format.js";
import type { BenchResults, GranularityResult, ThroughputRun } from "../../bench/results.js";
import { percentile, unionLength } from "../../bench/stats.js";
import { evaluateTargets, speedRatio } from "../../bench/targets.js";
import { repoRoot } from "../../kit/harness.js";

test("the README's performance tables are the report of the results file it names", () => {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const section = /^## Performance\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme);
  assert.ok(section, "README.md has no \"## Performance\" section: add it with the output of `node dist/bench/report.js bench/results/<file>.json`");
  const named = /bench\/results\/[\w.-]+\.json/.exec(section[1]);
  assert.ok(named, "the README's Performance section names no bench/results/<file>.json");
  const file = path.join(repoRoot, named[0]);
  assert.ok(existsSync(file), `the README names ${named[0]}, which does not exist`);
  const expected = renderReport(JSON.parse(readFileSync(file, "utf8")) as BenchResults, named[0]);
  assert.ok(section[1].includes(expected), `the README's performance tables differ from \`node dist/bench/report.js ${named[0]}\`; paste its output`);
});

function run(kind: ThroughputRun["kind"], round: number, tokensPerSecond: number, paddingEfficiency = 0.9): ThroughputRun {
  return { kind, round, seconds: 1, chunks: 1, tokens: tokensPerSecond, paddedTokens: tokensPerSecond / paddingEfficiency, batches: 1, tokensPerSecond, chunksPerSecond: 1, paddingEfficiency };
}

test("ratios pair runs of the same round and take the median; targets say met or missed", () => {
  const turns = {
    granularity: "turns", runs: [run("model", 1, 100), run("e2e", 1, 95, 0.96), run("model", 2, 200), run("e2e", 2, 120), run("model", 3, 100), run("e2e", 3, 80), run("fifo", 1, 50), run("peer", 1, 60)],
  } as unknown as GranularityResult;
  assert.equal(speedRatio(turns, "e2e", "model"), 0.8); // rounds: 0.95, 0.6, 0.8
  assert.equal(speedRatio(turns, "e2e", "fifo"), 1.9); // fifo ran once: against e2e's median run (95)
  assert.equal(speedRatio(turns, "e2e", "peer"), 95 / 60);
  const targets = evaluateTargets({ granularities: [turns], tokenizers: undefined });
  const byId = Object.fromEntries(targets.map((t) => [t.id, t]));
  assert.equal(byId["e2e-vs-model"].met, false);
  assert.equal(byId["e2e-vs-fifo"].met, true);
  assert.equal(byId["e2e-vs-peer"].met, false);
  assert.equal(byId.padding.value, 0.96); // the median e2e run (95 tokens/s, round 1)
  assert.equal(byId["padding-pad1"], undefined, "a target whose measurement did not run is left out");
  assert.equal(byId["tokenizer-vs-model"], undefined);
});

test("stats helpers", () => {
  assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
  assert.equal(percentile([5, 1, 4, 2, 3], 99), 5);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(unionLength([{ start: 0, end: 2 }, { start: 1, end: 3 }, { start: 5, end: 6 }]), 4);
});
