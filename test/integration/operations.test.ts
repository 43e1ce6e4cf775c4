/** The worker's operational surface with real parts: probes through the start-up, running,
 *  degraded and draining phases; the warm-up batch; queue gauges read from a real Redis at
 *  scrape time, and a scrape that stays bounded when Redis does not answer; GPU memory from
 *  nvidia-smi (a stand-in script here: there is no GPU); every metric the issue lists. */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Queue } from "bullmq";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics, type Metrics } from "../../worker/metrics.js";
import type { EmbeddingModel, ModelInfo, VectorPoint, VectorSink } from "../../worker/core/ports.js";
import { startWorker, warmUp, type RunningWorker } from "../../worker/app.js";
import { parseNvidiaSmi, readGpuMemory } from "../../worker/adapters/gpu-memory.js";
import { QdrantSink } from "../../worker/adapters/qdrant-sink.js";
import { QueueMetrics } from "../../worker/adapters/queue-metrics.js";
import { freePort, waitFor } from "../../kit/harness.js";
import { SHARED_REDIS_URL, suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ redis: SHARED_REDIS_URL, qdrant: "target" });

const get = async (port: number, p: string) => {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, body: await res.text() };
};

function setup(env: Record<string, string> = {}) {
  const { queueName, collection, cfg } = fx.workerConfig("ops", {
    ...env,
  });
  const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  fx.onCleanup(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  return { cfg, queue, collection };
}

/** A real Qdrant sink whose init() waits for `release`, to hold the worker in its start-up phase. */
class GatedInitSink implements VectorSink {
  release!: () => void;
  private readonly gate = new Promise<void>((r) => (this.release = r));
  constructor(private readonly inner: VectorSink) {}
  async init(info: ModelInfo) {
    await this.gate;
    await this.inner.init(info);
  }
  upsert(points: VectorPoint[]) {
    return this.inner.upsert(points);
  }
  ping() {
    return this.inner.ping!();
  }
  describe() {
    return this.inner.describe();
  }
  close() {
    return this.inner.close();
  }
}

test("probes: live at once; startup and ready only after warm-up and sink init; ready follows the sink; not ready while draining", async () => {
  const { cfg, queue } = setup({ HEALTH_CHECK_TIMEOUT_MS: "300" });
  const port = await freePort();
  const sink = new GatedInitSink(new QdrantSink(cfg));
  const lines: string[] = [];
  const log = createLogger({
    level: "info",
    destination: { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream,
  });
  const starting = startWorker(cfg, { log, metrics: createMetrics({ defaultMetrics: false }), sink, httpPort: port });
  let w: RunningWorker | undefined;
  fx.onCleanup(async () => w?.close());
  await waitFor(
    async () => (await get(port, "/health/live").catch(() => ({ status: 0 }))).status === 200,
    20_000,
    "liveness during start-up",
  );
  assert.equal((await get(port, "/health/startup")).status, 503);
  assert.equal((await get(port, "/health/ready")).status, 503);
  const startingHealth = JSON.parse((await get(port, "/health")).body) as Record<string, unknown>;
  assert.equal(startingHealth.status, "starting");
  // Warm-up runs before the sink is initialised: it is in the log by now.
  await waitFor(() => lines.some((l) => l.includes("warm-up batch")), 20_000, "warm-up log line");
  const warm = JSON.parse(lines.find((l) => l.includes("warm-up batch"))!) as { rows: number; paddedLength: number };
  assert.ok(
    warm.rows * warm.paddedLength <= cfg.MAX_BATCH_TOKENS &&
      (warm.rows === cfg.MAX_BATCH_SIZE || (warm.rows + 1) * warm.paddedLength > cfg.MAX_BATCH_TOKENS),
    `warm-up ${warm.rows}x${warm.paddedLength} does not fill the ${cfg.MAX_BATCH_TOKENS}-token budget`,
  );
  sink.release();
  w = await starting;
  assert.equal((await get(port, "/health/startup")).status, 200);
  assert.equal((await get(port, "/health/ready")).status, 200);
  const health = JSON.parse((await get(port, "/health")).body) as Record<string, unknown>;
  assert.equal(health.status, "ready");
  assert.equal(health.provider, "cpu");
  assert.equal(health.model, cfg.MODEL_NAME);
  assert.deepEqual(health.outputs, ["dense", "sparse"]);
  assert.equal(typeof health.uptimeSeconds, "number");
  assert.equal(JSON.stringify(health).includes(fx.target.url.split("//")[1]) && !!fx.target.apiKey, false);

  if (fx.target.server) {
    // The sink stops answering: not ready (after the 1 s check cache), but still live and started.
    fx.target.server.setFault({ kind: "refuse" });
    await waitFor(
      async () => (await get(port, "/health/ready")).status === 503,
      5000,
      "not ready while Qdrant refuses",
    );
    assert.match((await get(port, "/health/ready")).body, /sink/);
    assert.equal((await get(port, "/health/live")).status, 200);
    assert.equal((await get(port, "/health/startup")).status, 200);
    fx.target.server.setFault(null);
    await waitFor(
      async () => (await get(port, "/health/ready")).status === 200,
      5000,
      "ready again after Qdrant recovers",
    );
  }

  // Draining: a job held in the sink keeps the worker draining; it reports not ready meanwhile.
  const release = fx.target.server?.holdUpserts();
  await queue.add(JOB_NAME, {
    v: JOB_SCHEMA_VERSION,
    docId: "d",
    part: 0,
    parts: 1,
    docHash: "h",
    enqueuedAt: Date.now(),
    metadata: {},
    chunks: [{ index: 0, text: "held in the sink" }],
  });
  await waitFor(async () => (await queue.getJobCounts("active")).active === 1, 10_000, "job active");
  const closing = w.close();
  await waitFor(async () => (await get(port, "/health/ready")).status === 503, 5000, "not ready while draining");
  assert.equal(JSON.parse((await get(port, "/health")).body).phase, "draining");
  assert.equal(w.metrics.ready.get ? (await w.metrics.ready.get()).values[0].value : -1, 0);
  release?.();
  await closing;
  assert.equal((await queue.getJobCounts("completed")).completed, 1, "the in-flight job finished during the drain");
  w = undefined;
});

test("warmUp runs the largest batch the planner can form (most estimated activation memory)", async () => {
  const calls: Array<{ rows: number; padded: number; lengths: number[] }> = [];
  const fake = {
    info: { maxSeqLength: 300 } as ModelInfo,
    embed: async (b: { sequences: Int32Array[]; paddedLength: number }) => {
      calls.push({ rows: b.sequences.length, padded: b.paddedLength, lengths: b.sequences.map((s) => s.length) });
      return [];
    },
    close: async () => {},
  } satisfies Pick<EmbeddingModel, "info" | "embed" | "close">;
  const shape = await warmUp(
    fake as EmbeddingModel,
    { bosId: 0, eosId: 2 },
    { MAX_BATCH_TOKENS: 1024, MAX_BATCH_SIZE: 64, PAD_MULTIPLE: 8 },
  );
  // BGE-M3's dimensions (the default): 4 x 256 needs more than 3 x 304 (fewer attention cells, more tokens).
  assert.deepEqual(calls, [{ rows: 4, padded: 256, lengths: [256, 256, 256, 256] }]);
  assert.equal(shape.rows, 4);
  // With the attention budget binding: 64 x 256 has as many attention cells as one 2048-token row (2048²)
  // and the whole token budget, so it needs more than any batch of longer rows.
  calls.length = 0;
  await warmUp(
    { ...fake, info: { maxSeqLength: 8192 } as ModelInfo } as EmbeddingModel,
    { bosId: 0, eosId: 2 },
    { MAX_BATCH_TOKENS: 16_384, MAX_BATCH_SIZE: 64, PAD_MULTIPLE: 8, MAX_BATCH_ATTENTION: 2048 * 2048 },
  );
  assert.deepEqual(
    calls.map((c) => [c.rows, c.padded]),
    [[64, 256]],
  );
  // The batch-size cap wins when sequences are short.
  calls.length = 0;
  await warmUp(
    { ...fake, info: { maxSeqLength: 16 } as ModelInfo } as EmbeddingModel,
    { bosId: 0, eosId: 2 },
    { MAX_BATCH_TOKENS: 1024, MAX_BATCH_SIZE: 4, PAD_MULTIPLE: 8 },
  );
  assert.deepEqual(
    calls.map((c) => [c.rows, c.padded]),
    [[4, 16]],
  );
});

function metricsFor(queueName: string, m: Metrics, timeoutMs = 500, redisUrl = "redis://127.0.0.1:6379") {
  const qm = new QueueMetrics({ redisUrl, queueName, prefix: "bull", timeoutMs, metrics: m });
  fx.onCleanup(() => qm.close());
  return qm;
}

async function sample(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  const values = (await metric!.get()).values;
  return values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

test("queue gauges and queue lag are read from Redis at scrape time", async () => {
  const { queue, cfg } = setup();
  const m = createMetrics({ defaultMetrics: false });
  metricsFor(cfg.QUEUE_NAME, m);
  const data = {
    v: JOB_SCHEMA_VERSION,
    docId: "d",
    part: 0,
    parts: 1,
    docHash: "h",
    enqueuedAt: Date.now(),
    metadata: {},
    chunks: [{ index: 0, text: "x" }],
  };
  await queue.add(JOB_NAME, data, { jobId: "w1", timestamp: Date.now() - 30_000 });
  await queue.add(JOB_NAME, data, { jobId: "w2" });
  await queue.add(JOB_NAME, data, { jobId: "p1", priority: 5 });
  await queue.add(JOB_NAME, data, { jobId: "d1", delay: 60_000 });
  const text = await m.registry.metrics();
  assert.match(text, new RegExp(`embed_queue_jobs\\{queue="${cfg.QUEUE_NAME}",state="waiting"\\} 2`));
  assert.equal(await sample(m, "embed_queue_jobs", { state: "prioritized" }), 1);
  assert.equal(await sample(m, "embed_queue_jobs", { state: "delayed" }), 1);
  assert.equal(await sample(m, "embed_queue_jobs", { state: "active" }), 0);
  assert.equal(await sample(m, "embed_queue_jobs", { state: "failed" }), 0);
  const lag = (await sample(m, "embed_queue_lag_seconds"))!;
  assert.ok(lag >= 29 && lag < 120, `lag ${lag}s should be the age of the oldest waiting job (~30 s)`);
  // Nothing waiting: lag 0.
  await queue.obliterate({ force: true });
  await m.registry.metrics();
  assert.equal(await sample(m, "embed_queue_lag_seconds"), 0);
  assert.equal(await sample(m, "embed_queue_jobs", { state: "waiting" }), 0);
});

test("a scrape stays bounded and succeeds when Redis accepts connections but never answers", async () => {
  const sockets = new Set<net.Socket>();
  const blackhole = net.createServer((s) => (sockets.add(s), s.on("error", () => undefined)));
  await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
  fx.onCleanup(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackhole.close(r));
  });
  const m = createMetrics({ defaultMetrics: true });
  metricsFor("slow", m, 300, `redis://127.0.0.1:${(blackhole.address() as net.AddressInfo).port}`);
  m.chunks.inc({ lane: "queue" }, 3);
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    const text = await m.registry.metrics();
    const ms = performance.now() - started;
    assert.ok(ms < 1500, `scrape took ${Math.round(ms)} ms with a 300 ms bound`);
    assert.match(text, /^embed_chunks_total\{lane="queue"\} 3$/m, "the rest of the scrape is intact");
  }
  assert.ok(
    ((await sample(m, "embed_queue_scrape_errors_total")) ?? 0) >= 2,
    "each bounded scrape is counted as a scrape error",
  );
});

