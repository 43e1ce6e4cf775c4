/** Ready means able to work (issue 16): a worker process against a private redis-server that
 *  refuses BullMQ's fetches, in two ways reproducible without a cluster: an ACL user without
 *  `evalsha`/`eval` (NOPERM on every script) and `maxmemory` below what the server already uses
 *  with `noeviction` (OOM on every write; the same state as a full server, reached at once). A job
 *  waits in the queue all along. While Redis refuses, `/health/ready` answers 503 naming the
 *  reason, `embed_queue_errors_total{reason}` counts the errors, the log holds a handful of lines
 *  and the process stays nearly idle (BullMQ alone retried at once: one core, thousands of lines a
 *  second). Once Redis is repaired the worker turns ready again and embeds the waiting job. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Queue } from "bullmq";
import type { RedisClient } from "../../shared/redis.js";
import { redisConnection } from "../../shared/redis.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { uniqueQueue, waitFor } from "../../kit/harness.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import { redisServerAvailable, startTestRedis, type TestRedis } from "../../kit/redis-server.js";
import { sleep } from "../../kit/reliability.js";
import { suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ redis: false, qdrant: "server" });
const CPU_WINDOW_MS = 5_000;
/** Process CPU over the window while Redis refuses: generous for a 2-core CI box; a spinning
 *  fetch loop uses the whole window (about 5 s). */
const CPU_BOUND_S = 1.0;
const MAX_ERROR_LOG_LINES = 6;

/** utime + stime of a live process, seconds (Linux /proc, 100 ticks a second). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

function metricValue(text: string, name: string, reason: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{reason="${reason}"}`));
  return line ? Number(line.split(" ").pop()) : NaN;
}

function oneJob(docId: string) {
  const data: EmbedJobData = {
    v: JOB_SCHEMA_VERSION,
    docId,
    part: 0,
    parts: 1,
    docHash: `h-${docId}`,
    enqueuedAt: Date.now(),
    metadata: {},
    chunks: [{ index: 0, text: `the chunk of ${docId}, waiting while Redis refuses the worker`, metadata: {} }],
  };
  return { name: JOB_NAME, data, opts: { jobId: docId, attempts: 3 } };
}

interface Fault {
  reason: string;
  /** Breaks Redis for BullMQ; returns the REDIS_URL the worker uses. */
  inject(admin: RedisClient, redis: TestRedis): Promise<string>;
  repair(admin: RedisClient): Promise<void>;
}

const errorLines = (w: ChildWorker) => w.logs.filter((l) => String(l.msg ?? "").startsWith("BullMQ worker error"));

async function runFault(t: test.TestContext, fault: Fault): Promise<void> {
  const redis = await startTestRedis();
  fx.onCleanup(() => redis.close());
  const admin = redisConnection(redis.url);
  fx.onCleanup(async () => admin.disconnect());
  const queueName = uniqueQueue(`qerr-${fault.reason}`);
  const collection = `qerr_${queueName.replace(/-/g, "_")}`;
  const queue = new Queue(queueName, { connection: admin });
  fx.onCleanup(() => queue.close());
  const job = oneJob("doc-waiting");
  await queue.add(job.name, job.data, job.opts);
  const url = await fault.inject(admin, redis);
  const worker = await spawnWorker({
    REDIS_URL: url,
    QUEUE_NAME: queueName,
    QDRANT_URL: fx.server.url,
    COLLECTION: collection,
    MODEL_DIR: fx.modelDir,
    WARMUP: "false",
    MAX_BATCH_TOKENS: "2048",
    MAX_SEQ_LENGTH: "512",
  });
  fx.onCleanup(() => worker.stop("SIGKILL"));
  const port = await worker.started;

  await waitFor(async () => (await probe(port, "/health/ready")).status === 503, 20_000, "readiness to fail");
  const notReady = await probe(port, "/health/ready");
  assert.match(notReady.body, new RegExp(`queue: ${fault.reason}: \\d+ BullMQ errors`), notReady.body);
  const cpuBefore = cpuSeconds(worker.proc.pid!);
  await sleep(CPU_WINDOW_MS);
  const cpu = cpuSeconds(worker.proc.pid!) - cpuBefore;
  worker.assertAlive();
  const metrics = (await probe(port, "/metrics")).body;
  const counted = metricValue(metrics, "embed_queue_errors_total", fault.reason);
  const lines = errorLines(worker).length;
  assert.equal((await probe(port, "/health/ready")).status, 503, "ready while Redis still refuses");
  assert.match(metrics, /^embed_ready 0$/m);
  assert.ok(counted >= 3, `embed_queue_errors_total{reason="${fault.reason}"} is ${counted}`);
  assert.ok(lines >= 1 && lines <= MAX_ERROR_LOG_LINES, `${lines} error log lines for ${counted} errors`);
  assert.ok(cpu < CPU_BOUND_S, `the worker used ${cpu} s of CPU in ${CPU_WINDOW_MS} ms while Redis refused`);
  assert.equal((await queue.getJobCounts("wait")).wait, 1, "the job was taken although Redis refused");

  const repairedAt = Date.now();
  await fault.repair(admin);
  await waitFor(async () => (await probe(port, "/health/ready")).status === 200, 20_000, "readiness to return");
  const readyAfterMs = Date.now() - repairedAt;
  await waitFor(async () => (await queue.getJobCounts("completed")).completed === 1, 20_000, "the job to complete");
  assert.equal(fx.server.points(collection).size, 1, "the waiting job's point is stored");
  assert.ok(
    worker.logs.some((l) => l.msg === "BullMQ fetches jobs again after errors"),
    "recovery was not logged",
  );
  t.diagnostic(
    JSON.stringify({ reason: fault.reason, errorsCounted: counted, errorLogLines: lines, cpu, readyAfterMs }),
  );
  await worker.stop("SIGTERM");
}

const skip = !redisServerAvailable() && "redis-server is not installed";

test(
  "NOPERM: a user without evalsha/eval is not ready, logs a handful of lines, idles; ready again once granted",
  { skip },
  (t) =>
    runFault(t, {
      reason: "noperm",
      inject: async (admin, redis) => {
        await admin.call("ACL", "SETUSER", "embedder", "on", ">pw-16", "~*", "&*", "+@all", "-evalsha", "-eval");
        return redis.url.replace("redis://", "redis://embedder:pw-16@");
      },
      repair: async (admin) => void (await admin.call("ACL", "SETUSER", "embedder", "+evalsha", "+eval")),
    }),
);

test(
  "OOM: past maxmemory with noeviction: not ready, a handful of lines, idle; ready again once it has room",
  { skip },
  (t) =>
    runFault(t, {
      reason: "oom",
      inject: async (admin, redis) => {
        await admin.config("SET", "maxmemory-policy", "noeviction");
        await admin.config("SET", "maxmemory", "1");
        return redis.url;
      },
      repair: async (admin) => void (await admin.config("SET", "maxmemory", "0")),
    }),
);
