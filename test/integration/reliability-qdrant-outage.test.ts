/** Qdrant unavailable for a while: first not listening (connections refused), then answering
 *  503, then back. Upserts retry with backoff (SINK_RETRIES), jobs whose writes still fail
 *  are retried by BullMQ (JOB_ATTEMPTS, JOB_BACKOFF_MS) instead of being lost, no job
 *  completes before its points are stored, and after recovery exactly the expected points
 *  are there. Real Redis, real worker, the in-process Qdrant test server for the faults. */
import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import { test } from "node:test";
import { Queue, type Job } from "bullmq";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { startWorker, type RunningWorker } from "../../worker/app.js";
import { waitFor } from "../../kit/harness.js";
import { expectedPointIds, jobPointIds, sleep, syntheticDocs } from "../../kit/reliability.js";
import { suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ qdrant: "server" });

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(undefined)));
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

test("fault `down` refuses TCP connections until cleared, on the same port", async () => {
  const port = Number(new URL(fx.server.url).port);
  fx.server.setFault({ kind: "down" });
  assert.equal(await connectError(port), "ECONNREFUSED");
  fx.server.setFault(null);
  await waitFor(async () => (await connectError(port)) === undefined, 5000, "listening again");
  assert.equal((await fetch(`${fx.server.url}/healthz`)).status, 200);
});

test("Qdrant refusing connections, then answering 503, then back: every point written, none before its job completes", async (t) => {
  const DOWN_MS = 2500;
  const UNAVAILABLE_MS = 2000;
  const { queueName, collection, cfg } = fx.workerConfig("rel-qd", {
    QDRANT_TIMEOUT_MS: "2000",
    CHUNK_TOKENS: "32",
    CHUNK_OVERLAP_TOKENS: "0",
    SINK_RETRIES: "2",
    SINK_RETRY_BASE_MS: "50",
    JOB_ATTEMPTS: "12",
    JOB_BACKOFF_MS: "200",
  });
  const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  let worker: RunningWorker | undefined;
  fx.onCleanup(async () => {
    fx.server.setFault(null);
    await worker?.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });
  worker = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
  });

  // Checked at each job's completion, against what the server holds at that moment.
  const completions: Array<{ id: string; at: number; missing: number }> = [];
  const retried: Array<{ id: string; reason: string }> = [];
  worker.worker.on("completed", (job: Job) => {
    const stored = fx.server.points(collection);
    completions.push({ id: job.id!, at: Date.now(), missing: jobPointIds(job).filter((id) => !stored.has(id)).length });
  });
  worker.worker.on("failed", (job, err) => retried.push({ id: job?.id ?? "?", reason: err.message }));

  const docs = syntheticDocs(40, { prefix: "outage" });
  const countTokens = loadTokenCounter(path.join(fx.modelDir, "tokenizer.json"));
  const expected = expectedPointIds(docs, {
    chunkTokens: cfg.CHUNK_TOKENS,
    overlapTokens: cfg.CHUNK_OVERLAP_TOKENS,
    countTokens,
  });

  fx.server.setFault({ kind: "down" });
  const summary = await enqueueDocuments(queue, docs, enqueueOptionsFrom(cfg, countTokens));
  assert.equal(summary.chunks, expected.size);
  await sleep(DOWN_MS);
  fx.server.setFault({ kind: "status", status: 503 });
  await sleep(UNAVAILABLE_MS);
  const upsertsAnswered503 = fx.server.requests.filter(
    (r) => r.method === "PUT" && r.path.endsWith("/points") && r.status === 503,
  ).length;
  assert.equal(completions.length, 0, "a job completed while Qdrant could not store anything");
  const recoveredAt = Date.now();
  fx.server.setFault(null);

  await waitFor(
    async () => (await queue.getJobCounts("completed")).completed === summary.jobs,
    45_000,
    "every job completed after recovery",
  );
  const recoverySeconds = (Math.max(...completions.map((c) => c.at)) - recoveredAt) / 1000;
  const firstAfterSeconds = (Math.min(...completions.map((c) => c.at)) - recoveredAt) / 1000;

  assert.deepEqual(
    completions.filter((c) => c.missing > 0),
    [],
    "jobs completed before all their points were stored",
  );
  const stored = fx.server.points(collection);
  assert.deepEqual([...stored.keys()].sort(), [...expected].sort(), "stored point ids differ from the expected set");
  assert.equal((await queue.getJobCounts("failed")).failed, 0);

  const sinkErrors = (await worker.metrics.errors.get()).values.find((v) => v.labels.type === "sink")?.value ?? 0;
  assert.ok(sinkErrors > 0, 'embed_errors_total{type="sink"} did not count the failed upserts');
  assert.ok(upsertsAnswered503 > 0, "no upsert reached the server while it answered 503");
  // Attempts that used up their upsert retries went back to BullMQ, with the cause in the reason.
  assert.ok(retried.length > 0, "no job attempt failed: the outage never reached BullMQ");
  assert.ok(
    retried.every((r) => r.reason.startsWith("sink: ")),
    JSON.stringify(retried.slice(0, 3)),
  );
  assert.ok(
    retried.some((r) => !/\(HTTP \d{3}\)/.test(r.reason)),
    "no attempt failed on a refused connection",
  );
  assert.ok(
    retried.some((r) => r.reason.includes("(HTTP 503)")),
    "no attempt failed on HTTP 503",
  );
  const retriedJobs = new Set(retried.map((r) => r.id));
  const writes = fx.server.writeCounts(collection);
  t.diagnostic(
    JSON.stringify({
      jobs: summary.jobs,
      points: expected.size,
      outageMs: DOWN_MS + UNAVAILABLE_MS,
      sinkErrors,
      upsertsAnswered503,
      failedAttempts: retried.length,
      jobsRetriedByBullMQ: retriedJobs.size,
      firstCompletionAfterRecoveryS: firstAfterSeconds,
      allCompletedAfterRecoveryS: recoverySeconds,
      pointsWrittenTwiceOrMore: [...writes.values()].filter((n) => n > 1).length,
    }),
  );
});
