/** Parent side of the end-to-end measurements. The worker runs in a child process
 *  (lib/worker-process.ts: real Redis, the strict Qdrant-compatible test server in this
 *  process, warmed up before timing). Throughput: every job
 *  is added with addBulk at once, timed from just before the first add to the latest
 *  `finishedOn` BullMQ records. Latency: jobs are added one by one at a fixed token rate for a
 *  fixed time, and each job's latency is its `finishedOn - timestamp`. Each run gets a fresh
 *  queue and collection. */
import os from "node:os";
import type { Job, Queue } from "bullmq";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { cpuWindow, harnessCpuSeconds } from "../lib/cpu.js";
import type { BenchJob, ChunkSet } from "../lib/corpus.js";
import type { E2eResult, LatencyResult } from "../lib/results-schema.js";
import { closeWorkerChild, startWorkerChild, type E2eContext } from "../lib/worker-process.js";
import { percentile, unionLength } from "../lib/stats.js";
import type { WorkerStats } from "../children/worker-child.js";

async function finishedJobs(queue: Queue, total: number, seconds = 1800): Promise<{ done: Job[]; failed: number }> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const c = await queue.getJobCounts("completed", "failed");
    if (c.completed + c.failed >= total) {
      return { done: await queue.getJobs(["completed"], 0, -1), failed: c.failed };
    }
    if (Date.now() > deadline)
      throw new Error(`only ${c.completed + c.failed} of ${total} jobs finished within ${seconds} s`);
    // The end time comes from finishedOn, so polling slowly costs no accuracy, only Redis and CPU the worker could use.
    await new Promise((r) => setTimeout(r, 200));
  }
}

function stamped(job: BenchJob, now: number): BenchJob {
  return {
    ...job,
    data: { ...job.data, enqueuedAt: now },
    opts: { ...job.opts, removeOnComplete: false, removeOnFail: false },
  };
}

/** Throughput of one worker configuration on one chunk set. */
export async function measureE2e(
  ctx: E2eContext,
  set: ChunkSet,
  extraEnv: Record<string, string> = {},
): Promise<E2eResult> {
  const { child, queue, collection, warmupPoints } = await startWorkerChild(ctx, extraEnv, set.texts);
  const quietWait = await ctx.gate(child.pid);
  await child.request({ type: "mark" }, "marked");
  const harness0 = harnessCpuSeconds(ctx.redisPid);
  const t0 = Date.now();
  for (let i = 0; i < set.jobs.length; i += 500)
    await queue.addBulk(set.jobs.slice(i, i + 500).map((j) => stamped(j, Date.now())));
  const { done, failed } = await finishedJobs(queue, set.jobs.length);
  const end = Math.max(...done.map((j) => j.finishedOn ?? 0));
  const stats = (await child.request({ type: "stats" }, "stats")) as unknown as WorkerStats;
  const harness = harnessCpuSeconds(ctx.redisPid) - harness0;
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

/** Job latency under a steady load of `tokensPerSecond`, offered for `seconds`. */
export async function measureLatency(
  ctx: E2eContext,
  texts: string[],
  lengths: number[],
  opts: { tokensPerSecond: number; seconds: number; chunksPerJob: number },
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
    const data: EmbedJobData = {
      v: JOB_SCHEMA_VERSION,
      docId: `latency-${i}`,
      part: 0,
      parts: 1,
      docHash: `latency-${i}`,
      enqueuedAt: Date.now(),
      metadata: {},
      chunks,
    };
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
