/** The worker as a real child process against a real Redis and the Qdrant test server over
 *  HTTP: killed with SIGKILL mid-batch, and stopped with SIGTERM both within and past the
 *  drain deadline. Every enqueued chunk must end up stored under its expected point id, with
 *  no extra ids; rewrites are allowed only for jobs that were in flight when the worker died. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Queue } from "bullmq";
import { pointId } from "../../shared/ids.js";
import { waitFor } from "../../kit/harness.js";
import { fleetBacklog } from "../support/fleet.js";
import { workerFixture } from "../support/worker-fixture.js";

const fx = workerFixture();

function setup(docs: number, chunksPerDoc: number) {
  const { queue, queueName, collection } = fx.newQueue("rel");
  // The same texts as before the shared backlog builder: chunk i of document d.
  const { jobs, expected } = fleetBacklog(docs, chunksPerDoc, (n) => {
    const d = Math.floor(n / chunksPerDoc);
    const i = n % chunksPerDoc;
    return `document ${d} chunk ${i}: ${"words that make the chunk longer ".repeat(1 + ((d * 7 + i) % 9))}`;
  });
  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: "redis://127.0.0.1:6379",
    QUEUE_NAME: queueName,
    QDRANT_URL: fx.server.url,
    COLLECTION: collection,
    MODEL_DIR: fx.modelDir,
    BATCH_LINGER_MS: "2",
    UPSERT_LINGER_MS: "2",
    SINK_RETRY_BASE_MS: "50",
    WORKER_CONCURRENCY: "8",
    ...extra,
  });
  const start = (extra: Record<string, string> = {}) => fx.spawn(env(extra));
  return { queue, collection, expected, jobs, start };
}

const storedIds = (collection: string) => new Set([...fx.server.points(collection).keys()].map(String));

async function jobIdsIn(queue: Queue, state: "active" | "completed" | "wait"): Promise<string[]> {
  const jobs = await queue.getJobs([state], 0, -1);
  return jobs.map((j) => j.id!);
}

test("SIGKILL mid-batch: a new worker recovers the stalled jobs; every point stored, no extra ids, rewrites only for in-flight jobs", async (t) => {
  const s = setup(40, 6);
  const lockMs = 2000;
  const stalledMs = 1000;
  const env = { LOCK_DURATION_MS: String(lockMs), STALLED_INTERVAL_MS: String(stalledMs) };
  fx.server.setFault({ kind: "delay", ms: 150 }); // keep batches in flight
  const w1 = await s.start(env);
  await w1.started;
  await s.queue.addBulk(s.jobs);
  await waitFor(
    async () =>
      (await s.queue.getJobCounts("completed")).completed >= 5 && (await s.queue.getJobCounts("active")).active > 0,
    60_000,
    "some jobs done, some in flight",
  );
  w1.proc.kill("SIGKILL");
  const killedAt = Date.now();
  assert.equal((await w1.exited).signal, "SIGKILL");
  const inFlight = new Set(await jobIdsIn(s.queue, "active"));
  const doneBefore = new Set(await jobIdsIn(s.queue, "completed"));
  assert.ok(inFlight.size > 0, "no job was in flight at the kill");
  fx.server.setFault(null);

  const w2 = await s.start(env);
  await w2.started;
  const restartedAt = Date.now();
  await waitFor(
    async () => (await s.queue.getJobCounts("completed")).completed === s.jobs.length,
    60_000,
    "every job completed after the restart",
  );
  const recoveredAt = Date.now();
  const counts = await s.queue.getJobCounts("failed", "active", "waiting", "delayed");
  assert.deepEqual(counts, { failed: 0, active: 0, waiting: 0, delayed: 0 });

  assert.deepEqual(
    [...storedIds(s.collection)].sort(),
    [...s.expected].sort(),
    "stored point ids differ from the enqueued chunks",
  );
  const writes = fx.server.writeCounts(s.collection);
  let rewritten = 0;
  for (const job of s.jobs) {
    for (const c of job.data.chunks) {
      const n = writes.get(pointId(job.data.docId, c.index)) ?? 0;
      const id = job.opts.jobId;
      if (inFlight.has(id)) {
        assert.ok(n >= 1 && n <= 2, `${id} chunk ${c.index} written ${n} times`);
        if (n === 2) rewritten++;
      } else {
        assert.equal(
          n,
          1,
          `${id} (${doneBefore.has(id) ? "completed before" : "waiting at"} the kill) chunk ${c.index} written ${n} times`,
        );
      }
    }
  }
  t.diagnostic(
    `in flight at kill: ${inFlight.size} jobs; points rewritten: ${rewritten}; recovery: ${recoveredAt - killedAt} ms after the kill, ${recoveredAt - restartedAt} ms after the new worker started (LOCK_DURATION_MS=${lockMs}, STALLED_INTERVAL_MS=${stalledMs})`,
  );
  w2.proc.kill("SIGTERM");
  assert.equal((await w2.exited).code, 0);
});

test("SIGTERM with work in flight: stops taking jobs, finishes in-flight ones, exits 0, nothing left active", async () => {
  const s = setup(30, 4);
  const w = await s.start({ WORKER_CONCURRENCY: "4", DRAIN_TIMEOUT_MS: "30000" });
  await w.started;
  await s.queue.addBulk(s.jobs);
  await waitFor(
    async () =>
      (await s.queue.getJobCounts("active")).active > 0 && (await s.queue.getJobCounts("completed")).completed >= 2,
    30_000,
    "work in flight",
  );
  w.proc.kill("SIGTERM");
  const { code } = await w.exited;
  assert.equal(code, 0, w.output());
  const c = await s.queue.getJobCounts("active", "completed", "waiting", "failed");
  assert.equal(c.active, 0, "a job was left active");
  assert.equal(c.failed, 0);
  assert.ok(c.waiting > 0, "the worker should have stopped taking new jobs");
  assert.equal(c.completed + c.waiting, s.jobs.length);
  assert.ok(
    w.logs.some((l) => l.msg === "stopped"),
    "no 'stopped' log line",
  );
});

test("SIGTERM past the drain deadline: not ready while draining, in-flight jobs handed back to the queue, exit 0; another worker completes them", async () => {
  const s = setup(6, 3);
  const release = fx.server.holdUpserts(); // nothing can finish
  const w = await s.start({ DRAIN_TIMEOUT_MS: "1500", HEALTH_CHECK_TIMEOUT_MS: "200" });
  const port = await w.started;
  await s.queue.addBulk(s.jobs);
  await waitFor(async () => (await s.queue.getJobCounts("active")).active === s.jobs.length, 20_000, "all jobs active");
  assert.equal((await fetch(`http://127.0.0.1:${port}/health/ready`)).status, 200);
  const signalledAt = Date.now();
  w.proc.kill("SIGTERM");
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 503,
    1000,
    "not ready while draining",
  );
  const { code } = await w.exited;
  const tookMs = Date.now() - signalledAt;
  assert.equal(code, 0, w.output());
  assert.ok(tookMs >= 1400 && tookMs < 10_000, `exit ${tookMs} ms after SIGTERM with DRAIN_TIMEOUT_MS=1500`);
  const c = await s.queue.getJobCounts("active", "waiting", "failed", "completed");
  assert.deepEqual(
    c,
    { active: 0, waiting: s.jobs.length, failed: 0, completed: 0 },
    "in-flight jobs must be back in the wait list",
  );
  for (const job of await s.queue.getJobs(["wait"]))
    assert.equal(job.attemptsMade, 0, "handing back must not use up an attempt");
  assert.ok(
    w.logs.some(
      (l) => l.msg === "drain deadline passed: handing in-flight jobs back to the queue" && l.jobs === s.jobs.length,
    ),
  );

  release();
  const w2 = await s.start();
  await w2.started;
  await waitFor(
    async () => (await s.queue.getJobCounts("completed")).completed === s.jobs.length,
    30_000,
    "second worker completes the handed-back jobs",
  );
  assert.deepEqual([...storedIds(s.collection)].sort(), [...s.expected].sort());
  w2.proc.kill("SIGTERM");
  assert.equal((await w2.exited).code, 0);
});
