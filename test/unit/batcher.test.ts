/** Property tests of the batcher: no chunk lost or duplicated, budget and size limits never
 *  exceeded, batches sorted by length, padding to the multiple, and the pool's waiting rules. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { BatchPool, FILL_MIN_SHARE, padTo, planBatches } from "../../worker/core/batcher.js";

const limitsArb = fc.record({
  maxBatchTokens: fc.integer({ min: 512, max: 32_768 }),
  maxBatchSize: fc.integer({ min: 1, max: 128 }),
  padMultiple: fc.constantFrom(1, 8, 16, 64),
});

test("planBatches: every item exactly once, limits respected, sorted, padded", () => {
  fc.assert(
    fc.property(limitsArb, fc.array(fc.integer({ min: 1, max: 512 }), { maxLength: 400 }), (limits, lengths) => {
      const items = lengths.map((length, id) => ({ id, length }));
      const batches = planBatches(items, limits);
      const seen = batches.flatMap((b) => b.items.map((i) => i.id)).sort((a, b) => a - b);
      assert.deepEqual(
        seen,
        items.map((i) => i.id),
      );
      let prevMin = Infinity;
      for (const b of batches) {
        assert.ok(b.items.length >= 1 && b.items.length <= limits.maxBatchSize);
        const max = Math.max(...b.items.map((i) => i.length));
        assert.equal(b.paddedLength, padTo(max, limits.padMultiple));
        assert.equal(b.paddedLength % limits.padMultiple, 0);
        assert.ok(b.paddedLength >= max);
        assert.equal(b.paddedTokens, b.paddedLength * b.items.length);
        if (b.items.length > 1)
          assert.ok(
            b.paddedTokens <= limits.maxBatchTokens,
            `batch of ${b.paddedTokens} tokens over ${limits.maxBatchTokens}`,
          );
        // sorted: lengths descend within and across batches
        for (let i = 1; i < b.items.length; i++) assert.ok(b.items[i - 1].length >= b.items[i].length);
        assert.ok(max <= prevMin);
        prevMin = Math.min(...b.items.map((i) => i.length));
      }
    }),
    { numRuns: 300 },
  );
});

/** Reference: sort, then fill each batch as full as the limits allow. */
function greedy(lengths: number[], limits: { maxBatchTokens: number; maxBatchSize: number; padMultiple: number }) {
  const sorted = [...lengths].sort((a, b) => b - a);
  const batches: number[][] = [];
  for (let i = 0; i < sorted.length;) {
    const pad = padTo(sorted[i], limits.padMultiple);
    const fit = Math.max(1, Math.min(limits.maxBatchSize, Math.floor(limits.maxBatchTokens / pad)));
    batches.push(sorted.slice(i, i + fit));
    i += fit;
  }
  return batches.map((b) => ({ rows: b.length, pad: padTo(b[0], limits.padMultiple) }));
}

test("planBatches: never costs more than greedy filling (padded tokens + per-batch overhead)", () => {
  fc.assert(
    fc.property(
      limitsArb,
      fc.integer({ min: 0, max: 2048 }),
      fc.array(fc.integer({ min: 1, max: 512 }), { minLength: 1, maxLength: 300 }),
      (limits, overhead, lengths) => {
        const plan = planBatches(
          lengths.map((length) => ({ length })),
          { ...limits, batchOverheadTokens: overhead },
        );
        const planCost = plan.reduce((a, b) => a + b.paddedTokens + overhead, 0);
        const greedyCost = greedy(lengths, limits).reduce((a, b) => a + b.rows * b.pad + overhead, 0);
        assert.ok(planCost <= greedyCost, `plan ${planCost} > greedy ${greedyCost}`);
      },
    ),
    { numRuns: 300 },
  );
});

test("planBatches: one long chunk is not padded together with many short ones", () => {
  const items = [{ length: 380 }, ...Array.from({ length: 20 }, () => ({ length: 12 }))];
  const plan = planBatches(items, { maxBatchTokens: 8192, maxBatchSize: 64, padMultiple: 8, batchOverheadTokens: 128 });
  assert.equal(plan.length, 2);
  assert.deepEqual(
    plan.map((b) => b.items.length),
    [1, 20],
  );
  const greedyPadded = greedy(
    items.map((i) => i.length),
    { maxBatchTokens: 8192, maxBatchSize: 64, padMultiple: 8 },
  ).reduce((a, b) => a + b.rows * b.pad, 0);
  assert.ok(plan.reduce((a, b) => a + b.paddedTokens, 0) * 10 < greedyPadded);
});

