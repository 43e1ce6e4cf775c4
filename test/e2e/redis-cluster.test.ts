/** Every Redis client of the project against a real Redis Cluster of three masters (issue 16):
 *  the producer CLI's ingest, stats and requeue-failed, a worker process with its queue metrics,
 *  and a backfill interrupted and resumed from its checkpoint key, all with QUEUE_PREFIX={bull}
 *  so a queue's keys share one slot; the first with one queue and with QUEUE_SHARDS=3 (one shard
 *  per master, checked with CLUSTER KEYSLOT and CLUSTER NODES), the backfill sharded. Then a
 *  six-node cluster with replicas: the master of one shard fails over mid-run and no job or point
 *  is lost. Skips, saying why, where redis-server cannot run a cluster. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { before, test } from "node:test";
import { pointId } from "../../shared/ids.js";
import { QueueSet } from "../../shared/queue-set.js";
import { shardFor } from "../../shared/queue-shards.js";
import { redisConnection, type RedisClient } from "../../shared/redis.js";
import { runBackfill } from "../../producer/backfill.js";
import { checkpointKey, RedisCheckpointStore, type Checkpoint } from "../../producer/backfill/checkpoint.js";
import { docText, writeJsonlCorpus } from "../../kit/corpus.js";
import { repoRoot, testConfig, uniqueQueue, waitFor } from "../../kit/harness.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import { redisClusterUnsupported, startTestCluster, type TestRedisCluster } from "../../kit/redis-server.js";
import { suiteFixture } from "../support/suite-fixture.js";

const skip = redisClusterUnsupported();
const fx = suiteFixture({ redis: false, qdrant: "server", tmpPrefix: "redis-cluster-" });
const producer = path.join(repoRoot, "dist", "producer", "cli.js");
const PREFIX = "{bull}";
const SMALL = { MAX_BATCH_TOKENS: "2048", MAX_SEQ_LENGTH: "512", CHUNK_TOKENS: "64", CHUNK_OVERLAP_TOKENS: "0" };

let cluster: TestRedisCluster;
let connection: RedisClient;
before(async () => {
  if (skip) return;
  await fx.ready;
  cluster = await startTestCluster({ masters: 3 });
  connection = redisConnection(cluster.url, { REDIS_CLUSTER_NODES: cluster.nodes });
  fx.onCleanup(() => cluster.close());
  fx.onCleanup(async () => connection.disconnect());
});

/** The settings every process of one test gets: the cluster, the queue, the collection. */
function settings(c: TestRedisCluster, queueName: string, extra: Record<string, string> = {}) {
  return {
    REDIS_URL: c.url,
    REDIS_CLUSTER_NODES: c.nodes,
    QUEUE_PREFIX: PREFIX,
    QUEUE_NAME: queueName,
    QDRANT_URL: fx.server.url,
    COLLECTION: queueName.replace(/-/g, "_"),
    MODEL_DIR: fx.modelDir,
    BATCH_LINGER_MS: "2",
    UPSERT_LINGER_MS: "2",
    ...SMALL,
    ...extra,
  };
}

