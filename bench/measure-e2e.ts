/** Parent side of the end-to-end measurements. The worker runs in a child process
 *  (worker-child.ts) against the real Redis and writes over HTTP to the strict
 *  Qdrant-compatible test server running in this process. Before timing, one small job goes
 *  through the worker so its tokenizer threads have loaded the tokenizer (startWorker returns
 *  before they have; with the 250k vocabulary that takes over a second). Throughput: every job
 *  is added with addBulk at once, timed from just before the first add to the latest
 *  `finishedOn` BullMQ records. Latency: jobs are added one by one at a fixed token rate for a
 *  fixed time, and each job's latency is its `finishedOn - timestamp`. Each run gets a fresh
 *  queue and collection. */
import { randomUUID } from "node:crypto";
import os from "node:os";
import { Queue, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../shared/job.js";
import type { QdrantTestServer } from "../kit/qdrant-server/qdrant-test-server.js";
import { BenchChild } from "./child-process.js";
import { cpuWindow, ownCpuSeconds, processCpuSeconds, type CpuWindow, type QuietWait } from "./cpu.js";
import type { Gate } from "./measure-children.js";
import type { BenchJob, ChunkSet } from "./corpus.js";
import { percentile, unionLength } from "./stats.js";
import type { WorkerStats } from "./worker-child.js";

export interface E2eContext {
  connection: Redis;
  server: QdrantTestServer;
  /** Worker settings (the project's environment variables). */
  env: Record<string, string>;
  /** Extra Node flags for the worker process (e.g. --cpu-prof). */
  execArgv?: string[];
  /** The Redis server's pid when it runs on this machine, for CPU accounting. */
  redisPid?: number;
  gate: Gate;
}

export interface E2eResult {
  seconds: number;
  chunks: number;
  tokens: number;
  paddedTokens: number;
  batches: number;
  jobs: number;
  failedJobs: number;
  expectedPoints: number;
  pointsWritten: number;
  peakRssBytes: number;
  /** CPU used between the first add and the end (worker = measured; this process and Redis = harness). */
  cpu: CpuWindow;
  quietWait: QuietWait;
  /** Where the wall time went, from the model-port log and the worker's metrics. */
  analysis: {
    modelBusySeconds: number;
    /** First add -> first batch handed to the model thread. */
    headSeconds: number;
    /** Last batch back from the model thread -> last job finished. */
    tailSeconds: number;
    /** Mean seconds per observation of each pipeline stage (per job for queue_wait and tokenize, per chunk for batch_wait, per batch for infer, per request for sink_write). */
    stageMeanSeconds: Record<string, number>;
    /** CPU seconds of this process (producer, Qdrant stand-in) and Redis during the run. */
    harnessCpuSeconds: number;
    cpuSeconds: number;
    mainThreadCpuSeconds: number;
    otherThreadsCpuSeconds: number[];
    meanBatchSize: number;
  };
}

const WARMUP_ID = "warmup";

/** One job of the set's first chunks through the whole worker, waited for. */
async function warmUp(queue: Queue, texts: string[]): Promise<number> {
  const chunks = texts.slice(0, 8).map((text, index) => ({ index, text, metadata: {} }));
  const data: EmbedJobData = { v: JOB_SCHEMA_VERSION, docId: WARMUP_ID, part: 0, parts: 1, docHash: WARMUP_ID, enqueuedAt: Date.now(), metadata: {}, chunks };
  const job = await queue.add(JOB_NAME, data, { jobId: WARMUP_ID });
  const deadline = Date.now() + 10 * 60_000;
  while (!(await job.isCompleted())) {
    if ((await job.isFailed()) || Date.now() > deadline) throw new Error(`warm-up job did not complete: ${(await queue.getJob(WARMUP_ID))?.failedReason ?? "timed out"}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await job.remove();
  return chunks.length;
}

/** A worker child on a fresh queue and collection, warmed up. `extraEnv` may set HTTP_PORT (default 0: no HTTP). */
export async function startWorkerChild(ctx: E2eContext, extraEnv: Record<string, string>, texts: string[]) {
  const id = randomUUID().slice(0, 8);
  const queueName = `bench-${id}`;
  const collection = `bench_${id}`;
  const child = BenchChild.start("./worker-child.js", {
    ...ctx.env, HTTP_PORT: "0", ...extraEnv, QUEUE_NAME: queueName, COLLECTION: collection, QDRANT_URL: ctx.server.url,
  }, ctx.execArgv ?? []);
  await child.next("ready", 10 * 60_000);
  const queue = new Queue(queueName, { connection: ctx.connection, prefix: ctx.env.QUEUE_PREFIX ?? "bull" });
  const warmupPoints = await warmUp(queue, texts);
  return { child, queue, collection, warmupPoints };
}

async function finishedJobs(queue: Queue, total: number, seconds = 1800): Promise<{ done: Job[]; failed: number }> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const c = await queue.getJobCounts("completed", "failed");
    if (c.completed + c.failed >= total) {
      return { done: await queue.getJobs(["completed"], 0, -1), failed: c.failed };
    }
    if (Date.now() > deadline) throw new Error(`only ${c.completed + c.failed} of ${total} jobs finished within ${seconds} s`);
    // The end time comes from finishedOn, so polling slowly costs no accuracy, only Redis and CPU the worker could use.
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function closeWorkerChild(child: BenchChild, queue: Queue, server: QdrantTestServer, collection: string, warmupPoints: number) {
  const closed = await child.request<{ type: "closed"; peakRssBytes: number }>({ type: "close" }, "closed");
  await child.stop();
  const points = server.points(collection).size - warmupPoints;
  server.reset();
  await queue.obliterate({ force: true });
  await queue.close();
  return { peakRssBytes: closed.peakRssBytes, points };
}

function stamped(job: BenchJob, now: number): BenchJob {
  return { ...job, data: { ...job.data, enqueuedAt: now }, opts: { ...job.opts, removeOnComplete: false, removeOnFail: false } };
}

/** Throughput of one worker configuration on one chunk set. */
export async function measureE2e(ctx: E2eContext, set: ChunkSet, extraEnv: Record<string, string> = {}): Promise<E2eResult> {
  const { child, queue, collection, warmupPoints } = await startWorkerChild(ctx, extraEnv, set.texts);
  const quietWait = await ctx.gate(child.pid);
  await child.request({ type: "mark" }, "marked");
  const harness0 = ownCpuSeconds() + (ctx.redisPid ? processCpuSeconds(ctx.redisPid) : 0);
  const t0 = Date.now();
  for (let i = 0; i < set.jobs.length; i += 500) await queue.addBulk(set.jobs.slice(i, i + 500).map((j) => stamped(j, Date.now())));
  const { done, failed } = await finishedJobs(queue, set.jobs.length);
  const end = Math.max(...done.map((j) => j.finishedOn ?? 0));
  const stats = (await child.request({ type: "stats" }, "stats")) as unknown as WorkerStats;
  const harness = ownCpuSeconds() + (ctx.redisPid ? processCpuSeconds(ctx.redisPid) : 0) - harness0;
  const { peakRssBytes, points } = await closeWorkerChild(child, queue, ctx.server, collection, warmupPoints);
  const b = stats.batches;
  const stageMeanSeconds: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats.stages)) if (v.count > 0) stageMeanSeconds[k] = v.sum / v.count;
  return {
    seconds: (end - t0) / 1000,
    chunks: stats.metrics.embed_chunks_total,
    tokens: stats.metrics.embed_tokens_total,
    paddedTokens: stats.metrics.embed_padded_tokens_total,
    batches: stats.metrics.embed_batches_total,
    jobs: set.jobs.length,
    failedJobs: failed,
    expectedPoints: set.texts.length,
    pointsWritten: points,
    peakRssBytes,
    cpu: cpuWindow(stats.machineCpuSeconds, stats.cpuSeconds, harness, stats.windowSeconds, os.cpus().length),
    quietWait,
    analysis: {
      modelBusySeconds: unionLength(b) / 1000,
      headSeconds: b.length ? (Math.min(...b.map((x) => x.start)) - t0) / 1000 : NaN,
      tailSeconds: b.length ? (end - Math.max(...b.map((x) => x.end))) / 1000 : NaN,
      stageMeanSeconds,
      harnessCpuSeconds: harness,
      cpuSeconds: stats.cpuSeconds,
      mainThreadCpuSeconds: stats.mainThreadCpuSeconds,
      otherThreadsCpuSeconds: stats.otherThreadsCpuSeconds.slice(0, 6),
      meanBatchSize: b.length ? b.reduce((a, x) => a + x.size, 0) / b.length : 0,
    },
  };
}

export interface LatencyResult {
  offeredTokensPerSecond: number;
  achievedTokensPerSecond: number;
  enqueueSeconds: number;
  jobs: number;
  chunksPerJob: number;
  meanTokensPerJob: number;
  failedJobs: number;
  quietWait: QuietWait;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  peakRssBytes: number;
}

/** Job latency under a steady load of `tokensPerSecond`, offered for `seconds`. */
export async function measureLatency(
  ctx: E2eContext, texts: string[], lengths: number[], opts: { tokensPerSecond: number; seconds: number; chunksPerJob: number },
): Promise<LatencyResult> {
  const { child, queue, collection, warmupPoints } = await startWorkerChild(ctx, {}, texts);
  const quietWait = await ctx.gate(child.pid);
  const t0 = Date.now();
  let offset = 0; // seconds after t0 at which the next job is due
  let i = 0;
  let tokens = 0;
  while (offset < opts.seconds) {
    const chunks = [];
    let jobTokens = 0;
    for (let k = 0; k < opts.chunksPerJob; k++) {
      const at = (i * opts.chunksPerJob + k) % texts.length;
      chunks.push({ index: k, text: texts[at], metadata: {} });
      jobTokens += lengths[at];
    }
    const wait = t0 + offset * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const data: EmbedJobData = { v: JOB_SCHEMA_VERSION, docId: `latency-${i}`, part: 0, parts: 1, docHash: `latency-${i}`, enqueuedAt: Date.now(), metadata: {}, chunks };
    await queue.add(JOB_NAME, data, { jobId: `latency-${i}`, removeOnComplete: false, removeOnFail: false });
    tokens += jobTokens;
    offset += jobTokens / opts.tokensPerSecond;
    i++;
  }
  const enqueueSeconds = (Date.now() - t0) / 1000;
  const { done, failed } = await finishedJobs(queue, i);
  const latencies = done.map((j) => (j.finishedOn ?? NaN) - j.timestamp);
  const end = Math.max(...done.map((j) => j.finishedOn ?? 0));
  await child.request({ type: "stats" }, "stats");
  const { peakRssBytes } = await closeWorkerChild(child, queue, ctx.server, collection, warmupPoints);
  return {
    offeredTokensPerSecond: opts.tokensPerSecond,
    achievedTokensPerSecond: tokens / ((end - t0) / 1000),
    enqueueSeconds,
    jobs: i,
    chunksPerJob: opts.chunksPerJob,
    meanTokensPerJob: tokens / i,
    failedJobs: failed,
    quietWait,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    peakRssBytes,
  };
}
