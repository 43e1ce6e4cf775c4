/** Poison jobs: jobs that can never succeed end in the failed set with an actionable reason,
 *  after a bounded number of attempts spaced by exponential backoff (JOB_ATTEMPTS,
 *  JOB_BACKOFF_MS), and never hold up the good jobs around them, even when their points
 *  share an upsert request. Then `requeue-failed`, run as a user runs it, lists them and
 *  re-enqueues the chosen ones. Real Redis, real worker, the Qdrant test server rejecting
 *  chosen point ids with HTTP 500. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { Queue, type Job } from "bullmq";
import { pointId } from "../../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import type { Config } from "../../shared/config.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { startWorker, type RunningWorker } from "../../worker/app.js";
import { repoRoot, waitFor } from "../../kit/harness.js";
import { expectedPointIds, syntheticDocs } from "../../kit/reliability.js";
import { suiteFixture } from "../support/suite-fixture.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const producerCli = path.join(repoRoot, "dist", "producer", "cli.js");
const fx = suiteFixture({ redis: REDIS_URL, qdrant: "server" });

/** Shared by the two tests: the second requeues what the first left failed. */
let s: {
  cfg: Config;
  queue: Queue;
  worker: RunningWorker;
  collection: string;
  goodIds: Set<string>;
  poisonIds: string[];
};
const events: Array<{
  id: string;
  what: "active" | "failed" | "completed";
  at: number;
  attemptsMade: number;
  reason?: string;
}> = [];
const of = (id: string, what?: string) => events.filter((e) => e.id === id && (!what || e.what === what));

test("poison jobs fail after bounded, backed-off attempts with their reason; good jobs around them complete first time", async (t) => {
  // A long upsert linger so poison and good points share requests.
  const { queueName, collection, cfg } = fx.workerConfig("rel-poison", {
    CHUNK_TOKENS: "32",
    CHUNK_OVERLAP_TOKENS: "0",
    UPSERT_LINGER_MS: "30",
    SINK_RETRIES: "1",
    SINK_RETRY_BASE_MS: "20",
    JOB_ATTEMPTS: "4",
    JOB_BACKOFF_MS: "400",
  });
  const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  const worker = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  fx.onCleanup(async () => {
    fx.server.setFault(null);
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });
  for (const what of ["active", "failed", "completed"] as const) {
    worker.worker.on(what, (job: Job | undefined, err?: unknown) => {
      if (job)
        events.push({
          id: job.id!,
          what,
          at: Date.now(),
          attemptsMade: job.attemptsMade,
          reason: what === "failed" ? (err as Error).message : undefined,
        });
    });
  }

  const countTokens = loadTokenCounter(path.join(fx.modelDir, "tokenizer.json"));
  const good = syntheticDocs(30, { prefix: "good" });
  const poison = syntheticDocs(2, { prefix: "poison", sentences: () => 1 });
  const poisonIds = poison.map((d) => pointId(d.id, 0));
  fx.server.setFault({ kind: "reject-points", status: 500, ids: poisonIds });
  const summary = await enqueueDocuments(
    queue,
    [...good.slice(0, 10), poison[0], ...good.slice(10, 20), poison[1], ...good.slice(20)],
    enqueueOptionsFrom(cfg, countTokens),
  );
  assert.equal(summary.jobs, 32);
  const jobOpts = (jobId: string) => ({
    jobId,
    attempts: cfg.JOB_ATTEMPTS,
    backoff: { type: "exponential", delay: cfg.JOB_BACKOFF_MS },
  });
  const base = { v: JOB_SCHEMA_VERSION, part: 0, parts: 1, docHash: "x", enqueuedAt: Date.now(), metadata: {} };
  await queue.add(JOB_NAME, { ...base, docId: "bad-schema", chunks: [] }, jobOpts("bad-schema"));
  await queue.add(
    JOB_NAME,
    {
      ...base,
      docId: "empty-chunk",
      chunks: [
        { index: 0, text: "fine", metadata: {} },
        { index: 1, text: "  ", metadata: {} },
      ],
    },
    jobOpts("empty-chunk"),
  );

  await waitFor(
    async () => {
      const c = await queue.getJobCounts("completed", "failed");
      return c.completed === 30 && c.failed === 4;
    },
    40_000,
    "30 good jobs completed and 4 poison jobs failed",
  );

  const failed = await queue.getFailed();
  const byDoc = new Map(failed.map((j) => [j.data.docId as string, j]));
  assert.deepEqual([...byDoc.keys()].sort(), ["bad-schema", "empty-chunk", "poison-0", "poison-1"]);
  assert.match(byDoc.get("bad-schema")!.failedReason, /^validation: chunks: /);
  assert.match(byDoc.get("empty-chunk")!.failedReason, /^validation: chunk 1 of document "empty-chunk" has empty text/);
  for (const doc of ["bad-schema", "empty-chunk"])
    assert.equal(byDoc.get(doc)!.attemptsMade, 1, `${doc}: bad input must not be retried`);

  const backoffs: number[][] = [];
  for (const doc of ["poison-0", "poison-1"]) {
    const job = byDoc.get(doc)!;
    assert.match(job.failedReason, /^sink: upsert of 1 points to "[^"]+" failed \(HTTP 500\)/);
    assert.equal(job.attemptsMade, cfg.JOB_ATTEMPTS);
    const starts = of(job.id!, "active").map((e) => e.at);
    const fails = of(job.id!, "failed").map((e) => e.at);
    assert.equal(starts.length, cfg.JOB_ATTEMPTS);
    assert.equal(fails.length, cfg.JOB_ATTEMPTS);
    // Gap from each failure to the next start: JOB_BACKOFF_MS * 2^(k-1). The events are seen a little after
    // BullMQ stamps them, so allow 10% early; a missing or flat backoff is far outside that.
    const gaps = fails.slice(0, -1).map((f, k) => starts[k + 1] - f);
    gaps.forEach((g, k) => {
      const want = cfg.JOB_BACKOFF_MS * 2 ** k;
      assert.ok(g >= want * 0.9, `${doc}: retry ${k + 1} started ${g} ms after the failure, expected >= ${want} ms`);
      assert.ok(g < want + 5000, `${doc}: retry ${k + 1} started ${g} ms after the failure, expected about ${want} ms`);
    });
    backoffs.push(gaps);
  }

  const goodJobIds = new Set(events.filter((e) => e.what === "completed").map((e) => e.id));
  assert.equal(goodJobIds.size, 30);
  const goodFailures = events.filter((e) => e.what === "failed" && goodJobIds.has(e.id));
  assert.deepEqual(goodFailures, [], "a good job lost an attempt to a poison job");
  const lastGood = Math.max(...events.filter((e) => e.what === "completed").map((e) => e.at));
  const poisonFinal = Math.min(...["poison-0", "poison-1"].map((d) => of(byDoc.get(d)!.id!, "failed").at(-1)!.at));
  assert.ok(lastGood < poisonFinal, "good jobs waited for the poison jobs to use up their attempts");

  const goodIds = expectedPointIds(good, {
    chunkTokens: cfg.CHUNK_TOKENS,
    overlapTokens: cfg.CHUNK_OVERLAP_TOKENS,
    countTokens,
  });
  assert.deepEqual(
    [...fx.server.points(collection).keys()].sort(),
    [...goodIds].sort(),
    "stored points differ from the good documents' points",
  );
  s = { cfg, queue, worker, collection, goodIds, poisonIds };
  const firstStart = Math.min(...events.map((e) => e.at));
  t.diagnostic(
    JSON.stringify({
      attempts: cfg.JOB_ATTEMPTS,
      backoffMs: cfg.JOB_BACKOFF_MS,
      measuredBackoffsMs: backoffs,
      lastGoodCompletedAfterMs: lastGood - firstStart,
      poisonFinallyFailedAfterMs: poisonFinal - firstStart,
    }),
  );
});

