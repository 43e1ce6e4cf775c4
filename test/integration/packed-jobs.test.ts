/** Packed jobs through the real worker (ONNX on the generated model, real Redis, the real Qdrant
 *  client against the strict in-process test server): a pack's bad documents are split off as
 *  their own failed jobs with their own reasons while their pack-mates complete and every point is
 *  written exactly once; a pack retried after a transient sink failure adds no second split-off
 *  job; an old single-document job still runs next to packs. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Queue, type Job } from "bullmq";
import { jobId, pointId } from "../../shared/ids.js";
import { JOB_NAME, type EmbedJobData, type EmbedJobResult } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import type { PackJobData } from "../../shared/pack.js";
import { enqueueOptionsFrom, jobsForDocument, type BulkJob } from "../../producer/enqueue.js";
import { JobPacker, packBoundsFrom } from "../../producer/packer.js";
import type { SourceDocument } from "../../producer/document.js";
import { chunksForQueue } from "../../producer/enqueue.js";
import { createMetrics } from "../../worker/metrics.js";
import { startWorker } from "../../worker/app.js";
import { sentence } from "../../kit/corpus.js";
import { waitFor } from "../../kit/harness.js";
import { suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ qdrant: "server" });

async function setup(prefix: string, env: Record<string, string> = {}) {
  const { cfg, queueName, collection } = fx.workerConfig(prefix, {
    MAX_SEQ_LENGTH: "64",
    MAX_BATCH_TOKENS: "512",
    MAX_BATCH_ATTENTION: "16384",
    TRUNCATE: "false",
    CHUNK_TOKENS: "48",
    CHUNK_OVERLAP_TOKENS: "0",
    JOB_BACKOFF_MS: "50",
    STORE_TEXT: "true",
    ...env,
  });
  const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  const worker = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  fx.onCleanup(async () => {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });
  const settled = (n: number) =>
    waitFor(
      async () => {
        const c = await queue.getJobCounts("completed", "failed", "waiting", "prioritized", "active", "delayed");
        return c.completed + c.failed >= n && c.waiting + c.prioritized + c.active + c.delayed === 0;
      },
      60_000,
      `${n} jobs settled`,
    );
  return { cfg, queue, collection, settled };
}

const doc = (id: string, text: string): SourceDocument => ({
  id,
  kind: "text",
  segments: [{ text }],
  metadata: { lang: "en" },
  source: { file: "inline" },
});

/** One document's single job, as the producer makes it. */
function single(cfg: Parameters<typeof enqueueOptionsFrom>[0], d: SourceDocument): BulkJob<EmbedJobData> {
  const opts = enqueueOptionsFrom(cfg, fx.countTokens);
  const chunks = chunksForQueue(d, opts);
  assert.ok(Array.isArray(chunks), `document ${d.id} did not chunk`);
  const jobs = jobsForDocument(d, chunks, opts);
  assert.equal(jobs.length, 1);
  return jobs[0];
}

function pack(cfg: Parameters<typeof enqueueOptionsFrom>[0], singles: Array<BulkJob<EmbedJobData>>): BulkJob {
  const packer = new JobPacker(packBoundsFrom(cfg));
  const out = singles.flatMap((j) => packer.add([j]));
  out.push(...packer.flush());
  assert.equal(out.length, 1, "expected one pack");
  assert.equal((out[0].data as PackJobData).docs.length, singles.length);
  return out[0];
}

const pointsOf = (j: BulkJob<EmbedJobData>) => j.data.chunks.map((c) => pointId(j.data.docId, c.index));

