/** The priority lane with real parts: the model thread runs an interactive batch before queued
 *  batches already waiting for it, and under a saturating backlog a query waits for at most the
 *  queued batch running when it arrived (it overtakes the one waiting behind it) and carries
 *  queued chunks as fill. These are orderings, not timings; the latency and throughput figures
 *  come from `npm run bench:priority`. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Queue } from "bullmq";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import type { EmbeddingModel, ModelBatch } from "../../worker/core/ports.js";
import { startWorker } from "../../worker/app.js";
import { percentile } from "../../bench/lib/stats.js";
import { testConfig, uniqueQueue, waitFor } from "../../kit/harness.js";
import { SHARED_REDIS_URL, suiteFixture } from "../support/suite-fixture.js";

/** Heavier than the default test model, so the model (not the tokenizer) is the bottleneck, as on a real deployment. */
const HEAVY = {
  opts: { hidden: 256, layers: 4, heads: 4, intermediate: 1024, maxPositions: 514 },
  name: "heavy-256x4",
};
const fx = suiteFixture({ redis: SHARED_REDIS_URL, qdrant: "target", model: HEAVY });

const seqs = (rows: number, length: number): ModelBatch => {
  const s = new Int32Array(length).fill(7);
  s[0] = 0;
  s[length - 1] = 2;
  return { sequences: Array.from({ length: rows }, () => s), paddedLength: length };
};

test("model thread: an interactive batch runs before queued batches already waiting in the thread", async () => {
  const cfg = testConfig({ MODEL_DIR: fx.modelDir, MAX_SEQ_LENGTH: "512", CHUNK_TOKENS: "256" });
  const model = await OnnxModel.load(cfg, locateModelFiles(cfg.MODEL_DIR, cfg.MODEL_FILE));
  fx.onCleanup(() => model.close());
  const order: string[] = [];
  const run = (name: string, b: ModelBatch) => model.embed(b).then(() => order.push(name));
  // q1 starts running; q2 and q3 arrive and wait in the thread; then three queries arrive.
  const runsBefore = model.sessionRuns;
  const first = run("q1", seqs(16, 512));
  await new Promise((r) => setTimeout(r, 50));
  const query = (name: string, length: number) => run(name, { ...seqs(1, length), queryLane: true });
  await Promise.all([
    first,
    run("q2", seqs(16, 512)),
    run("q3", seqs(16, 512)),
    query("i1", 12),
    query("i2", 20),
    query("i3", 9),
  ]);
  assert.deepEqual(order.slice(0, 1), ["q1"]);
  assert.deepEqual(order.slice(1, 4).sort(), ["i1", "i2", "i3"], "the queries run right after the running batch");
  assert.deepEqual(order.slice(4), ["q2", "q3"]);
  assert.equal(model.sessionRuns - runsBefore, 4, "the three queries waiting together ran as one session run");
  // All sent while the thread is idle: the query goes first of all.
  order.length = 0;
  await Promise.all([run("q1", seqs(4, 64)), run("query", { ...seqs(1, 12), queryLane: true })]);
  assert.equal(order.length, 2);
});

interface Call {
  interactive: boolean;
  rows: number;
  calledAt: number;
  resolvedAt?: number;
  ms?: number;
}

