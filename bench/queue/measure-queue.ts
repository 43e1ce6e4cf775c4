/** The queue bench's measurements against a private redis-server. Workers: `workers` child
 *  processes assembled as `npm run worker` does (children/worker-child.ts) on one queue, writing
 *  to the Qdrant stand-in in this process. A cell: with the queue paused, Redis is read (INFO),
 *  the backlog is added with addBulk in bulks of 500 as the producer adds it, Redis is read again
 *  (memory per waiting job), the queue is resumed and polled until nothing waits or runs, and
 *  Redis is read a third time: commands, command time and process CPU cover the add, the drain
 *  and the workers' own polling. The harness's reads are removed from the counts by name and
 *  number (INFO, its LLEN/ZCARD polls, the one resume script); their CPU, microseconds, stays in.
 *  Then, optionally, a second smaller drain with MONITOR on tells client commands from commands
 *  run inside Lua scripts (MONITOR costs Redis CPU, so nothing else is taken from that drain). */
import os from "node:os";
import { Redis } from "ioredis";
import { Queue } from "bullmq";
import type { BulkJob } from "../../producer/enqueue.js";
import type { QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { BenchChild } from "../lib/child-process.js";
import { machineBusySeconds, ownCpuSeconds, processCpuSeconds } from "../lib/cpu.js";
import type { QueueCell, QueueCellKey } from "../lib/results-schema.js";
import { commandDelta, snapshot } from "./redis-info.js";

export interface QueueRig {
  url: string;
  /** For INFO snapshots. */
  redis: Redis;
  /** For the drain polls (its own connection, so MONITOR can leave it out). */
  poll: Redis;
  queue: Queue;
  queueName: string;
  prefix: string;
  redisPid: number;
  server: QdrantTestServer;
  collection: string;
  children: BenchChild[];
}

const BULK = 500;
const POLL_MS = 25;
const IDLE_MS = 1000;

/** W worker processes on one fresh queue, each ready (model loaded, warm-up batch run). */
export async function startRig(
  base: Omit<QueueRig, "queue" | "queueName" | "collection" | "children">,
  env: Record<string, string>,
  workers: number,
  tag: string,
): Promise<QueueRig> {
  const queueName = `qbench-${tag}`;
  const collection = `qbench_${tag.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const children: BenchChild[] = [];
  for (let i = 0; i < workers; i++) {
    children.push(
      BenchChild.start("./worker-child.js", {
        ...env,
        HTTP_PORT: "0",
        REDIS_URL: base.url,
        QUEUE_PREFIX: base.prefix,
        QUEUE_NAME: queueName,
        COLLECTION: collection,
        QDRANT_URL: base.server.url,
      }),
    );
  }
  await Promise.all(children.map((c) => c.next("ready", 10 * 60_000)));
  const queue = new Queue(queueName, { connection: base.redis, prefix: base.prefix });
  return { ...base, queue, queueName, collection, children };
}

export async function stopRig(rig: QueueRig): Promise<void> {
  for (const c of rig.children) {
    await c.request({ type: "close" }, "closed");
    await c.stop();
  }
  rig.server.reset();
  await rig.queue.obliterate({ force: true });
  await rig.queue.close();
}

async function add(queue: Queue, jobs: BulkJob[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += BULK) await queue.addBulk(jobs.slice(i, i + BULK));
}

/** Polls until no job of the queue waits, runs or is delayed; returns the polls made (4 commands each). */
async function drained(rig: QueueRig, timeoutMs = 20 * 60_000): Promise<number> {
  const k = (s: string) => `${rig.prefix}:${rig.queueName}:${s}`;
  const deadline = Date.now() + timeoutMs;
  for (let polls = 1; ; polls++) {
    const r = (await rig.poll
      .pipeline()
      .llen(k("wait"))
      .llen(k("active"))
      .zcard(k("prioritized"))
      .zcard(k("delayed"))
      .exec())!;
    if (r.every(([err, n]) => !err && n === 0)) return polls;
    if (Date.now() > deadline) throw new Error(`queue ${rig.queueName} not drained within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

/** Warm-up: `jobs` through the workers, unmeasured (each worker's tokenizer threads load on first use). */
export async function warmUp(rig: QueueRig, jobs: BulkJob[]): Promise<void> {
  await add(rig.queue, jobs);
  await drained(rig);
}

const childCpu = (rig: QueueRig) => rig.children.reduce((a, c) => a + (processCpuSeconds(c.pid) || 0), 0);

export async function measureCell(
  rig: QueueRig,
  key: QueueCellKey,
  set: { jobs: BulkJob[]; chunks: number; tokens: number; dataBytes: number },
): Promise<QueueCell> {
  const failedKey = `${rig.prefix}:${rig.queueName}:failed`;
  await rig.queue.pause();
  const failed0 = await rig.redis.zcard(failedKey);
  const points0 = rig.server.pointIds(rig.collection).size;
  // Idle baseline: the workers connected and waiting, nothing queued (cron, AOF, blocked clients).
  const i0 = await snapshot(rig.redis);
  const idleT0 = performance.now();
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const i1 = await snapshot(rig.redis);
  const idleSeconds = (performance.now() - idleT0) / 1000;
  const idleCommands = commandDelta(i0, i1, { info: Number.MAX_SAFE_INTEGER }).reduce((a, c) => a + c.calls, 0);
  const s0 = await snapshot(rig.redis);
  const proc0 = processCpuSeconds(rig.redisPid);
  await add(rig.queue, set.jobs);
  const s1 = await snapshot(rig.redis);
  const machine0 = machineBusySeconds();
  const others0 = childCpu(rig) + ownCpuSeconds() + processCpuSeconds(rig.redisPid);
  const t0 = Date.now();
  await rig.queue.resume();
  const polls = await drained(rig);
  const wall = (Date.now() - t0) / 1000;
  const s2 = await snapshot(rig.redis);
  const proc1 = processCpuSeconds(rig.redisPid);
  const ours = childCpu(rig) + ownCpuSeconds() + processCpuSeconds(rig.redisPid) - others0;
  const othersCpuShare = Math.max(0, machineBusySeconds() - machine0 - ours) / (wall * os.cpus().length);
  // After the last snapshot: the newest finishedOn (the completed set is scored by it) and the failed count.
  const newest = await rig.redis.zrevrange(`${rig.prefix}:${rig.queueName}:completed`, 0, 0, "WITHSCORES");
  const failed = (await rig.redis.zcard(failedKey)) - failed0;
  const writes = [...rig.server.writeCounts(rig.collection).values()];

  const exclude = { info: Number.MAX_SAFE_INTEGER, llen: 2 * polls, zcard: 2 * polls, evalsha: 1 };
  const top = commandDelta(s0, s2, exclude);
  const harnessCalls = (s2.commands.get("info")?.calls ?? 0) - (s0.commands.get("info")?.calls ?? 0) + 4 * polls + 1;
  const finishedOn = Number(newest[1]);
  return {
    ...key,
    jobs: set.jobs.length,
    chunks: set.chunks,
    tokens: set.tokens,
    jobDataBytes: set.dataBytes,
    failedJobs: failed,
    pointsWritten: rig.server.pointIds(rig.collection).size - points0,
    maxWritesPerPoint: Math.max(0, ...writes),
    usedMemoryDeltaBytes: s1.usedMemory - s0.usedMemory,
    commands: top.reduce((a, c) => a + c.calls, 0),
    topCommands: top,
    commandUsec: top.reduce((a, c) => a + c.usec, 0),
    redisCpuSeconds: s2.cpuSeconds - s0.cpuSeconds,
    redisMainThreadCpuSeconds: s2.mainThreadCpuSeconds - s0.mainThreadCpuSeconds,
    redisProcCpuSeconds: proc1 - proc0,
    drainSeconds: Number.isFinite(finishedOn) && finishedOn >= t0 ? (finishedOn - t0) / 1000 : wall,
    harnessCalls,
    othersCpuShare,
    idle: { seconds: idleSeconds, cpuSeconds: i1.cpuSeconds - i0.cpuSeconds, commands: idleCommands },
  };
}

/** A second drain of `jobs` (new ids) with MONITOR on: commands clients sent vs commands Lua scripts ran. */
export async function monitorDrain(
  rig: QueueRig,
  jobs: BulkJob[],
): Promise<{ jobs: number; clientCommands: number; scriptCommands: number }> {
  const pollAddr = String(await rig.poll.call("client", "info")).match(/addr=(\S+)/)?.[1];
  const base = new Redis(rig.url);
  const monitor = await base.monitor();
  let client = 0;
  let script = 0;
  const sentinel = `qbench-sentinel-${Date.now()}`;
  let seen!: () => void;
  const sawSentinel = new Promise<void>((r) => (seen = r));
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (source === pollAddr) {
      if (args[0]?.toLowerCase() === "echo" && args[1] === sentinel) seen();
      return;
    }
    if (source === "lua") script++;
    else client++;
  });
  try {
    await add(rig.queue, jobs);
    await drained(rig);
    await rig.poll.echo(sentinel);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("MONITOR did not show the harness's sentinel within 30 s")), 30_000);
    });
    await Promise.race([sawSentinel, late]).finally(() => clearTimeout(timer));
  } finally {
    monitor.disconnect();
    base.disconnect();
  }
  return { jobs: jobs.length, clientCommands: client, scriptCommands: script };
}