test("sorting pays: mixed lengths need far fewer padded tokens than arrival-order batches", () => {
  const rnd = fc.sample(fc.integer({ min: 4, max: 500 }), { numRuns: 2000, seed: 7 });
  const items = rnd.map((length) => ({ length }));
  const limits = { maxBatchTokens: 8192, maxBatchSize: 32, padMultiple: 8 };
  const sorted = planBatches(items, limits).reduce((a, b) => a + b.paddedTokens, 0);
  let fifo = 0;
  for (let i = 0; i < items.length; i += 32)
    fifo += 32 * padTo(Math.max(...items.slice(i, i + 32).map((x) => x.length)), 8);
  const real = rnd.reduce((a, b) => a + b, 0);
  assert.ok(real / sorted > 0.9, `sorted efficiency ${real / sorted}`);
  assert.ok(sorted < fifo * 0.7, `sorted ${sorted} vs fifo ${fifo}`);
});

test("BatchPool: waits for company while more is coming, not past the linger time", () => {
  const pool = new BatchPool<{ length: number; pooledAt: number }>({
    maxBatchTokens: 1024,
    maxBatchSize: 8,
    padMultiple: 8,
  });
  pool.add([
    { length: 10, pooledAt: 0 },
    { length: 12, pooledAt: 1 },
  ]);
  const early = pool.take({ now: 2, moreComing: true, lingerMs: 5 });
  assert.equal(early.batch, null);
  assert.equal(early.waitMs, 3);
  const late = pool.take({ now: 6, moreComing: true, lingerMs: 5 });
  assert.equal(late.batch?.items.length, 2);
  assert.equal(pool.size, 0);
});

test("BatchPool: runs at once when nothing else is coming, and full batches never wait", () => {
  const pool = new BatchPool<{ length: number; pooledAt: number }>({
    maxBatchTokens: 64,
    maxBatchSize: 4,
    padMultiple: 8,
  });
  pool.add([{ length: 3, pooledAt: 0 }]);
  assert.equal(pool.take({ now: 0, moreComing: false, lingerMs: 1000 }).batch?.items.length, 1);
  pool.add(Array.from({ length: 4 }, () => ({ length: 8, pooledAt: 0 })));
  assert.equal(pool.take({ now: 0, moreComing: true, lingerMs: 1000 }).batch?.items.length, 4);
});

test("BatchPool: remove() drops a failed job's chunks", () => {
  const pool = new BatchPool<{ length: number; pooledAt: number; job: string }>({
    maxBatchTokens: 1024,
    maxBatchSize: 8,
    padMultiple: 8,
  });
  pool.add([
    { length: 5, pooledAt: 0, job: "a" },
    { length: 6, pooledAt: 0, job: "b" },
    { length: 7, pooledAt: 0, job: "a" },
  ]);
  assert.equal(
    pool.remove((i) => i.job === "a"),
    2,
  );
  const { batch } = pool.take({ now: 0, moreComing: false, lingerMs: 0 });
  assert.deepEqual(
    batch?.items.map((i) => i.job),
    ["b"],
  );
});

test("BatchPool fifo: fixed-size batches in arrival order, no token budget, waits only for a full batch or the linger", () => {
  const pool = new BatchPool({ maxBatchTokens: 64, maxBatchSize: 3, padMultiple: 8, strategy: "fifo" });
  const lens = [5, 300, 7, 9, 2];
  pool.add(lens.map((length, i) => ({ length, pooledAt: i })));
  const first = pool.take({ now: 10, moreComing: true, lingerMs: 100 });
  assert.deepEqual(
    first.batch?.items.map((i) => i.length),
    [5, 300, 7],
  ); // arrival order, over the token budget
  assert.equal(first.batch?.paddedLength, 304);
  const partial = pool.take({ now: 10, moreComing: true, lingerMs: 100 });
  assert.equal(partial.batch, null);
  assert.equal(partial.waitMs, 100 - 7);
  assert.equal(pool.take({ now: 10, moreComing: true, lingerMs: 100, onlyFull: true }).batch, null);
  assert.deepEqual(
    pool.take({ now: 10, moreComing: false, lingerMs: 100 }).batch?.items.map((i) => i.length),
    [9, 2],
  );
  assert.equal(pool.size, 0);
});

// Priority lane (query texts): see BatchPool.takeQuery.
type LaneItem = { id: number; length: number; pooledAt: number; queryLane?: boolean };

