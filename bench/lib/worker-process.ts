/** A measured worker: one child process (children/worker-child.ts) assembled as `npm run worker`
 *  does, on a fresh queue and collection, against the real Redis and the strict Qdrant-compatible
 *  test server in the bench process. Before anything is timed, one small job goes through it so
 *  its tokenizer threads have loaded the tokenizer (startWorker returns before they have; with
 *  the 250k vocabulary that takes over a second). Used by the end-to-end and priority benches. */
import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import type { RedisClient } from "../../shared/redis.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import type { QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { BenchChild } from "./child-process.js";
import type { Gate } from "./measure-children.js";

export interface E2eContext {
  connection: RedisClient;
  server: QdrantTestServer;
  /** Worker settings (the project's environment variables). */
  env: Record<string, string>;
  /** Extra Node flags for the worker process (e.g. --cpu-prof). */
  execArgv?: string[];
  /** The Redis server's pid when it runs on this machine, for CPU accounting. */
  redisPid?: number;
  gate: Gate;
}

const WARMUP_ID = "warmup";

/** One job of the set's first chunks through the whole worker, waited for (up to `timeoutMs`). */
export async function warmUp(queue: Queue, texts: string[], timeoutMs = 10 * 60_000): Promise<number> {
  const chunks = texts.slice(0, 8).map((text, index) => ({ index, text, metadata: {} }));
  const data: EmbedJobData = {
    v: JOB_SCHEMA_VERSION,
    docId: WARMUP_ID,
    part: 0,
    parts: 1,
    docHash: WARMUP_ID,
    enqueuedAt: Date.now(),
    metadata: {},
    chunks,
  };
  const job = await queue.add(JOB_NAME, data, { jobId: WARMUP_ID });
  const deadline = Date.now() + timeoutMs;
  while (!(await job.isCompleted())) {
    if ((await job.isFailed()) || Date.now() > deadline)
      throw new Error(`warm-up job did not complete: ${(await queue.getJob(WARMUP_ID))?.failedReason ?? "timed out"}`);
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
  const child = BenchChild.start(
    "./worker-child.js",
    {
      ...ctx.env,
      HTTP_PORT: "0",
      ...extraEnv,
      QUEUE_NAME: queueName,
      COLLECTION: collection,
      QDRANT_URL: ctx.server.url,
    },
    ctx.execArgv ?? [],
  );
  await child.next("ready", 10 * 60_000);
  const queue = new Queue(queueName, { connection: ctx.connection, prefix: ctx.env.QUEUE_PREFIX ?? "bull" });
  const warmupPoints = await warmUp(queue, texts);
  return { child, queue, collection, warmupPoints };
}

export async function closeWorkerChild(
  child: BenchChild,
  queue: Queue,
  server: QdrantTestServer,
  collection: string,
  warmupPoints: number,
) {
  const closed = await child.request<{ type: "closed"; peakRssBytes: number }>({ type: "close" }, "closed");
  await child.stop();
  const points = server.points(collection).size - warmupPoints;
  server.reset();
  await queue.obliterate({ force: true });
  await queue.close();
  return { peakRssBytes: closed.peakRssBytes, points };
}
