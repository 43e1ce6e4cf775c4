/** Unit tests of the query lane's policy (worker/core/query-lane.ts): the model thread's merge
 *  rule (`nextModelRun`), the query-lane depth and the query batch cut. Pure: no Redis, no model. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { padTo } from "../../worker/core/padding.js";
import {
  cutQueryBatch,
  laneLabel,
  nextModelRun,
  QUERY_LANE_DEPTH,
  queryLaneDepth,
  type WaitingRun,
} from "../../worker/core/query-lane.js";

const q = (rows: number, paddedLength: number): WaitingRun => ({ rows, paddedLength, queryLane: true });
const b = (rows: number, paddedLength: number): WaitingRun => ({ rows, paddedLength });

test("nextModelRun: no query batch waiting = the oldest batch alone, never merged", () => {
  assert.deepEqual(nextModelRun([b(16, 512), b(1, 8), b(1, 8)], 1_000_000), [0]);
  assert.deepEqual(nextModelRun([b(2, 8)], 16), [0]);
});

test("nextModelRun: the oldest query batch overtakes queued ones and takes the other query batches that fit", () => {
  // Two queued batches wait, then three one-row queries (12, 20, 9 tokens): one run of the three.
  const waiting = [b(16, 512), b(16, 512), q(1, 16), q(1, 24), q(1, 16)];
  assert.deepEqual(nextModelRun(waiting, 4096), [2, 3, 4]);
  // Budget 48 = 2 rows of 24: the third query waits for the next run.
  assert.deepEqual(nextModelRun(waiting, 48), [2, 3]);
  // A query batch that does not fit is skipped, a later one that fits still joins (the rule scans them all).
  assert.deepEqual(nextModelRun([q(2, 16), q(4, 64), q(1, 8)], 64), [0, 2]);
  // The lead runs even when it alone exceeds the budget (the pool cut it; splitting is not the thread's job).
  assert.deepEqual(nextModelRun([q(8, 512), q(1, 8)], 1024), [0]);
});

/** The rule as the model thread applied it before it moved to core (splice-based), for comparison. */
function referenceRule(input: WaitingRun[], mergeTokens: number): WaitingRun[] {
  const waiting = [...input];
  const first = waiting.findIndex((r) => r.queryLane);
  const [lead] = waiting.splice(first >= 0 ? first : 0, 1);
  const group = [lead];
  if (!lead.queryLane) return group;
  let rows = lead.rows;
  let padded = lead.paddedLength;
  for (let i = 0; i < waiting.length;) {
    const r = waiting[i];
    const p = Math.max(padded, r.paddedLength);
    if (r.queryLane && p * (rows + r.rows) <= mergeTokens) {
      group.push(...waiting.splice(i, 1));
      rows += r.rows;
      padded = p;
    } else i++;
  }
  return group;
}

const waitingArb = fc.array(
  fc.record({
    rows: fc.integer({ min: 1, max: 64 }),
    paddedLength: fc.integer({ min: 1, max: 64 }).map((n) => n * 8),
    queryLane: fc.boolean(),
  }),
  { minLength: 1, maxLength: 30 },
);

test("nextModelRun: the thread's former choice; one lead, only query batches merged, under the budget", () => {
  fc.assert(
    fc.property(waitingArb, fc.integer({ min: 8, max: 65_536 }), (waiting, mergeTokens) => {
      const run = nextModelRun(waiting, mergeTokens);
      assert.deepEqual(
        run.map((i) => waiting[i]),
        referenceRule(waiting, mergeTokens),
      );
      assert.equal(new Set(run).size, run.length, "a batch picked twice");
      const firstQuery = waiting.findIndex((r) => r.queryLane);
      const lead = firstQuery >= 0 ? firstQuery : 0;
      assert.equal(run[0], lead, "the lead is the oldest query batch, else the oldest batch");
      if (run.length > 1) {
        const rows = run.reduce((n, i) => n + waiting[i].rows, 0);
        const padded = Math.max(...run.map((i) => waiting[i].paddedLength));
        assert.ok(rows * padded <= mergeTokens, `merged run of ${rows} x ${padded} exceeds ${mergeTokens}`);
        assert.ok(
          run.every((i) => waiting[i].queryLane),
          "a queued batch was merged",
        );
      }
    }),
  );
});

test("queryLaneDepth: one query batch in the thread, two only beside queued batches", () => {
  assert.equal(queryLaneDepth(0, 0), QUERY_LANE_DEPTH.alone);
  assert.equal(queryLaneDepth(1, 1), QUERY_LANE_DEPTH.alone);
  assert.equal(queryLaneDepth(2, 1), QUERY_LANE_DEPTH.besideQueued);
  assert.equal(queryLaneDepth(1, 0), QUERY_LANE_DEPTH.besideQueued);
  assert.deepEqual(QUERY_LANE_DEPTH, { alone: 1, besideQueued: 2 });
});

test("cutQueryBatch: oldest queries first, the fill never pads the query rows, fill budget respected", () => {
  const limits = { maxBatchTokens: 4096, maxBatchSize: 64, padMultiple: 8 };
  const queries = [
    { length: 30, pooledAt: 2 },
    { length: 12, pooledAt: 1 },
  ];
  const queued = [100, 31, 29, 20].map((length) => ({ length, pooledAt: 0 }));
  const cut = cutQueryBatch(queries, queued, limits, 128);
  assert.deepEqual(cut.lead, [queries[1], queries[0]]);
  assert.equal(cut.paddedLength, padTo(30, 8));
  // 128 / 32 = 4 rows: two queries and the two longest queued chunks of at least 90% of 32 tokens.
  assert.deepEqual(cut.fill, [queued[1], queued[2]]);
  assert.deepEqual(cutQueryBatch(queries, queued, limits, 0).fill, []);
});

test("laneLabel: the metric label values stay as users' dashboards know them", () => {
  assert.equal(laneLabel(true), "interactive");
  assert.equal(laneLabel(false), "queue");
  assert.equal(laneLabel(undefined), "queue");
});

test("nextModelRun: merged query batches also stay under the attention budget (rows x padded length²)", () => {
  // Three query batches of one 1024-token row: the tokens allow all three, 2 x 1024² cells only two.
  const waiting = [q(1, 1024), q(1, 1024), q(1, 1024)];
  assert.deepEqual(nextModelRun(waiting, 1_000_000), [0, 1, 2]);
  assert.deepEqual(nextModelRun(waiting, 1_000_000, 2 * 1024 * 1024), [0, 1]);
  // A short batch merged beside them would be padded to 1024 and count at that length.
  assert.deepEqual(nextModelRun([q(1, 1024), q(1, 1024), q(4, 8)], 1_000_000, 2 * 1024 * 1024), [0, 1]);
});

test("cutQueryBatch: the query rows and their fill stay under the attention budget", () => {
  const limits = { maxBatchTokens: 65_536, maxBatchSize: 64, padMultiple: 8, maxBatchAttention: 3 * 2048 * 2048 };
  const queries = Array.from({ length: 5 }, (_, k) => ({ length: 2048, pooledAt: k }));
  const queued = Array.from({ length: 5 }, () => ({ length: 2040, pooledAt: 0 }));
  const one = cutQueryBatch(queries, queued, limits, 65_536);
  assert.equal(one.lead.length, 3, "three 2048-token query rows fill 3 x 2048² cells");
  assert.equal(one.fill.length, 0);
  const two = cutQueryBatch(queries.slice(0, 1), queued, limits, 65_536);
  assert.deepEqual([two.lead.length, two.fill.length], [1, 2], "fill stops at the attention budget");
});