test("GPU memory comes from nvidia-smi, bounded in time; no nvidia-smi means no figure, not an error", async () => {
  assert.deepEqual(parseNvidiaSmi("  1234, 81559\n"), {
    usedBytes: 1234 * 1024 * 1024,
    totalBytes: 81559 * 1024 * 1024,
  });
  assert.equal(
    parseNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"),
    undefined,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), "fake-smi-"));
  fx.onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  const fake = path.join(dir, "nvidia-smi");
  writeFileSync(fake, `#!/bin/sh\n[ "$3" = "--id=1" ] && echo "2048, 16384" || exit 6\n`);
  chmodSync(fake, 0o755);
  assert.deepEqual(await readGpuMemory(1, 2000, fake), {
    usedBytes: 2048 * 1024 * 1024,
    totalBytes: 16384 * 1024 * 1024,
  });
  assert.equal(await readGpuMemory(0, 2000, fake), undefined, "a failing nvidia-smi yields no figure");
  const slow = path.join(dir, "slow-smi");
  writeFileSync(slow, "#!/bin/sh\nsleep 5\n");
  chmodSync(slow, 0o755);
  const started = performance.now();
  assert.equal(await readGpuMemory(0, 200, slow), undefined);
  assert.ok(performance.now() - started < 2000, "nvidia-smi call not bounded");
  assert.equal(await readGpuMemory(0, 500, path.join(dir, "absent")), undefined);
});