function cli(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [producer, ...args], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 0, `${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

async function writeDocs(name: string, ids: string[]): Promise<string> {
  const file = path.join(fx.tmp, `${name}.jsonl`);
  await writeFile(file, ids.map((id, i) => JSON.stringify({ id, text: docText(i, 4) })).join("\n") + "\n");
  return file;
}

/** Point ids the worker must store for documents of one chunk each (the texts above are short). */
const expectedIds = (ids: string[]) => ids.map((id) => pointId(id, 0)).sort();
const storedIds = (collection: string) => [...fx.server.points(collection).keys()].map(String).sort();

/** The queue's shards as the producers see them (one queue under PREFIX when `shards` is 1). */
function openQueue(c: TestRedisCluster, name: string, shards = 1): QueueSet {
  const own = redisConnection(c.url, { REDIS_CLUSTER_NODES: c.nodes });
  const set = new QueueSet({ QUEUE_NAME: name, QUEUE_PREFIX: PREFIX, QUEUE_SHARDS: shards }, own);
  fx.onCleanup(async () => {
    for (const s of set.shards) await s.queue.obliterate({ force: true });
    await set.close();
    own.disconnect();
  });
  return set;
}

/** The port of the master serving `slot`, from CLUSTER NODES. */
async function masterOfSlot(slot: number): Promise<number> {
  const lines = String(await connection.call("CLUSTER", "NODES"))
    .trim()
    .split("\n");
  for (const line of lines) {
    const [, addr, flags, , , , , , ...ranges] = line.split(" ");
    if (!flags.includes("master")) continue;
    for (const r of ranges.filter((x) => /^\d/.test(x))) {
      const [a, b] = r.split("-").map(Number);
      if (slot >= a && slot <= (b ?? a)) return Number(addr.split("@")[0].split(":")[1]);
    }
  }
  throw new Error(`no master serves slot ${slot}`);
}

/** `embed_queue_jobs` series of one queue: labels and value. */
function queueGauges(metrics: string, queue: string) {
  return [...metrics.matchAll(/^embed_queue_jobs\{([^}]*)\} (\d+)$/gm)]
    .map((m) => ({
      labels: Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]])),
      value: Number(m[2]),
    }))
    .filter((g) => g.labels.queue === queue);
}

async function startWorker(env: Record<string, string>): Promise<{ worker: ChildWorker; port: number }> {
  const worker = await spawnWorker(env);
  fx.onCleanup(() => worker.stop("SIGKILL"));
  return { worker, port: await worker.started };
}

for (const shards of [1, 3]) {
  test(
    `ingest, worker, queue metrics, stats and requeue-failed through a three-master cluster, QUEUE_SHARDS=${shards}`,
    { skip },
    async (t) => {
      const name = uniqueQueue("cluster");
      const env = settings(cluster, name, { JOB_ATTEMPTS: "1", SINK_RETRIES: "0", QUEUE_SHARDS: String(shards) });
      const queue = openQueue(cluster, name, shards);
      const { worker, port } = await startWorker(env);

      const first = Array.from({ length: 24 }, (_, i) => `ok-${i}`);
      assert.match(
        cli(env, "ingest", await writeDocs("first", first), "--no-pack"),
        /enqueued 24 documents as 24 jobs/,
      );
      const completed = async () => (worker.assertAlive(), (await queue.getJobCounts("completed")).completed);
      await waitFor(async () => (await completed()) === 24, 30_000, "24 jobs completed");
      assert.deepEqual(storedIds(env.COLLECTION), expectedIds(first));
      if (shards > 1) {
        // Each document on its own shard, every shard used, and each shard's keys on another master.
        const masters = new Set<number>();
        for (const s of queue.shards) {
          const jobs = await s.queue.getJobs(["completed"]);
          assert.ok(jobs.length > 0, `shard ${s.id} got no job`);
          for (const j of jobs) assert.equal(shardFor(j.data.docId, shards), s.id, `${j.data.docId} on shard ${s.id}`);
          const slot = await keySlot(`${s.prefix}:${name}:wait`);
          assert.equal(slot, s.slot, `${s.prefix}: CLUSTER KEYSLOT differs from the producers' slot`);
          assert.equal(await keySlot(`${s.prefix}:${name}:${jobs[0].id}`), slot, "a job key outside its shard's slot");
          masters.add(await masterOfSlot(slot));
        }
        assert.equal(masters.size, 3, "the three shards do not sit on three masters");
        t.diagnostic(
          `shards ${queue.shards.map((s) => `${s.prefix} (slot ${s.slot})`).join(", ")} on ports ${[...masters]}`,
        );
      }

      // Qdrant refuses every write: with one attempt each, the next documents' jobs land in the failed set.
      fx.server.setFault({ kind: "status", status: 503 });
      const second = Array.from({ length: 6 }, (_, i) => `later-${i}`);
      cli(env, "ingest", await writeDocs("second", second), "--no-pack");
      await waitFor(async () => (await queue.getJobCounts("failed")).failed === 6, 30_000, "6 failed jobs");
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const gauges = queueGauges(metrics, name);
      const sum = (state: string) => gauges.filter((g) => g.labels.state === state).reduce((n, g) => n + g.value, 0);
      assert.equal(sum("failed"), 6, metrics);
      assert.equal(sum("waiting"), 0);
      const shardLabels = new Set(gauges.map((g) => g.labels.shard));
      assert.deepEqual([...shardLabels].sort(), shards === 1 ? [undefined] : ["0", "1", "2"]);
      assert.doesNotMatch(
        metrics,
        /embed_queue_scrape_errors_total\{[^}]*\} [1-9]/,
        "a scrape through the cluster failed",
      );
      const stats = JSON.parse(cli(env, "stats"));
      assert.equal(stats.completed, 24);
      assert.equal(stats.failed, 6);
      if (shards > 1) {
        assert.equal(stats.shards, shards);
        assert.deepEqual(
          stats.byShard.map((r: { shard: number; slot: number }) => [r.shard, r.slot]),
          queue.shards.map((s) => [s.id, s.slot]),
        );
        const perShard = await queue.countsByShard("failed", "completed");
        assert.deepEqual(
          stats.byShard.map((r: { failed: number; completed: number }) => [r.failed, r.completed]),
          perShard.map((c) => [c.failed, c.completed]),
        );
      } else assert.equal(stats.byShard, undefined, "an unsharded queue's stats changed shape");

      fx.server.setFault(null);
      const requeued = JSON.parse(cli(env, "requeue-failed", "--json"));
      assert.equal(requeued.requeued, 6);
      for (const row of requeued.jobs as Array<{ docId: string; shard?: number }>)
        assert.equal(row.shard, shards > 1 ? shardFor(row.docId, shards) : undefined);
      await waitFor(async () => (await completed()) === 30, 30_000, "the requeued jobs completed");
      assert.deepEqual(storedIds(env.COLLECTION), expectedIds([...first, ...second]));
      const writes = fx.server.writeCounts(env.COLLECTION);
      assert.deepEqual(
        [...writes.values()].filter((n) => n !== 1),
        [],
        "a point was written more than once",
      );
      assert.deepEqual(await queue.getJobCounts("completed", "failed"), { completed: 30, failed: 0 });
      const errors = worker.logs.filter((l) => /CROSSSLOT|MOVED|ASK/.test(JSON.stringify(l)));
      assert.deepEqual(errors, [], "the worker logged cluster routing errors");
      if (shards === 1) {
        const slots = new Set(await Promise.all([name, `${name}:wait`].map((k) => keySlot(`${PREFIX}:${k}`))));
        assert.equal(slots.size, 1, "the queue's keys hash to different slots");
        t.diagnostic(`queue keys in slot ${[...slots].join(",")} of ${cluster.nodes}`);
      }
      worker.proc.kill("SIGTERM");
      assert.equal((await worker.exited).code, 0);
    },
  );
}