function requeue(args: string[]) {
  const r = spawnSync(process.execPath, [producerCli, "requeue-failed", ...args], {
    env: { ...process.env, REDIS_URL, QUEUE_NAME: s.cfg.QUEUE_NAME, LOG_LEVEL: "warn" },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test("requeue-failed lists failed jobs, filters by reason kind or regex, and re-enqueues them", async () => {
  assert.ok(s, "needs the failed jobs of the previous test");
  const { queue, collection } = s;

  const listed = JSON.parse(requeue(["--dry-run", "--json"]));
  assert.equal(listed.dryRun, true);
  assert.equal(listed.matched, 4);
  assert.equal(listed.requeued, 0);
  const row = listed.jobs.find((j: { docId: string }) => j.docId === "poison-0");
  assert.equal(row.attempts, s.cfg.JOB_ATTEMPTS);
  assert.equal(row.reasonKind, "sink");
  assert.match(row.failedReason, /^sink: /);
  assert.ok(!Number.isNaN(Date.parse(row.finishedOn)));
  assert.equal(typeof row.id, "string");
  assert.equal((await queue.getJobCounts("failed")).failed, 4, "--dry-run moved jobs");

  const byRegex = requeue(["--dry-run", "--match", "^validation: chunk \\d+ of"]);
  assert.match(
    byRegex,
    /^empty-chunk {2}doc=empty-chunk {2}attempts=1 {2}failed=\S+ {2}validation: chunk 1 of document "empty-chunk" has empty text/m,
  );
  assert.match(byRegex, /would requeue 1 of 1 matching failed jobs \(4 scanned\)/);

  // Fault still on, attempts kept: BullMQ's default retry gives exactly one more try, without backoff.
  const once = JSON.parse(requeue(["--reason", "sink", "--limit", "1", "--keep-attempts", "--json"]));
  assert.equal(once.requeued, 1);
  const againId = once.jobs[0].id as string;
  await waitFor(
    async () =>
      (await queue.getJob(againId))?.attemptsMade === s.cfg.JOB_ATTEMPTS + 1 &&
      (await queue.getJobState(againId)) === "failed",
    20_000,
    "the requeued job to fail once more",
  );
  assert.equal((await queue.getJobCounts("failed")).failed, 4);

  fx.server.setFault(null);
  const fixed = JSON.parse(requeue(["--reason", "sink", "--json"]));
  assert.equal(fixed.requeued, 2);
  assert.deepEqual(fixed.jobs.map((j: { docId: string }) => j.docId).sort(), ["poison-0", "poison-1"]);
  await waitFor(
    async () => (await queue.getJobCounts("completed")).completed === 32,
    20_000,
    "the requeued sink failures to complete",
  );
  for (const j of fixed.jobs as Array<{ id: string }>) {
    assert.equal((await queue.getJob(j.id))?.attemptsMade, 1, "requeue-failed should reset the attempt count");
  }
  const stillFailed = await queue.getFailed();
  assert.deepEqual(
    stillFailed.map((j) => j.data.docId).sort(),
    ["bad-schema", "empty-chunk"],
    "validation failures must stay failed",
  );
  assert.deepEqual([...fx.server.points(collection).keys()].sort(), [...s.goodIds, ...s.poisonIds].sort());
});