test("BatchPool priority lane: queries first and at once, queued chunks fill up to the fill budget, nothing lost", () => {
  fc.assert(
    fc.property(
      limitsArb,
      fc.array(fc.integer({ min: 1, max: 512 }), { maxLength: 200 }),
      fc.array(fc.integer({ min: 1, max: 512 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 0, max: 32_768 }),
      (limits, queued, queries, fillTokens) => {
        const pool = new BatchPool<LaneItem>(limits);
        let id = 0;
        const q = queued.map((length) => ({ id: id++, length, pooledAt: 0 }));
        const i = queries.map((length, k) => ({ id: id++, length, pooledAt: k, queryLane: true }));
        pool.add([...q, ...i]);
        const fill = Math.min(fillTokens, limits.maxBatchTokens);
        const seen: number[] = [];
        let asked = 0;
        while (pool.querySize > 0) {
          const b = pool.takeQuery(fillTokens)!;
          const lead = b.items.filter((it) => it.queryLane);
          const rest = b.items.filter((it) => !it.queryLane);
          assert.ok(lead.length >= 1, "every interactive batch carries a query");
          // queries come first, oldest first, and the oldest waiting query is always taken
          assert.deepEqual(b.items.slice(0, lead.length), lead);
          assert.equal(lead[0].pooledAt, asked);
          lead.forEach((it, k) => assert.equal(it.pooledAt, asked + k));
          asked += lead.length;
          assert.ok(b.items.length <= limits.maxBatchSize);
          const leadPadded = padTo(Math.max(...lead.map((it) => it.length)), limits.padMultiple) * lead.length;
          if (lead.length > 1)
            assert.ok(leadPadded <= limits.maxBatchTokens, "the query rows alone respect the budget");
          if (rest.length > 0)
            assert.ok(
              b.paddedTokens <= fill,
              `fill took the batch to ${b.paddedTokens} padded tokens, over the fill budget ${fill}`,
            );
          // the fill never pads the query rows further, and each fill chunk is nearly as long as the rows
          assert.equal(b.paddedLength, padTo(Math.max(...lead.map((it) => it.length)), limits.padMultiple));
          for (const it of rest) assert.ok(it.length <= b.paddedLength && it.length >= FILL_MIN_SHARE * b.paddedLength);
          seen.push(...b.items.map((it) => it.id));
        }
        // take() never hands out queries, and what is left are exactly the queued chunks not used as fill
        const left: number[] = [];
        for (
          let r = pool.take({ now: 1e9, moreComing: false, lingerMs: 0 });
          r.batch;
          r = pool.take({ now: 1e9, moreComing: false, lingerMs: 0 })
        ) {
          assert.ok(r.batch.items.every((it) => !it.queryLane));
          left.push(...r.batch.items.map((it) => it.id));
        }
        assert.deepEqual(
          [...seen, ...left].sort((a, b) => a - b),
          [...q, ...i].map((it) => it.id),
        );
        if (fillTokens === 0)
          assert.ok(
            seen.every((x) => x >= q.length),
            "fill budget 0 = query-only batches",
          );
      },
    ),
  );
});

test("BatchPool priority lane: the fill takes only queued chunks about as long as the query rows, longest first; take() leaves queries alone", () => {
  const pool = new BatchPool<LaneItem>({ maxBatchTokens: 4096, maxBatchSize: 64, padMultiple: 1 });
  // queued: 10 chunks of 100 tokens, 3 of 12, 3 of 11, 5 of 10 (under 90% of 12); one 12-token query.
  const lengths = [...Array(10).fill(100), 12, 12, 12, 11, 11, 11, 10, 10, 10, 10, 10];
  pool.add(lengths.map((length, id) => ({ id, length, pooledAt: 0 })));
  pool.add([{ id: 99, length: 12, pooledAt: 5, queryLane: true }]);
  // Fill budget 60 tokens = 5 rows of 12: the query and the four longest fitting chunks (12, 12, 12, 11).
  const b = pool.takeQuery(60)!;
  assert.equal(b.items[0].id, 99);
  assert.equal(b.paddedLength, 12, "the 100-token chunks never pad the query row");
  assert.deepEqual(
    b.items.slice(1).map((it) => it.length),
    [12, 12, 12, 11],
  );
  assert.equal(pool.takeQuery(60), null);
  const next = pool.take({ now: 10, moreComing: false, lingerMs: 5 });
  assert.ok(next.batch && next.batch.items.every((it) => !it.queryLane));
  // With a fill budget of 0 the query runs alone, padded to its own length.
  pool.add([{ id: 100, length: 12, pooledAt: 20, queryLane: true }]);
  const alone = pool.takeQuery(0)!;
  assert.deepEqual(
    alone.items.map((it) => it.id),
    [100],
  );
  assert.equal(alone.paddedTokens, 12);
});

/** Limits with an attention budget (rows x padded length²) that always holds one row of the longest length. */
const attentionLimitsArb = fc
  .record({
    maxBatchTokens: fc.integer({ min: 512, max: 32_768 }),
    maxBatchSize: fc.integer({ min: 1, max: 128 }),
    padMultiple: fc.constantFrom(1, 8, 16, 64),
    extraRows: fc.double({ min: 0, max: 16, noNaN: true }),
  })
  .map(({ extraRows, ...l }) => {
    const longest = padTo(512, l.padMultiple);
    return { ...l, maxBatchAttention: Math.floor(longest * longest * (1 + extraRows)) };
  });

const cells = (b: { items: unknown[]; paddedLength: number }) => b.items.length * b.paddedLength ** 2;

test("planBatches with an attention budget: no batch over it, every item exactly once, token budget kept", () => {
  fc.assert(
    fc.property(
      attentionLimitsArb,
      fc.array(fc.integer({ min: 1, max: 512 }), { maxLength: 300 }),
      (limits, lengths) => {
        const items = lengths.map((length, id) => ({ id, length }));
        const batches = planBatches(items, limits);
        assert.deepEqual(
          batches.flatMap((b) => b.items.map((i) => i.id)).sort((a, b) => a - b),
          items.map((i) => i.id),
        );
        for (const b of batches) {
          assert.ok(cells(b) <= limits.maxBatchAttention, `${cells(b)} cells over ${limits.maxBatchAttention}`);
          assert.ok(b.items.length <= limits.maxBatchSize);
          if (b.items.length > 1) assert.ok(b.paddedTokens <= limits.maxBatchTokens);
        }
      },
    ),
  );
});

test("planBatches: the attention budget binds for long rows, not for short ones", () => {
  const limits = { maxBatchTokens: 16_384, maxBatchSize: 64, padMultiple: 8, maxBatchAttention: 2 * 4096 * 4096 };
  const long = planBatches(
    Array.from({ length: 8 }, () => ({ length: 4096 })),
    limits,
  );
  assert.deepEqual(
    long.map((b) => b.items.length),
    [2, 2, 2, 2],
    "4 rows of 4096 fit the tokens, only 2 the attention budget",
  );
  const short = planBatches(
    Array.from({ length: 64 }, () => ({ length: 256 })),
    limits,
  );
  assert.deepEqual(
    short.map((b) => b.items.length),
    [64],
  );
});

test("BatchPool with an attention budget: take() and takeQuery() stay under it and lose nothing", () => {
  fc.assert(
    fc.property(
      attentionLimitsArb,
      fc.array(fc.integer({ min: 1, max: 512 }), { maxLength: 200 }),
      fc.array(fc.integer({ min: 1, max: 512 }), { maxLength: 40 }),
      fc.integer({ min: 0, max: 32_768 }),
      fc.boolean(),
      (limits, queued, queries, fillTokens, onlyFull) => {
        const pool = new BatchPool<LaneItem>(limits);
        let id = 0;
        const q = queued.map((length, k) => ({ id: id++, length, pooledAt: k }));
        const i = queries.map((length, k) => ({ id: id++, length, pooledAt: k, queryLane: true }));
        pool.add([...q, ...i]);
        const seen: number[] = [];
        const check = (b: { items: LaneItem[]; paddedLength: number }) => {
          assert.ok(cells(b) <= limits.maxBatchAttention, `${cells(b)} cells over ${limits.maxBatchAttention}`);
          seen.push(...b.items.map((it) => it.id));
        };
        while (pool.querySize > 0) check(pool.takeQuery(fillTokens)!);
        // a first pass as a busy model would ask (only full batches), then drain
        for (let r = pool.take({ now: 0, moreComing: true, lingerMs: 5, onlyFull }); r.batch;) {
          check(r.batch);
          r = pool.take({ now: 0, moreComing: true, lingerMs: 5, onlyFull });
        }
        for (let r = pool.take({ now: 1e9, moreComing: false, lingerMs: 0 }); r.batch;) {
          check(r.batch);
          r = pool.take({ now: 1e9, moreComing: false, lingerMs: 0 });
        }
        assert.equal(pool.size, 0);
        assert.deepEqual(
          seen.sort((a, b) => a - b),
          [...q, ...i].map((it) => it.id),
        );
      },
    ),
  );
});

test("BatchPool: a batch the attention budget closes is full and goes without waiting", () => {
  const pool = new BatchPool<LaneItem>({
    maxBatchTokens: 16_384,
    maxBatchSize: 64,
    padMultiple: 8,
    maxBatchAttention: 2 * 2048 * 2048,
  });
  pool.add([1, 2, 3].map((id) => ({ id, length: 2048, pooledAt: 0 })));
  const r = pool.take({ now: 0, moreComing: true, lingerMs: 1000, onlyFull: true });
  assert.equal(r.batch?.items.length, 2, "two 2048-token rows fill a budget of 2 x 2048² cells");
});