const keySlot = async (key: string) => Number(await (connection as RedisClient).call("CLUSTER", "KEYSLOT", key));

test(
  "a backfill through the cluster onto three shards stops, then resumes from its checkpoint key under QUEUE_PREFIX",
  { skip },
  async () => {
    const name = uniqueQueue("cluster-bf");
    const cfg = testConfig(settings(cluster, name, { QUEUE_SHARDS: "3" }));
    const queue = openQueue(cluster, name, 3);
    const { files, ids } = await writeJsonlCorpus(path.join(fx.tmp, "bf"), {
      files: 3,
      docsPerFile: 30,
      sentencesPerDoc: 3,
    });
    const o = { inputs: files, countTokens: fx.countTokens, progress: "none" as const, pollMs: 20, bulkSize: 5 };
    const marks = { highJobs: 10_000, lowJobs: 1, highChunks: 100_000, lowChunks: 1 };
    const runId = "cluster-resume";
    const key = checkpointKey(cfg.QUEUE_PREFIX, name, runId);
    fx.onCleanup(async () => void (await connection.del(key)));
    assert.equal(await keySlot(key), await keySlot(PREFIX), "checkpoint key outside QUEUE_PREFIX's slot");

    const stored = new RedisCheckpointStore(connection, key);
    const ac = new AbortController();
    let saves = 0;
    const stopping = {
      describe: () => stored.describe(),
      load: () => stored.load(),
      clear: () => stored.clear(),
      save: async (c: Checkpoint) => {
        await stored.save(c);
        if (++saves === 3) ac.abort();
      },
    };
    const first = await runBackfill(cfg, {
      ...o,
      runId,
      marks,
      checkpointEveryMs: 0,
      checkpointStore: stopping,
      signal: ac.signal,
    });
    assert.equal(first.interrupted, true);
    assert.ok(first.run.documents > 0 && first.run.documents < ids.length, `first run read ${first.run.documents}`);
    assert.ok(await connection.get(key), "no checkpoint in the cluster");

    // The second run finds the checkpoint itself: the backfill's own clients, made by the one factory.
    const second = await runBackfill(cfg, { ...o, runId, marks, checkpointEveryMs: 0 });
    assert.equal(second.resumed, true);
    assert.equal(second.complete, true);
    assert.equal(first.run.documents + second.run.documents, ids.length, "a record was read twice or never");
    const placed = new Map<string, number>();
    for (const s of queue.shards)
      for (const j of await s.queue.getJobs(["prioritized"])) {
        assert.ok(!placed.has(j.data.docId), `${j.data.docId} enqueued twice`);
        assert.equal(shardFor(j.data.docId, 3), s.id, `${j.data.docId} on the wrong shard`);
        placed.set(j.data.docId, s.id);
      }
    assert.deepEqual(new Set(placed.keys()), new Set(ids));
    assert.equal(new Set(placed.values()).size, 3, "a shard got none of the backfill");
  },
);