test("a pack's bad documents end as their own failed jobs with their reasons; the rest complete, every point once", async () => {
  const s = await setup("pack-iso");
  const good = Array.from({ length: 6 }, (_, i) => single(s.cfg, doc(`good-${i}`, sentence(i, 1))));
  const empty = single(s.cfg, doc("bad-empty", sentence(50, 1)));
  empty.data.chunks[0].text = "   ";
  const badIndex = single(s.cfg, doc("bad-index", sentence(51, 1)));
  (badIndex.data.chunks[0] as { index: number }).index = -1;
  const tooLong = single(s.cfg, doc("bad-long", sentence(52, 1)));
  tooLong.data.chunks[0].text = Array.from({ length: 40 }, (_, k) => sentence(53, k)).join(" ");
  const rejected = single(s.cfg, doc("bad-sink", sentence(54, 1)));
  const bad = [empty, badIndex, tooLong, rejected];
  // A point Qdrant refuses (HTTP 400): the upsert grouper isolates it, so only its document fails.
  fx.server.setFault({ kind: "reject-points", status: 400, ids: pointsOf(rejected) });
  fx.onCleanup(async () => fx.server.setFault(null));
  const p = pack(s.cfg, [good[0], empty, good[1], badIndex, good[2], tooLong, good[3], rejected, good[4]]);
  const old = good[5]; // an unpacked single-document job, as before packs existed
  await s.queue.addBulk([p, old]);
  await s.settled(2 + bad.length);

  const packJob = (await s.queue.getJob(p.opts.jobId!)) as Job;
  assert.equal(await packJob.getState(), "completed", packJob.failedReason);
  const result = packJob.returnvalue as EmbedJobResult;
  assert.equal(result.documents, 9);
  assert.equal(result.points, 5, "the five good packed documents have one chunk each");
  const split = new Map((result.split ?? []).map((x) => [x.docId, x]));
  assert.deepEqual([...split.keys()].sort(), ["bad-empty", "bad-index", "bad-long", "bad-sink"]);
  assert.match(split.get("bad-empty")!.reason, /^validation: chunk 0 of document "bad-empty" has empty text/);
  assert.match(split.get("bad-index")!.reason, /^validation: chunks\.0\.index: /);
  assert.match(split.get("bad-long")!.reason, /^too_long: chunk 0 has \d+ tokens, more than MAX_SEQ_LENGTH=64/);
  assert.match(split.get("bad-sink")!.reason, /^sink: .*400/);

  // Each bad document is now its own job, with the id it would have unpacked, failed for its own reason.
  for (const b of bad) {
    const id = jobId(b.data.docId, 0, b.data.docHash);
    assert.equal(split.get(b.data.docId)!.jobId, id);
    const j = (await s.queue.getJob(id)) as Job;
    assert.ok(j, `no split-off job for ${b.data.docId}`);
    assert.equal(await j.getState(), "failed");
    assert.equal(j.data.docId, b.data.docId);
    assert.equal(j.opts.attempts, p.opts.attempts, "the split-off job has the pack's attempts");
    assert.ok(j.failedReason.startsWith(split.get(b.data.docId)!.reason.slice(0, 40)), j.failedReason);
  }
  assert.equal(await s.queue.getFailedCount(), bad.length);

  const oldJob = (await s.queue.getJob(old.opts.jobId!)) as Job;
  assert.equal(await oldJob.getState(), "completed");
  const expected = [...good.flatMap(pointsOf)].sort();
  const writes = fx.server.writeCounts(s.collection);
  assert.deepEqual([...fx.server.pointIds(s.collection)].map(String).sort(), expected);
  for (const id of expected) assert.equal(writes.get(id), 1, `point ${id} written ${writes.get(id)} times`);
  const stored = fx.server.points(s.collection);
  for (const g of good) {
    const payload = stored.get(pointsOf(g)[0])!.payload as Record<string, unknown>;
    assert.equal(payload.doc_id, g.data.docId);
    assert.equal(payload.doc_version, g.data.enqueuedAt, "each document keeps its own version");
    assert.equal(payload.text, g.data.chunks[0].text);
  }
});

test("a pack retried after a transient sink failure adds its split-off document once, which runs once", async () => {
  const s = await setup("pack-retry", { SINK_RETRIES: "0" });
  const good = Array.from({ length: 3 }, (_, i) => single(s.cfg, doc(`ok-${i}`, sentence(i + 10, 1))));
  const empty = single(s.cfg, doc("empty", sentence(60, 1)));
  empty.data.chunks[0].text = "";
  const p = pack(s.cfg, [good[0], empty, good[1], good[2]]);
  // The pack's first upsert gets a 503 (no sink retries): the pack fails once, after splitting off "empty".
  fx.server.setFault({ kind: "status", status: 503, count: 1 });
  fx.onCleanup(async () => fx.server.setFault(null));
  await s.queue.add(p.name, p.data, p.opts);
  await s.settled(2);
  const packJob = (await s.queue.getJob(p.opts.jobId!)) as Job;
  assert.equal(await packJob.getState(), "completed", packJob.failedReason);
  assert.equal(packJob.attemptsMade, 2, "the pack was not retried: the fault did not hit it");
  assert.deepEqual(
    (packJob.returnvalue as EmbedJobResult).split?.map((x) => x.docId),
    ["empty"],
  );
  const failed = await s.queue.getJobs("failed");
  assert.equal(failed.length, 1, `split-off jobs: ${failed.map((j) => j.id).join(", ")}`);
  assert.equal(failed[0].id, jobId("empty", 0, empty.data.docHash));
  assert.equal(failed[0].attemptsMade, 1, "the split-off job ran more than once");
  assert.match(failed[0].failedReason, /^validation: /);
  const c = await s.queue.getJobCounts("completed", "failed");
  assert.deepEqual(c, { completed: 1, failed: 1 });
  assert.deepEqual([...fx.server.pointIds(s.collection)].map(String).sort(), good.flatMap(pointsOf).sort());
  assert.equal(JOB_NAME, p.name);
});
