/** Sharded queues (issue 16) without Redis: document placement (stable, spread, every part of a
 *  document on one shard), shard prefixes (QUEUE_SHARDS=1 unchanged; one slot per shard; shards
 *  spread over the slot range; BullMQ's own key names are checked in test/e2e/queue-shards.test.ts), the split of WORKER_CONCURRENCY, and the
 *  configuration's refusals. The same rules against a real cluster are in test/e2e/redis-cluster.test.ts. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import calculateSlot from "cluster-key-slot";
import { parseConfig } from "../../shared/config.js";
import {
  CLUSTER_SLOTS,
  concurrencyShares,
  groupByShard,
  queueShards,
  servedShards,
  shardFor,
  shardPrefix,
} from "../../shared/queue-shards.js";
import { jobsForDocument, type EnqueueOptions } from "../../producer/enqueue.js";
import type { Chunk, SourceDocument } from "../../producer/document.js";
import { ConfigError } from "../../worker/errors.js";

test("shardFor: the same id always lands on the same shard, one shard is shard 0, and ids spread evenly", () => {
  for (const n of [2, 3, 4, 8]) {
    const counts = new Array<number>(n).fill(0);
    const ids = Array.from({ length: 12_000 }, (_, i) => `talk-${i}.srt`);
    for (const id of ids) {
      const s = shardFor(id, n);
      assert.ok(Number.isInteger(s) && s >= 0 && s < n);
      assert.equal(shardFor(id, n), s, "placement is not stable");
      counts[s]++;
    }
    const even = ids.length / n;
    for (const c of counts) assert.ok(Math.abs(c - even) < 0.06 * even, `uneven spread over ${n} shards: ${counts}`);
  }
  assert.equal(shardFor("anything", 1), 0);
  // Fixed values: placement must not change between releases, or in-flight documents would split.
  assert.deepEqual(
    ["a", "b", "doc-1", "meeting/2024-01-01"].map((id) => shardFor(id, 3)),
    ["a", "b", "doc-1", "meeting/2024-01-01"].map(
      (id) => Number.parseInt(createHash("sha256").update(id).digest("hex").slice(0, 8), 16) % 3,
    ),
  );
});

const doc = (id: string, chunks: number): [SourceDocument, Chunk[]] => [
  { id, kind: "text", text: "x", metadata: {}, source: { file: `${id}.txt` } } as unknown as SourceDocument,
  Array.from({ length: chunks }, (_, i) => ({ index: i, text: `chunk ${i} of ${id}`, tokens: 4, metadata: {} })),
];
const opts = {
  maxChunksPerJob: 2,
  attempts: 1,
  backoffMs: 0,
  removeOnComplete: 0,
  removeOnFail: 0,
} as unknown as EnqueueOptions;

test("groupByShard: every part of a long document goes to its document's shard, in order", () => {
  const jobs = [];
  for (let d = 0; d < 40; d++) jobs.push(...jobsForDocument(...doc(`doc-${d}`, 7), opts));
  assert.equal(jobs.length, 40 * 4, "each document should span four jobs");
  const groups = groupByShard(jobs, 4);
  assert.equal(groups.size, 4, "40 documents should reach every one of 4 shards");
  let seen = 0;
  for (const [shard, list] of groups) {
    seen += list.length;
    for (const j of list) assert.equal(shardFor(j.data.docId, 4), shard);
    const docs = new Map<string, number[]>();
    for (const j of list) docs.set(j.data.docId, [...(docs.get(j.data.docId) ?? []), j.data.part]);
    for (const [id, parts] of docs)
      assert.deepEqual(parts, [0, 1, 2, 3], `${id}: parts split over shards or reordered`);
  }
  assert.equal(seen, jobs.length);
});

test("shard prefixes: QUEUE_SHARDS=1 keeps QUEUE_PREFIX; otherwise one hash tag per shard, its slot in the shard's part of the slot range", () => {
  assert.deepEqual(queueShards({ QUEUE_PREFIX: "bull", QUEUE_SHARDS: 1 }), [
    { id: 0, prefix: "bull", slot: calculateSlot("bull") },
  ]);
  assert.equal(shardPrefix("{bull}", 0, 1), "{bull}");
  for (const [prefix, n] of [
    ["{bull}", 3],
    ["{bull}", 2],
    ["app{emb}x", 5],
    ["bull", 4],
    ["{q}", 64],
  ] as const) {
    const shards = queueShards({ QUEUE_PREFIX: prefix, QUEUE_SHARDS: n });
    assert.equal(shards.length, n);
    const slots = new Set<number>();
    for (const s of shards) {
      const tag = /^([^{]*)\{([^}]+)\}(.*)$/.exec(s.prefix);
      assert.ok(tag, `${s.prefix} has no hash tag`);
      assert.match(tag[2], new RegExp(`-${s.id}(-\\d+)?$`), `${s.prefix}: the tag does not name shard ${s.id}`);
      if (prefix.includes("{"))
        assert.equal(tag[1] + tag[3], prefix.replace(/\{.*\}/, ""), "text around the tag changed");
      assert.ok(s.slot >= (s.id * CLUSTER_SLOTS) / n - 1 && s.slot < ((s.id + 1) * CLUSTER_SLOTS) / n, `${s.prefix}`);
      assert.equal(calculateSlot(`${s.prefix}:embed:wait`), s.slot);
      slots.add(s.slot);
    }
    assert.equal(slots.size, n, "two shards share a slot");
  }
  // Deterministic: producers and workers computing the names separately agree.
  assert.deepEqual(
    queueShards({ QUEUE_PREFIX: "{bull}", QUEUE_SHARDS: 3 }),
    queueShards({ QUEUE_PREFIX: "{bull}", QUEUE_SHARDS: 3 }),
  );
});

test("concurrencyShares: the worker's window split over its shards, differing by at most one", () => {
  for (const [total, n] of [
    [64, 1],
    [64, 3],
    [10, 4],
    [3, 3],
    [7, 2],
  ]) {
    const shares = concurrencyShares(total, n);
    assert.equal(shares.length, n);
    assert.equal(
      shares.reduce((a, b) => a + b, 0),
      total,
    );
    assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `${shares}`);
  }
  assert.deepEqual(concurrencyShares(2, 3), [1, 1, 1], "every shard needs at least one slot");
});

const problems = (env: Record<string, string>) => {
  try {
    parseConfig(env);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
};

test("config: QUEUE_SHARDS defaults to 1 and QUEUE_SHARD_IDS to every shard; bad ids are refused naming both keys", () => {
  const c = parseConfig({});
  assert.equal(c.QUEUE_SHARDS, 1);
  assert.deepEqual(c.QUEUE_SHARD_IDS, [0]);
  assert.deepEqual(parseConfig({ QUEUE_SHARDS: "4" }).QUEUE_SHARD_IDS, [0, 1, 2, 3]);
  const subset = parseConfig({ QUEUE_SHARDS: "4", QUEUE_SHARD_IDS: " 2, 0 " });
  assert.deepEqual(subset.QUEUE_SHARD_IDS, [0, 2]);
  assert.deepEqual(
    servedShards(subset).map((s) => s.id),
    [0, 2],
  );
  const outside = problems({ QUEUE_SHARDS: "3", QUEUE_SHARD_IDS: "1,3" });
  assert.equal(outside.length, 1, outside.join(" | "));
  assert.match(outside[0], /^QUEUE_SHARD_IDS: .*shard 3.*QUEUE_SHARDS=3/);
  assert.match(problems({ QUEUE_SHARD_IDS: "1" })[0], /^QUEUE_SHARD_IDS: .*QUEUE_SHARDS=1/);
  assert.match(problems({ QUEUE_SHARDS: "3", QUEUE_SHARD_IDS: "1,1" })[0], /^QUEUE_SHARD_IDS: .*twice/);
  assert.match(problems({ QUEUE_SHARDS: "3", QUEUE_SHARD_IDS: "one" })[0], /^QUEUE_SHARD_IDS: .*not a shard id/);
  assert.match(problems({ QUEUE_SHARDS: "3", QUEUE_SHARD_IDS: "," })[0], /^QUEUE_SHARD_IDS: .*names no shard/);
  for (const bad of ["0", "-1", "1.5", "x", "129"])
    assert.match(problems({ QUEUE_SHARDS: bad })[0], /^QUEUE_SHARDS:/, bad);
  // A cluster still needs a hash tag in QUEUE_PREFIX, sharded or not.
  assert.match(
    problems({ QUEUE_SHARDS: "3", REDIS_CLUSTER_NODES: "r:6379", QUEUE_PREFIX: "bull" })[0],
    /^QUEUE_PREFIX: /,
  );
});