test(
  "the master of one of three shards fails over mid-run (CLUSTER FAILOVER on its replica): every job completes, every point stored",
  { skip },
  async (t) => {
    const six = await startTestCluster({ masters: 3, replicas: 1 });
    fx.onCleanup(() => six.close());
    const name = uniqueQueue("cluster-fo");
    const env = settings(six, name, { WORKER_CONCURRENCY: "6", QUEUE_SHARDS: "3" });
    const queue = openQueue(six, name, 3);
    const { worker } = await startWorker(env);
    fx.server.setFault({ kind: "delay", ms: 40 }); // keep jobs in flight across the failover
    t.after(() => fx.server.setFault(null));
    const ids = Array.from({ length: 60 }, (_, i) => `fo-${i}`);
    cli(env, "ingest", await writeDocs("failover", ids), "--no-pack");
    await waitFor(async () => (await queue.getJobCounts("completed")).completed >= 10, 30_000, "10 jobs done");
    const doneBefore = (await queue.getJobCounts("completed")).completed;
    const shard = queue.shards[1];
    const left = (await queue.countsByShard("waiting", "active"))[shard.id];
    const moved = await six.failover(shard.prefix);
    assert.ok(left.waiting + left.active > 0, "the shard was done before its failover: the test proves nothing");
    fx.server.setFault(null);
    await waitFor(
      async () => (worker.assertAlive(), (await queue.getJobCounts("completed")).completed === ids.length),
      45_000,
      "every job completed after the failover",
    );
    assert.deepEqual(await queue.getJobCounts("failed", "active", "waiting"), { failed: 0, active: 0, waiting: 0 });
    assert.deepEqual(storedIds(env.COLLECTION), expectedIds(ids));
    t.diagnostic(
      `slot of ${shard.prefix} moved from port ${moved.from} to ${moved.to} after ${doneBefore} of ${ids.length} jobs`,
    );
  },
);