test("/metrics of a running worker covers every metric the dashboard and alerts need", async () => {
  const { cfg, queue } = setup();
  const w = await startWorker(cfg, { log: createLogger({ level: "silent" }), httpPort: 0 });
  fx.onCleanup(() => w.close());
  await queue.add(JOB_NAME, {
    v: JOB_SCHEMA_VERSION,
    docId: "m",
    part: 0,
    parts: 1,
    docHash: "h",
    enqueuedAt: Date.now(),
    metadata: {},
    chunks: [
      { index: 0, text: "metrics please" },
      { index: 1, text: "and another" },
    ],
  });
  await waitFor(async () => (await queue.getJobCounts("completed")).completed === 1, 20_000, "job completed");
  const text = (await get(w.httpPort, "/metrics")).body;
  for (const name of [
    "embed_chunks_total",
    "embed_tokens_total",
    "embed_padded_tokens_total",
    "embed_batches_total",
    "embed_batch_size_bucket",
    "embed_batch_tokens_bucket",
    "embed_job_latency_seconds_bucket",
    "embed_truncated_chunks_total",
    "embed_model_info",
    "embed_ready",
    "nodejs_eventloop_lag_seconds",
    "process_resident_memory_bytes",
  ])
    assert.match(text, new RegExp(`^${name}[{ ]`, "m"), `${name} missing from /metrics`);
  for (const stage of ["queue_wait", "tokenize", "infer", "sink_write"]) {
    assert.match(
      text,
      new RegExp(`^embed_stage_duration_seconds_count\\{stage="${stage}",lane="queue"\\} [1-9]`, "m"),
      `stage ${stage} not observed`,
    );
  }
  for (const state of ["waiting", "prioritized", "active", "delayed", "failed"]) {
    assert.match(text, new RegExp(`^embed_queue_jobs\\{queue="${cfg.QUEUE_NAME}",state="${state}"\\} \\d+`, "m"));
  }
  assert.match(text, /^embed_queue_lag_seconds\{queue="[^"]+"\} /m);
  assert.match(
    text,
    /^embed_model_info\{model="BAAI\/bge-m3",provider="cpu",outputs="dense,sparse",device="cpu"\} 1$/m,
  );
  assert.match(text, /^embed_ready 1$/m);
});
