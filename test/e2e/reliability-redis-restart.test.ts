/** Redis restarted under load: a private redis-server with an append-only file fsynced on
 *  every write is shut down while a worker embeds and a producer enqueues, and started again
 *  on the same port and folder two seconds later. Both reconnect on their own (ioredis with
 *  maxRetriesPerRequest=null queues commands until then); no job is lost or failed, and every
 *  enqueued document's points end up in the Qdrant test server. */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { Queue } from "bullmq";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { redisConnection } from "../../shared/redis.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { startWorker, type RunningWorker } from "../../worker/app.js";
import { testConfig, uniqueQueue, waitFor } from "../../kit/harness.js";
import { redisServerAvailable, startTestRedis, type TestRedis } from "../../kit/redis-server.js";
import { expectedPointIds, sleep, syntheticDocs } from "../../kit/reliability.js";
import { suiteFixture } from "../support/suite-fixture.js";

let redis: TestRedis | undefined;
const fx = suiteFixture({ redis: false, qdrant: "server" });
// Registered first, so it runs after the test's own cleanups and before the Qdrant server closes.
fx.onCleanup(async () => redis?.close());

test(
  "Redis shut down and restarted mid-run: worker and producer reconnect, no job lost or failed",
  { skip: !redisServerAvailable() && "redis-server is not installed" },
  async (t) => {
    const DOWN_MS = 2000;
    redis = await startTestRedis();
    const queueName = uniqueQueue("rel-rr");
    const collection = `rel_${queueName.replace(/-/g, "_")}`;
    const cfg = testConfig({
      MODEL_DIR: fx.modelDir,
      REDIS_URL: redis.url,
      QUEUE_NAME: queueName,
      QDRANT_URL: fx.server.url,
      COLLECTION: collection,
      CHUNK_TOKENS: "32",
      CHUNK_OVERLAP_TOKENS: "0",
      JOB_BACKOFF_MS: "200",
      WORKER_CONCURRENCY: "16",
    });
    const connection = redisConnection(redis.url);
    connection.on("error", () => undefined); // reconnects on its own; errors are expected while Redis is down
    const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
    queue.on("error", () => undefined);
    let worker: RunningWorker | undefined;
    fx.onCleanup(async () => {
      await worker?.close();
      await queue.close();
      connection.disconnect();
    });
    worker = await startWorker(cfg, {
      log: createLogger({ level: "silent" }),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    const completedAt: number[] = [];
    worker.worker.on("completed", () => completedAt.push(Date.now()));
    const readyAt: number[] = [];
    worker.connection.on("ready", () => readyAt.push(Date.now()));

    const countTokens = loadTokenCounter(path.join(fx.modelDir, "tokenizer.json"));
    const opts = enqueueOptionsFrom(cfg, countTokens);
    const docs = syntheticDocs(240, { prefix: "rr", sentences: (i) => 2 + (i % 5) });
    const expected = expectedPointIds(docs, {
      chunkTokens: cfg.CHUNK_TOKENS,
      overlapTokens: cfg.CHUNK_OVERLAP_TOKENS,
      countTokens,
    });

    // Producer: 6 documents every 100 ms, before, during and after the outage.
    const calls: Array<{ start: number; end: number; error?: string }> = [];
    let jobs = 0;
    const producing = (async () => {
      for (let i = 0; i < docs.length; i += 6) {
        const call: (typeof calls)[number] = { start: Date.now(), end: 0 };
        calls.push(call);
        try {
          jobs += (await enqueueDocuments(queue, docs.slice(i, i + 6), opts)).jobs;
        } catch (err) {
          call.error = (err as Error).message;
          throw err;
        } finally {
          call.end = Date.now();
        }
        await sleep(100);
      }
    })();

    await waitFor(() => completedAt.length >= 20, 30_000, "the worker to complete some jobs");
    const downAt = Date.now();
    await redis.shutdown();
    const doneBeforeShutdown = completedAt.length;
    await sleep(DOWN_MS);
    const restartAt = Date.now();
    await redis.start();
    const upAt = Date.now();
    await waitFor(() => completedAt.some((at) => at > upAt), 30_000, "a job completed after the restart");
    const firstCompletionAfterRestart = Math.min(...completedAt.filter((at) => at > upAt)) - restartAt;
    await producing;
    await waitFor(
      async () => (await queue.getJobCounts("completed")).completed === jobs,
      60_000,
      "every enqueued job completed",
    );
    const drainedAfterRestart = Date.now() - restartAt;

    const counts = await queue.getJobCounts("completed", "failed", "waiting", "active", "delayed", "prioritized");
    assert.deepEqual(counts, { completed: jobs, failed: 0, waiting: 0, active: 0, delayed: 0, prioritized: 0 });
    assert.equal(jobs, docs.length, "one job per document");
    assert.ok(doneBeforeShutdown < jobs, "the outage happened after all work was done: it tested nothing");
    const during = calls.filter((c) => c.start <= upAt && c.end >= downAt);
    assert.ok(during.length > 0, "no enqueue call overlapped the outage");
    assert.deepEqual(
      calls.filter((c) => c.error),
      [],
      "an enqueue call failed instead of waiting for Redis",
    );
    const stored = fx.server.points(collection);
    assert.deepEqual([...stored.keys()].sort(), [...expected].sort(), "stored point ids differ from the expected set");
    const writes = fx.server.writeCounts(collection);
    t.diagnostic(
      JSON.stringify({
        jobs,
        points: expected.size,
        downMs: restartAt - downAt,
        redisStartMs: upAt - restartAt,
        completedBeforeShutdown: doneBeforeShutdown,
        enqueueCallsSpanningOutage: during.length,
        longestEnqueueCallMs: Math.max(...calls.map((c) => c.end - c.start)),
        // Times from the moment redis-server was started again.
        workerReconnectedMs: (readyAt.find((at) => at > downAt) ?? NaN) - restartAt,
        firstCompletionMs: firstCompletionAfterRestart,
        allCompletedMs: drainedAfterRestart,
        pointsWrittenTwiceOrMore: [...writes.values()].filter((n) => n > 1).length,
      }),
    );
  },
);
