/** Keeps docs/performance.md's numbers true: every block it introduces as the output of
 *  `node dist/bench/e2e/report.js bench/results/<file>.json` must be exactly what that command prints
 *  (throughput tables for a `npm run bench` file, figures and goals for a `npm run bench:priority`
 *  file). Also checks how targets and ratios are computed from a results file. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { renderResultsBlock } from "../../bench/e2e/report.js";
import type { GranularityResult, ThroughputRun } from "../../bench/lib/results-schema.js";
import { percentile, unionLength } from "../../bench/lib/stats.js";
import { evaluateTargets, speedRatio } from "../../bench/e2e/targets.js";
import { repoRoot } from "../../kit/harness.js";

function checkBlocks(page: string, where: string): string[] {
  const named = [...page.matchAll(/`node dist\/bench\/e2e\/report\.js (bench\/results\/[\w./-]+\.json)`/g)].map(
    (m) => m[1],
  );
  for (const name of named) {
    const file = path.join(repoRoot, name);
    assert.ok(existsSync(file), `${where} names ${name}, which does not exist`);
    const results = JSON.parse(readFileSync(file, "utf8")) as Parameters<typeof renderResultsBlock>[0];
    const expected = renderResultsBlock(results, name);
    const command = `node dist/bench/e2e/report.js ${name}`;
    assert.ok(page.includes(expected), `${where} differs from \`${command}\`; paste its output`);
  }
  return named;
}

test("docs/performance.md's tables are the report of the results files it names", () => {
  const page = readFileSync(path.join(repoRoot, "docs", "performance.md"), "utf8");
  const named = checkBlocks(page, "docs/performance.md");
  assert.ok(
    named.some((f) => !/\/(priority|queue|ceiling)\//.test(f)),
    "docs/performance.md shows no `npm run bench` results file",
  );
  assert.ok(
    named.some((f) => f.includes("/priority/")),
    "docs/performance.md shows no `npm run bench:priority` results file",
  );
});

test("the README's performance figures are the report of the results files it names", () => {
  checkBlocks(readFileSync(path.join(repoRoot, "README.md"), "utf8"), "README.md");
});

function run(
  kind: ThroughputRun["kind"],
  round: number,
  tokensPerSecond: number,
  paddingEfficiency = 0.9,
): ThroughputRun {
  return {
    kind,
    round,
    seconds: 1,
    chunks: 1,
    tokens: tokensPerSecond,
    paddedTokens: tokensPerSecond / paddingEfficiency,
    batches: 1,
    tokensPerSecond,
    chunksPerSecond: 1,
    paddingEfficiency,
  };
}

test("ratios pair runs of the same round and take the median; targets say met or missed", () => {
  const turns = {
    granularity: "turns",
    runs: [
      run("model", 1, 100),
      run("e2e", 1, 95, 0.96),
      run("model", 2, 200),
      run("e2e", 2, 120),
      run("model", 3, 100),
      run("e2e", 3, 80),
      run("fifo", 1, 50),
      run("peer", 1, 60),
    ],
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
  assert.equal(
    unionLength([
      { start: 0, end: 2 },
      { start: 1, end: 3 },
      { start: 5, end: 6 },
    ]),
    4,
  );
});
