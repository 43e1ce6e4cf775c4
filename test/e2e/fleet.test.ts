/** Several worker processes on one queue (issue 16, item 4): three workers share a backlog and
 *  write every point exactly once; one of three is SIGKILLed mid-run and, with the default lock
 *  and stalled-check settings, the others finish its jobs within 30 s, rewriting only the points
 *  of jobs it held; a rolling restart (SIGTERM one worker at a time, start a replacement) fails
 *  no job and writes every point once. Each worker's share comes from its own `/metrics`, and the
 *  job's BullMQ `processedBy` says which process took it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import { waitFor } from "../../kit/harness.js";
import { workerFixture } from "../support/worker-fixture.js";
import {
  assertWrites,
  completedBy,
  fleetBacklog,
  fleetQueue,
  jobsIn,
  pointsOf,
  type FleetWorker,
} from "../support/fleet.js";

const fx = workerFixture();
const defaults = parseConfig({});

async function shares(workers: FleetWorker[]): Promise<number[]> {
  return Promise.all(workers.map(completedBy));
}

const allDone = (q: ReturnType<typeof fleetQueue>["queue"], n: number) => async () =>
  (await q.getJobCounts("completed")).completed === n;

async function assertNothingLeft(q: ReturnType<typeof fleetQueue>["queue"]) {
  assert.deepEqual(await q.getJobCounts("failed", "active", "waiting", "delayed"), {
    failed: 0,
    active: 0,
    waiting: 0,
    delayed: 0,
  });
}

test("3 workers on one queue: every point stored exactly once, the jobs shared between them", async (t) => {
  const f = fleetQueue(fx, "fleet3");
  const b = fleetBacklog(300, 8);
  const workers = await Promise.all([f.start(), f.start(), f.start()]);
  const t0 = Date.now();
  await f.queue.addBulk(b.jobs);
  await waitFor(allDone(f.queue, b.jobs.length), 50_000, "every job completed");
  const took = Date.now() - t0;
  await assertNothingLeft(f.queue);
  assertWrites(fx.server.writeCounts(f.collection), b.expected);
  const share = await shares(workers);
  assert.equal(
    share.reduce((a, n) => a + n, 0),
    b.jobs.length,
    `the workers' completed counts ${share} do not add up`,
  );
  for (const [i, n] of share.entries()) assert.ok(n > 0, `worker ${i} took no job`);
  const byName = new Map(workers.map((w) => [w.name, 0]));
  for (const j of await jobsIn(f.queue, "completed")) byName.set(j.processedBy!, (byName.get(j.processedBy!) ?? 0) + 1);
  assert.deepEqual([...byName.values()], share, "processedBy and the metrics disagree");
  t.diagnostic(
    `${b.jobs.length} jobs, ${b.expected.size} chunks in ${took} ms; jobs per worker: ${share.join(" / ")} ` +
      `(${share.map((n) => ((100 * n) / b.jobs.length).toFixed(0)).join(" / ")} %)`,
  );
  await Promise.all(workers.map((w) => w.child.stop()));
});

test("one of 3 workers SIGKILLed mid-run: its jobs finish elsewhere within 30 s", async (t) => {
  const f = fleetQueue(fx, "fleetkill");
  const b = fleetBacklog(240, 8);
  fx.server.setFault({ kind: "delay", ms: 100 }); // keep batches in flight
  const workers = await Promise.all([f.start(), f.start(), f.start()]);
  const [victim, ...survivors] = workers;
  await f.queue.addBulk(b.jobs);
  const victims = new Set([victim.name]);
  await waitFor(
    async () =>
      (await f.queue.getJobCounts("completed")).completed >= 30 &&
      (await jobsIn(f.queue, "active", victims)).length > 0,
    30_000,
    "some jobs done and some in flight in the victim",
  );
  victim.child.proc.kill("SIGKILL");
  const killedAt = Date.now();
  assert.equal((await victim.child.exited).signal, "SIGKILL");
  fx.server.setFault(null);
  const stranded = await jobsIn(f.queue, "active", victims);
  assert.ok(stranded.length > 0, "the victim held no job at the kill");
  const strandedIds = stranded.map((j) => j.id!);
  let recoveredAt = 0;
  await waitFor(
    async () => {
      const states = await Promise.all(strandedIds.map((id) => f.queue.getJobState(id)));
      if (states.every((s) => s === "completed")) recoveredAt ||= Date.now();
      return recoveredAt > 0 && (await allDone(f.queue, b.jobs.length)());
    },
    45_000,
    "the victim's jobs and the rest completed",
  );
  const recoveryMs = recoveredAt - killedAt;
  await assertNothingLeft(f.queue);
  for (const id of strandedIds) {
    const job = (await f.queue.getJob(id))!;
    assert.ok(
      survivors.some((w) => w.name === job.processedBy),
      `${id} was finished by ${job.processedBy}, not a survivor`,
    );
  }
  const rewritten = assertWrites(fx.server.writeCounts(f.collection), b.expected, pointsOf(stranded));
  assert.ok(recoveryMs <= 30_000, `recovery took ${recoveryMs} ms`);
  const share = await shares(survivors);
  t.diagnostic(
    `victim held ${stranded.length} jobs at the kill; all done elsewhere ${recoveryMs} ms after it ` +
      `(LOCK_DURATION_MS=${defaults.LOCK_DURATION_MS}, STALLED_INTERVAL_MS=${defaults.STALLED_INTERVAL_MS}); ` +
      `points rewritten: ${rewritten} of ${pointsOf(stranded).size}; survivors' jobs: ${share.join(" / ")}`,
  );
  await Promise.all(survivors.map((w) => w.child.stop()));
});

test("rolling restart of 3 workers, one SIGTERM at a time: no job failed, every point once", async (t) => {
  const f = fleetQueue(fx, "fleetroll");
  const b = fleetBacklog(360, 8);
  fx.server.setFault({ kind: "delay", ms: 40 }); // keep a backlog through the three restarts
  const env = { DRAIN_TIMEOUT_MS: "30000" };
  const workers = await Promise.all([f.start(env), f.start(env), f.start(env)]);
  await f.queue.addBulk(b.jobs);
  const names = workers.map((w) => w.name);
  for (let i = 0; i < workers.length; i++) {
    await waitFor(async () => (await f.queue.getJobCounts("active")).active > 0, 20_000, "work in flight");
    const { waiting } = await f.queue.getJobCounts("waiting");
    assert.ok(waiting > 0, `restart ${i + 1}: the backlog ran out before it`);
    workers[i].child.proc.kill("SIGTERM");
    assert.equal((await workers[i].child.exited).code, 0, workers[i].child.output().slice(-2000));
    workers[i] = await f.start(env);
    names.push(workers[i].name);
  }
  fx.server.setFault(null);
  await waitFor(allDone(f.queue, b.jobs.length), 45_000, "every job completed");
  await assertNothingLeft(f.queue);
  assertWrites(fx.server.writeCounts(f.collection), b.expected);
  const byName = new Map(names.map((n) => [n, 0]));
  for (const j of await jobsIn(f.queue, "completed")) byName.set(j.processedBy!, (byName.get(j.processedBy!) ?? 0) + 1);
  assert.equal(byName.size, names.length, "a job was processed by a worker this test did not start");
  const share = [...byName.values()];
  t.diagnostic(`jobs per worker: stopped ${share.slice(0, 3).join(" / ")}, replacements ${share.slice(3).join(" / ")}`);
  await Promise.all(workers.map((w) => w.child.stop()));
});
