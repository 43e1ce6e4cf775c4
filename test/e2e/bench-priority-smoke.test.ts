/** Runs `npm run bench:priority` in a tiny mode (tiny generated model and tokenizer, the bundled
 *  sample, one round of short phases) into a temporary folder, and checks that the results file
 *  has every figure with values only a working run can give: tokens in both lanes, every query
 *  answered 200 with a prompt-token count, percentiles in order, a backlog that never ran dry,
 *  goals consistent with their values. No timing thresholds: the goals are judged by the bench
 *  on real runs, not here. Needs Redis. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import type { PriorityResults } from "../../bench/lib/results-schema.js";
import { repoRoot } from "../../kit/harness.js";

const out = mkdtempSync(path.join(os.tmpdir(), "bench-priority-smoke-"));
after(() => rmSync(out, { recursive: true, force: true }));

const TINY = [
  "--quick",
  "--corpus",
  path.join(repoRoot, "bench", "sample"),
  "--tokenizer",
  "generated",
  "--layers",
  "2",
  "--hidden",
  "32",
  "--phase-seconds",
  "3",
  "--settle-seconds",
  "1",
  "--query-rate",
  "4",
  "--backlog-jobs",
  "400",
  "--quiet-wait",
  "0",
  "--out",
  out,
];

test(
  "bench:priority (tiny mode) writes a results file with every figure and sane values",
  { timeout: 90_000 },
  async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(repoRoot, "dist", "bench", "priority", "run.js"), ...TINY],
      { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
    );
    assert.match(stdout, /How it ran:/);
    const files = readdirSync(out);
    const json = files.find((f) => f.endsWith(".json"));
    assert.ok(json, `no results file written; output:\n${stdout}`);
    const md = readFileSync(path.join(out, json.replace(/\.json$/, ".md")), "utf8");
    const r = JSON.parse(readFileSync(path.join(out, json), "utf8")) as PriorityResults;

    assert.equal(r.schema, 1);
    assert.equal(r.bench, "priority-lane");
    assert.equal(r.corpus.kind, "sample");
    assert.equal(r.model.layers, 2);
    assert.ok(!JSON.stringify(r).includes(repoRoot), "the results file contains an absolute path of this machine");
    assert.ok(r.method.length >= 5 && r.method.every((m) => m.length > 20), "the run does not say how it was done");
    assert.equal(r.workerConfig.QUERY_API, true);
    assert.equal(r.workerConfig.QUERY_FILL_TOKENS, Math.floor(Number(r.workerConfig.MAX_BATCH_TOKENS) / 4));

    for (const b of [r.batchTimes.full, r.batchTimes.query]) {
      assert.equal(b.seconds.length, 3, `${b.name}: timed runs`);
      assert.ok(b.seconds.every((s) => s > 0) && b.medianMs > 0 && b.medianMs <= b.p95Ms, `${b.name}: times`);
      assert.ok(
        b.paddedTokens <= Number(r.workerConfig.MAX_BATCH_TOKENS) && b.realTokens <= b.paddedTokens && b.rows >= 1,
        `${b.name}: shape`,
      );
    }
    assert.ok(
      r.batchTimes.query.paddedTokens <= Number(r.workerConfig.QUERY_FILL_TOKENS) || r.batchTimes.query.rows === 1,
      "the lane's batch exceeds QUERY_FILL_TOKENS",
    );

    assert.deepEqual(
      r.phases.map((p) => p.kind),
      ["A", "B"],
    );
    for (const p of r.phases) {
      assert.ok(p.seconds >= 3 && p.queue.tokens > 0 && p.queue.batches > 0, `phase ${p.kind}: queued work`);
      assert.ok(p.minWaiting > 0, `phase ${p.kind}: the backlog ran dry`);
      assert.ok(
        p.queue.serviceSeconds.length > 0 && p.queue.serviceSeconds.every((s) => s >= 0),
        `phase ${p.kind}: service times`,
      );
      assert.ok(p.cpu.machine > 0 && p.cpu.measured > 0, `phase ${p.kind}: CPU accounting`);
    }
    const [A, B] = r.phases;
    assert.equal(A.interactive.tokens, 0, "phase A embedded query tokens");
    assert.equal(A.queries, undefined);
    const q = B.queries!;
    assert.equal(q.sent, 12, "4 queries per second for 3 s");
    assert.equal(q.failed, 0, `failed queries: ${q.firstError}`);
    assert.deepEqual(q.byStatus, { 200: 12 });
    assert.equal(B.interactive.chunks, 12, "every query text counted once in the interactive lane");
    assert.equal(
      B.interactive.tokens,
      q.promptTokens,
      "the worker's interactive tokens differ from the answers' usage.prompt_tokens",
    );
    assert.ok(B.interactive.batches >= 1 && B.interactive.serviceSeconds.length >= 1);

    const s = r.summary;
    assert.ok(
      s.queries.p50Ms > 0 &&
        s.queries.p50Ms <= s.queries.p95Ms &&
        s.queries.p95Ms <= s.queries.p99Ms &&
        s.queries.p99Ms <= s.queries.maxMs,
      "latency percentiles out of order",
    );
    assert.ok(s.queryTokenShare > 0 && s.queryTokenShare < 1, `query token share ${s.queryTokenShare}`);
    assert.ok(Number.isFinite(s.throughputDrop) && s.throughputDrop < 1, `drop ${s.throughputDrop}`);
    assert.ok(s.workerQueueInferMeanMs > 0 && s.workerQueueServiceMeanMs > 0 && s.workerInteractiveServiceMeanMs > 0);
    assert.ok(
      s.interactivePaddingEfficiency > 0 &&
        s.interactivePaddingEfficiency <= 1 &&
        s.queuePaddingEfficiency > 0 &&
        s.queuePaddingEfficiency <= 1,
    );
    assert.equal(r.backfill.failedJobs, 0);
    assert.ok(r.backfill.passes >= 1 && r.backfill.jobsAdded >= r.backfill.jobsPerPass);

    assert.deepEqual(
      r.goals.map((g) => g.id),
      ["query-p95", "queue-drop"],
    );
    const [p95, drop] = r.goals;
    assert.equal(p95.met, p95.value <= 2 && s.queries.failed === 0);
    assert.equal(drop.threshold, s.queryTokenShare);
    assert.equal(drop.met, drop.value < drop.threshold);
    assert.match(md, /\| p95 ÷ one batch \(model alone\) \|/);
    assert.match(md, /## Phases/);
  },
);