test("under a saturating backlog a query waits for at most the running batch, overtakes the waiting one, and carries queued fill", async () => {
  let clock = 0;
  const calls: Call[] = [];
  const wrapModel = (inner: EmbeddingModel): EmbeddingModel => ({
    info: inner.info,
    close: () => inner.close(),
    async embed(batch) {
      const c: Call = { interactive: Boolean(batch.queryLane), rows: batch.sequences.length, calledAt: ++clock };
      calls.push(c);
      const t = performance.now();
      const out = await inner.embed(batch);
      c.resolvedAt = ++clock;
      c.ms = performance.now() - t;
      return out;
    },
  });
  const queueName = uniqueQueue("prio");
  const cfg = testConfig({
    MODEL_DIR: fx.modelDir,
    QUEUE_NAME: queueName,
    QDRANT_URL: fx.target.url,
    QDRANT_API_KEY: fx.target.apiKey,
    COLLECTION: `prio_${queueName.replace(/-/g, "_")}`,
    HTTP_PORT: "9464",
    QUERY_API: "true",
    WARMUP: "false",
    MAX_SEQ_LENGTH: "512",
    CHUNK_TOKENS: "256",
    MAX_BATCH_TOKENS: "4096",
    WORKER_CONCURRENCY: "32",
    DRAIN_TIMEOUT_MS: "500",
  });
  const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  fx.onCleanup(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  const words =
    "the council agreed to review budget lines for schools roads and parks next quarter after public comment".split(
      " ",
    );
  const text = (n: number, seed: number) =>
    Array.from({ length: n }, (_, k) => words[(seed * 7 + k * 3) % words.length]).join(" ");
  const jobs = Array.from({ length: 150 }, (_, j): { name: string; data: EmbedJobData; opts: { jobId: string } } => ({
    name: JOB_NAME,
    data: {
      v: JOB_SCHEMA_VERSION,
      docId: `bulk-${j}`,
      part: 0,
      parts: 1,
      docHash: `h${j}`,
      enqueuedAt: Date.now(),
      metadata: {},
      chunks: Array.from({ length: 16 }, (_, index) => ({
        index,
        text: text(3 + ((j * 16 + index) % 240), j + index),
        metadata: {},
      })),
    },
    opts: { jobId: `bulk-${j}` },
  }));
  await queue.addBulk(jobs);
  const w = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
    httpPort: 0,
    wrapModel,
  });
  fx.onCleanup(() => w.close());
  const url = `http://127.0.0.1:${w.queryPort}/v1/embeddings`;
  await waitFor(() => calls.filter((c) => !c.interactive).length >= 4, 30_000, "the backlog is being embedded");
  const latencies: number[] = [];
  for (let i = 0; i < 16; i++) {
    const t = performance.now();
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: `what did the council decide about item ${i}?`, model: "bge-m3" }),
    });
    assert.equal(res.status, 200);
    latencies.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 15));
  }
  const counts = await queue.getJobCounts("waiting", "active");
  assert.ok(counts.waiting + counts.active > 0, "the backlog lasted for every query (saturated)");

  const queued = calls.filter((c) => !c.interactive);
  const queries = calls.filter((c) => c.interactive && c.resolvedAt !== undefined);
  assert.ok(queries.length >= 1);
  let overtook = 0;
  let filled = 0;
  for (const q of queries) {
    const inFlight = queued.filter(
      (c) => c.calledAt < q.calledAt && (c.resolvedAt === undefined || c.resolvedAt > q.calledAt),
    );
    const finishedMeanwhile = inFlight.filter((c) => c.resolvedAt !== undefined && c.resolvedAt < q.resolvedAt!);
    assert.ok(
      finishedMeanwhile.length <= 1,
      `a query batch waited for ${finishedMeanwhile.length} queued batches (at most the running one)`,
    );
    if (inFlight.length >= 2) overtook++;
    if (q.rows > 1) filled++;
  }
  assert.ok(
    overtook >= 1,
    "no query found a queued batch waiting behind the running one: the test did not saturate the model",
  );
  assert.ok(filled >= 1, "no query batch carried queued chunks as fill");
  const queuedMs = queued.filter((c) => c.ms !== undefined).map((c) => c.ms!);
  const info = `${queries.length} query batches (${overtook} overtook a waiting queued batch, ${filled} carried fill); query latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms; queued batch call (incl. its wait in the thread) mean ${(queuedMs.reduce((a, b) => a + b, 0) / queuedMs.length).toFixed(1)} ms (figures only; timings are judged by npm run bench:priority)`;
  process.stdout.write(`# ${info}\n`);
});
