/** One ceiling run: a fresh worker process (children/ceiling-child.ts: the real assembly with the
 *  instant stand-in session) on a fresh queue and collection, the Qdrant stand-in in its own
 *  process. The queue is paused while the whole backlog is added, so the worker starts on a full
 *  queue; the window runs from the resume to the last job finished. Per-chunk CPU is the CPU
 *  each thread used in that window over the chunks it embedded: a window that cut off the start
 *  and the end would miss each job's fetch and completion, which happen there. A run is valid
 *  only if the worker embedded exactly the chunks enqueued, every job completed and the
 *  stand-in holds one point per chunk; otherwise it throws, saying which. */
import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import type { RedisClient } from "../../shared/redis.js";
import { BenchChild } from "../lib/child-process.js";
import { warmUp } from "../lib/worker-process.js";
import type { BenchJob } from "../lib/corpus.js";
import type { Gate } from "../lib/measure-children.js";
import type { CeilingRun } from "../lib/results-schema.js";
import type { CeilingStats } from "../children/ceiling-child.js";

export interface CeilingContext {
  connection: RedisClient;
  /** The Qdrant stand-in child and its URL. */
  qdrant: { child: BenchChild; url: string };
  /** Worker settings (the project's environment variables). */
  env: Record<string, string>;
  prefix: string;
  gate: Gate;
}

const THREAD_TAGS = new URL("./thread-tags.js", import.meta.url).href;

/** CEILING_CPU_PROF=<dir>: a V8 CPU profile of each worker process (see the bench's --help). */
function cpuProfArgs(): string[] {
  const dir = process.env.CEILING_CPU_PROF;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/** One job of the backlog's first chunks, waited for: the tokenizer threads have then loaded the tokenizer. */
async function warmUpWorker(queue: Queue, jobs: BenchJob[]): Promise<void> {
  const texts = jobs.flatMap((j) => j.data.chunks.map((c) => c.text));
  await warmUp(queue, texts, 5 * 60_000);
}

async function drained(queue: Queue, total: number, seconds = 1800): Promise<{ completed: number; failed: number }> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const c = await queue.getJobCounts("completed", "failed");
    if (c.completed + c.failed >= total) return { completed: c.completed, failed: c.failed };
    if (Date.now() > deadline)
      throw new Error(`only ${c.completed + c.failed} of ${total} jobs finished in ${seconds} s`);
    // Polling Redis costs the worker nothing; the window's end is read from the worker itself.
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the backlog `jobs` once through a fresh worker with `extraEnv` (e.g. OUTPUTS). */
export async function measureCeilingRun(
  ctx: CeilingContext,
  jobs: BenchJob[],
  extraEnv: Record<string, string>,
  round: number,
): Promise<CeilingRun> {
  const id = randomUUID().slice(0, 8);
  const queueName = `bench-ceiling-${id}`;
  const collection = `bench_ceiling_${id}`;
  const child = BenchChild.start(
    "./ceiling-child.js",
    {
      ...ctx.env,
      ...extraEnv,
      HTTP_PORT: "0",
      HTTP_HOST: "127.0.0.1",
      QUEUE_NAME: queueName,
      COLLECTION: collection,
      QDRANT_URL: ctx.qdrant.url,
    },
    ["--import", THREAD_TAGS, ...cpuProfArgs()],
  );
  let exited = false;
  void child.exit.then(() => (exited = true));
  const queue = new Queue(queueName, { connection: ctx.connection, prefix: ctx.prefix });
  try {
    await child.next("ready", 5 * 60_000);
    await warmUpWorker(queue, jobs);
    const warm = await countPoints(ctx, collection);
    await queue.pause();
    for (let i = 0; i < jobs.length; i += 500) {
      await queue.addBulk(
        jobs.slice(i, i + 500).map((j) => ({
          ...j,
          data: { ...j.data, enqueuedAt: Date.now() },
          opts: { ...j.opts, removeOnComplete: false, removeOnFail: false },
        })),
      );
    }
    const quietWait = await ctx.gate(child.pid);
    await child.request({ type: "mark" }, "marked");
    await queue.resume();
    const { failed } = await drained(queue, jobs.length);
    const stats = await child.request<CeilingStats & { [k: string]: unknown }>({ type: "stats" }, "stats");
    const enqueued = jobs.reduce((a, j) => a + j.data.chunks.length, 0);
    const stored = await counted(ctx, collection);
    const points = stored.points - warm;
    const c = stats.counters;
    if (failed > 0 || c.embed_chunks_total !== enqueued || points !== enqueued) {
      const reason = failed ? ` (first failure: ${(await queue.getFailed(0, 0))[0]?.failedReason})` : "";
      throw new Error(
        `ceiling run ${round} is invalid: ${enqueued} chunks enqueued, ${c.embed_chunks_total} embedded, ` +
          `${points} points stored, ${failed} of ${jobs.length} jobs failed${reason}`,
      );
    }
    const cpu = (role: string) => stats.threads.filter((t) => t.role === role);
    const sum = (list: Array<{ cpuSeconds: number }>) => list.reduce((a, t) => a + t.cpuSeconds, 0);
    return {
      round,
      windowSeconds: stats.windowSeconds,
      jobs: jobs.length,
      chunksEnqueued: enqueued,
      chunks: c.embed_chunks_total,
      tokens: c.embed_tokens_total,
      paddedTokens: c.embed_padded_tokens_total,
      batches: c.embed_batches_total,
      sinkRequests: c.embed_sink_requests_total,
      pointsStored: points,
      vectorSizes: Object.fromEntries(
        Object.entries(stored.params?.vectors ?? {}).map(([name, v]) => [name, Number(v.size)]),
      ),
      failedJobs: failed,
      cpuSource: stats.cpuSource,
      tokenizerBackend: stats.tokenizerBackend,
      cpuSeconds: {
        main: sum(cpu("main")),
        tokenizer: cpu("tokenizer")
          .sort((a, b) => a.tid - b.tid)
          .map((t) => t.cpuSeconds),
        model: sum(cpu("model")),
        other: sum(cpu("other")),
      },
      quietWait,
    };
  } finally {
    // A child that died already cannot be asked (sending on its closed channel would throw).
    if (!exited) await child.request({ type: "close" }, "closed").catch(() => child.kill());
    await child.stop();
    await ctx.qdrant.child.request({ type: "drop", collection }, "dropped");
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

interface Counted {
  type: string;
  points: number;
  params: { vectors?: Record<string, { size?: number }> } | null;
}

async function counted(ctx: CeilingContext, collection: string): Promise<Counted> {
  return ctx.qdrant.child.request<Counted & { [k: string]: unknown }>({ type: "count", collection }, "counted");
}

async function countPoints(ctx: CeilingContext, collection: string): Promise<number> {
  return (await counted(ctx, collection)).points;
}
