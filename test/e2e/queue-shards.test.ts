/** A sharded queue on one Redis (issue 16: QUEUE_SHARDS works without a cluster): the producer CLI
 *  places documents on two shards by a hash of their ids, a worker serving only shard 0
 *  (QUEUE_SHARD_IDS=0) takes shard 0's jobs and leaves shard 1's waiting while its /metrics reports
 *  both shards, then a worker serving shard 1 drains the rest: every point stored exactly once,
 *  `stats` summing the shards. Worker processes run with small budgets. */
import { isPackData } from "../../shared/pack.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { QueueKeys } from "bullmq";
import calculateSlot from "cluster-key-slot";
import { pointId } from "../../shared/ids.js";
import { QueueSet } from "../../shared/queue-set.js";
import { queueShards, shardFor } from "../../shared/queue-shards.js";
import { docText } from "../../kit/corpus.js";
import { repoRoot, uniqueQueue, waitFor } from "../../kit/harness.js";
import { spawnWorker } from "../../kit/processes.js";
import { REDIS_URL, suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ qdrant: "server", tmpPrefix: "queue-shards-" });
const producer = path.join(repoRoot, "dist", "producer", "cli.js");

function cli(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [producer, ...args], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 0, `${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

test("every key BullMQ names for a shard's queue hashes to that shard's slot", () => {
  for (const [prefix, n] of [
    ["{bull}", 3],
    ["app{emb}x", 5],
    ["bull", 4],
  ] as const)
    for (const s of queueShards({ QUEUE_PREFIX: prefix, QUEUE_SHARDS: n }))
      for (const key of Object.values(new QueueKeys(s.prefix).getKeys("embed")))
        assert.equal(calculateSlot(key), s.slot, `${key} is not in ${s.prefix}'s slot`);
});

test("QUEUE_SHARDS=2 on one Redis: placement by document, a worker per shard subset, metrics and stats per shard", async () => {
  await fx.ready;
  const name = uniqueQueue("shards");
  const env = {
    REDIS_URL,
    QUEUE_NAME: name,
    QUEUE_SHARDS: "2",
    QDRANT_URL: fx.server.url,
    COLLECTION: name.replace(/-/g, "_"),
    MODEL_DIR: fx.modelDir,
    MAX_BATCH_TOKENS: "2048",
    MAX_SEQ_LENGTH: "512",
    CHUNK_TOKENS: "64",
    CHUNK_OVERLAP_TOKENS: "0",
    BATCH_LINGER_MS: "2",
    UPSERT_LINGER_MS: "2",
  };
  const queue = new QueueSet({ QUEUE_NAME: name, QUEUE_PREFIX: "bull", QUEUE_SHARDS: 2 }, fx.connection);
  fx.onCleanup(async () => {
    for (const s of queue.shards) await s.queue.obliterate({ force: true });
    await queue.close();
  });
  for (const s of queue.shards)
    assert.match(s.prefix, new RegExp(`^\\{bull-${s.id}(-\\d+)?\\}$`), "not QUEUE_PREFIX as a tag plus the shard id");

  const ids = Array.from({ length: 30 }, (_, i) => `doc-${i}`);
  const file = path.join(fx.tmp, "docs.jsonl");
  await writeFile(file, ids.map((id, i) => JSON.stringify({ id, text: docText(i, 4) })).join("\n") + "\n");
  const onShard = [0, 1].map((s) => ids.filter((id) => shardFor(id, 2) === s));
  assert.ok(onShard[0].length > 0 && onShard[1].length > 0, "30 ids all hashed to one shard");

  // Packed (the producer's default): one pack per shard, each holding only its shard's documents.
  const packedName = `${name}-packed`;
  const packed = new QueueSet({ QUEUE_NAME: packedName, QUEUE_PREFIX: "bull", QUEUE_SHARDS: 2 }, fx.connection);
  fx.onCleanup(async () => {
    for (const s of packed.shards) await s.queue.obliterate({ force: true });
    await packed.close();
  });
  assert.match(cli({ ...env, QUEUE_NAME: packedName }, "ingest", file), /enqueued 30 documents as 2 jobs/);
  for (const s of packed.shards) {
    const jobs = await s.queue.getJobs(["waiting"]);
    const docs = jobs.flatMap((j) => (isPackData(j.data) ? (j.data.docs as Array<{ docId: string }>) : [j.data]));
    assert.deepEqual(
      docs.map((d) => d.docId).sort(),
      onShard[s.id].sort(),
      `packed shard ${s.id} holds other documents`,
    );
  }

  assert.match(cli(env, "ingest", file, "--no-pack"), /enqueued 30 documents as 30 jobs/);
  for (const s of queue.shards) {
    const jobs = await s.queue.getJobs(["waiting"]);
    assert.deepEqual(jobs.map((j) => j.data.docId).sort(), onShard[s.id].sort(), `shard ${s.id} holds other documents`);
  }

  const first = await spawnWorker({ ...env, QUEUE_SHARD_IDS: "0" });
  fx.onCleanup(() => first.stop("SIGKILL"));
  const port = await first.started;
  const counts = () => queue.countsByShard("waiting", "completed");
  await waitFor(
    async () => (first.assertAlive(), (await counts())[0].completed === onShard[0].length),
    30_000,
    "shard 0 drained",
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(await counts(), [
    { waiting: 0, completed: onShard[0].length },
    { waiting: onShard[1].length, completed: 0 },
  ]);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const s of [0, 1])
    assert.match(
      metrics,
      new RegExp(
        `^embed_queue_jobs\\{queue="${name}",shard="${s}",state="waiting"\\} ${s === 0 ? 0 : onShard[1].length}$`,
        "m",
      ),
      "the worker does not report every shard",
    );

  const second = await spawnWorker({ ...env, QUEUE_SHARD_IDS: "1" });
  fx.onCleanup(() => second.stop("SIGKILL"));
  await second.started;
  await waitFor(
    async () => (second.assertAlive(), (await queue.getJobCounts("completed")).completed === ids.length),
    30_000,
    "every job completed",
  );
  const writes = fx.server.writeCounts(env.COLLECTION);
  assert.deepEqual([...writes.keys()].map(String).sort(), ids.map((id) => pointId(id, 0)).sort());
  assert.deepEqual(
    [...writes.values()].filter((n) => n !== 1),
    [],
    "a point was written more than once",
  );
  const stats = JSON.parse(cli(env, "stats"));
  assert.equal(stats.completed, ids.length);
  assert.deepEqual(
    stats.byShard.map((r: { shard: number; completed: number }) => [r.shard, r.completed]),
    [
      [0, onShard[0].length],
      [1, onShard[1].length],
    ],
  );
  for (const w of [first, second]) {
    w.proc.kill("SIGTERM");
    assert.equal((await w.exited).code, 0);
  }
});
