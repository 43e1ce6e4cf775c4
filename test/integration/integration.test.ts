/** End to end with real parts: the producer library enqueues documents into a real Redis,
 *  the worker (real ONNX session on the generated model, tokenizer threads) embeds them, and
 *  the real @qdrant/js-client-rest writes to the strict Qdrant-compatible test server, or to
 *  a real Qdrant when QDRANT_URL is set. */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { Queue } from "bullmq";
import { QdrantClient } from "@qdrant/js-client-rest";
import { pointId } from "../../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { chunkDocument } from "../../producer/chunker.js";
import type { ReadEvent, SourceDocument } from "../../producer/document.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { expandInputs } from "../../producer/input-files.js";
import { readDocuments } from "../../producer/readers/index.js";
import { startWorker, type RunningWorker } from "../../worker/app.js";
import { repoRoot, waitFor } from "../../kit/harness.js";
import { suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ qdrant: "target" });

async function setup(env: Record<string, string> = {}) {
  const { queueName, collection, cfg } = fx.workerConfig("it", {
    CHUNK_TOKENS: "128",
    CHUNK_OVERLAP_TOKENS: "16",
    JOB_BACKOFF_MS: "50",
    SINK_RETRY_BASE_MS: "20",
    ...env,
  });
  const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  const client = new QdrantClient({ url: fx.target.url, apiKey: fx.target.apiKey, checkCompatibility: false });
  const log = createLogger({ level: "silent" });
  let worker: RunningWorker | undefined;
  const start = async (httpPort?: number) =>
    (worker = await startWorker(cfg, { log, metrics: createMetrics({ defaultMetrics: false }), httpPort }));
  fx.onCleanup(async () => {
    await worker?.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await client.deleteCollection(collection).catch(() => undefined);
  });
  const opts = enqueueOptionsFrom(cfg, fx.countTokens);
  return { cfg, queue, client, collection, start, opts, worker: () => worker! };
}

async function sampleDocs(): Promise<SourceDocument[]> {
  const docs: SourceDocument[] = [];
  for await (const f of expandInputs([path.join(repoRoot, "samples")])) {
    for await (const ev of readDocuments(f) as AsyncGenerator<ReadEvent>) if (ev.kind === "document") docs.push(ev.doc);
  }
  return docs;
}

async function drained(queue: Queue): Promise<boolean> {
  const c = await queue.getJobCounts("waiting", "active", "delayed", "prioritized");
  return c.waiting + c.active + c.delayed + c.prioritized === 0;
}

async function allPoints(client: QdrantClient, collection: string) {
  const out = new Map<string, { payload: Record<string, unknown>; vector: Record<string, unknown> }>();
  let offset: string | number | undefined | null = undefined;
  do {
    const page: Awaited<ReturnType<QdrantClient["scroll"]>> = await client.scroll(collection, {
      limit: 100,
      offset: offset ?? undefined,
      with_payload: true,
      with_vector: true,
    });
    for (const p of page.points)
      out.set(String(p.id), {
        payload: p.payload as Record<string, unknown>,
        vector: p.vector as Record<string, unknown>,
      });
    offset = page.next_page_offset as string | number | null | undefined;
  } while (offset !== null && offset !== undefined);
  return out;
}

test("documents in -> exactly the expected points out, with payloads; re-ingesting changes no count", async () => {
  const s = await setup();
  await s.start();
  const docs = await sampleDocs();
  assert.ok(docs.length >= 5);
  const summary = await enqueueDocuments(s.queue, docs, s.opts);
  await waitFor(() => drained(s.queue), 60_000, "queue drained");
  const expected = new Map<string, { docId: string; index: number; text: string }>();
  for (const d of docs) {
    for (const c of chunkDocument(d, {
      targetTokens: s.cfg.CHUNK_TOKENS,
      overlapTokens: s.cfg.CHUNK_OVERLAP_TOKENS,
      countTokens: fx.countTokens,
    })) {
      expected.set(pointId(d.id, c.index), { docId: d.id, index: c.index, text: c.text });
    }
  }
  assert.equal(summary.chunks, expected.size);
  const points = await allPoints(s.client, s.collection);
  assert.deepEqual([...points.keys()].sort(), [...expected.keys()].sort(), "point ids differ from the expected set");
  for (const [id, p] of points) {
    const e = expected.get(id)!;
    assert.equal(p.payload.doc_id, e.docId);
    assert.equal(p.payload.chunk_index, e.index);
    assert.equal(p.payload.text, e.text);
    assert.equal(typeof p.payload.token_count, "number");
    assert.equal(p.payload.truncated, false);
    assert.equal(p.payload.model, s.cfg.MODEL_NAME);
    assert.equal((p.vector.dense as number[]).length, s.worker().model.info.denseDim);
    const sparse = p.vector.sparse as { indices: number[]; values: number[] };
    assert.ok(sparse.indices.length > 0 && sparse.indices.every((i) => i > 3));
  }
  const transcript = [...points.values()].find((p) => (p.payload.metadata as { speakers?: string[] }).speakers?.length);
  assert.ok(transcript, "no transcript chunk kept its speakers");
  assert.equal(typeof (transcript.payload.metadata as { start?: number }).start, "number");
  const failed = await s.queue.getJobCounts("failed", "completed");
  assert.equal(failed.failed, 0);
  assert.equal(failed.completed, summary.jobs);

  // Same documents again: kept completed jobs make BullMQ skip the same job ids; clear them to force real re-writes.
  await s.queue.clean(0, 10_000, "completed");
  await enqueueDocuments(s.queue, docs, s.opts);
  await waitFor(
    async () => (await drained(s.queue)) && (await s.queue.getJobCounts("completed")).completed === summary.jobs,
    60_000,
    "second pass",
  );
  const count = await s.client.count(s.collection, { exact: true });
  assert.equal(count.count, expected.size, "re-ingesting changed the point count");
  if (fx.target.server) {
    const writes = fx.target.server.writeCounts(s.collection);
    assert.ok(
      [...writes.values()].every((n) => n === 2),
      "every point should have been written exactly twice",
    );
  }
});

test("a job with a bad chunk fails alone, with a reason a person can act on", async () => {
  const s = await setup({ TRUNCATE: "false", MAX_SEQ_LENGTH: "256", CHUNK_TOKENS: "128", MAX_BATCH_TOKENS: "2048" });
  await s.start();
  const base = { v: JOB_SCHEMA_VERSION, part: 0, parts: 1, docHash: "x", enqueuedAt: Date.now(), metadata: {} };
  const long = Array.from({ length: 400 }, (_, i) => `word${i}`).join(" ");
  await s.queue.addBulk([
    {
      name: JOB_NAME,
      data: { ...base, docId: "ok-1", chunks: [{ index: 0, text: "A normal chunk of text.", metadata: {} }] },
    },
    {
      name: JOB_NAME,
      data: {
        ...base,
        docId: "empty",
        chunks: [
          { index: 0, text: "fine", metadata: {} },
          { index: 1, text: "  \n ", metadata: {} },
        ],
      },
    },
    { name: JOB_NAME, data: { ...base, docId: "too-long", chunks: [{ index: 0, text: long, metadata: {} }] } },
    { name: JOB_NAME, data: { ...base, chunks: [{ index: 0, text: "no doc id", metadata: {} }] } },
    {
      name: JOB_NAME,
      data: {
        ...base,
        docId: "ok-2",
        chunks: [
          { index: 0, text: "Another fine chunk.", metadata: {} },
          { index: 1, text: "And one more.", metadata: {} },
        ],
      },
    },
  ]);
  await waitFor(() => drained(s.queue), 30_000, "queue drained");
  const failed = await s.queue.getFailed();
  const reasons = Object.fromEntries(failed.map((j) => [j.data.docId ?? "(none)", j.failedReason]));
  assert.equal(failed.length, 3, JSON.stringify(reasons));
  assert.match(reasons.empty, /^validation: chunk 1 of document "empty" has empty text/);
  assert.match(reasons["too-long"], /^too_long: chunk 0 has \d+ tokens, more than MAX_SEQ_LENGTH=256/);
  assert.match(reasons["(none)"], /^validation: docId/);
  for (const j of failed) assert.equal(j.attemptsMade, 1, "bad input must not be retried");
  const errors = Object.fromEntries(
    (await s.worker().metrics.errors.get()).values.filter((v) => v.value > 0).map((v) => [v.labels.type, v.value]),
  );
  assert.deepEqual(errors, { validation: 2, too_long: 1 });
  const points = await allPoints(s.client, s.collection);
  assert.deepEqual([...new Set([...points.values()].map((p) => p.payload.doc_id))].sort(), ["ok-1", "ok-2"]);
});

test("a job is not completed before its upsert returns", async (t) => {
  if (!fx.target.server) {
    t.skip("needs the in-process Qdrant test server to hold upserts; QDRANT_URL is set");
    return;
  }
  const s = await setup();
  await s.start();
  const release = fx.target.server.holdUpserts();
  await enqueueDocuments(
    s.queue,
    [
      {
        id: "held",
        kind: "text",
        segments: [{ text: "Hold this write until the test lets it go." }],
        metadata: {},
        source: { file: "inline" },
      },
    ],
    s.opts,
  );
  await waitFor(async () => (await s.queue.getJobCounts("active")).active === 1, 10_000, "job active");
  await new Promise((r) => setTimeout(r, 500));
  const before = await s.queue.getJobCounts("active", "completed");
  assert.equal(before.completed, 0, "job completed while its upsert was held");
  assert.equal(before.active, 1);
  release();
  await waitFor(
    async () => (await s.queue.getJobCounts("completed")).completed === 1,
    10_000,
    "completion after release",
  );
  assert.equal((await s.client.count(s.collection, { exact: true })).count, 1);
});

test("truncated chunks are embedded at the max length, flagged and counted; /metrics and /health report it", async () => {
  const s = await setup({
    MAX_SEQ_LENGTH: "64",
    CHUNK_TOKENS: "64",
    CHUNK_OVERLAP_TOKENS: "8",
    MAX_BATCH_TOKENS: "1024",
  });
  const w = await s.start(0);
  const ready = await fetch(`http://127.0.0.1:${w.httpPort}/health/ready`);
  assert.equal(ready.status, 200);
  const base = { v: JOB_SCHEMA_VERSION, part: 0, parts: 1, docHash: "x", enqueuedAt: Date.now(), metadata: {} };
  const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(" ");
  await s.queue.add(JOB_NAME, {
    ...base,
    docId: "long",
    chunks: [
      { index: 0, text: long, metadata: {} },
      { index: 1, text: "short one", metadata: {} },
    ],
  });
  await waitFor(async () => (await s.queue.getJobCounts("completed")).completed === 1, 20_000, "completion");
  const points = await allPoints(s.client, s.collection);
  const p0 = points.get(pointId("long", 0))!;
  assert.equal(p0.payload.truncated, true);
  assert.equal(p0.payload.token_count, 64);
  assert.equal(points.get(pointId("long", 1))!.payload.truncated, false);
  const metrics = await (await fetch(`http://127.0.0.1:${w.httpPort}/metrics`)).text();
  assert.match(metrics, /^embed_truncated_chunks_total 1$/m);
  assert.match(metrics, /^embed_chunks_total\{lane="queue"\} 2$/m);
  const health = (await (await fetch(`http://127.0.0.1:${w.httpPort}/health`)).json()) as Record<string, unknown>;
  assert.equal(health.status, "ready");
  assert.equal(JSON.stringify(health).includes("word1"), false, "chunk text leaked into /health");
});

test("ColBERT on: the collection gets a max_sim multivector and each point one row per token after CLS", async () => {
  const s = await setup({ OUTPUTS: "dense,sparse,colbert" });
  const w = await s.start();
  const info = await s.client.getCollection(s.collection);
  const vectors = info.config.params.vectors as Record<
    string,
    { size: number; multivector_config?: { comparator: string } }
  >;
  assert.equal(vectors.colbert.multivector_config?.comparator, "max_sim");
  assert.equal(vectors.colbert.size, w.model.info.colbertDim);
  await enqueueDocuments(
    s.queue,
    [
      {
        id: "cb",
        kind: "text",
        segments: [{ text: "Late interaction keeps one vector per token." }],
        metadata: {},
        source: { file: "inline" },
      },
    ],
    s.opts,
  );
  await waitFor(async () => (await s.queue.getJobCounts("completed")).completed === 1, 20_000, "completion");
  const p = (await allPoints(s.client, s.collection)).get(pointId("cb", 0))!;
  const rows = p.vector.colbert as number[][];
  assert.equal(rows.length, (p.payload.token_count as number) - 1);
  for (const r of rows) assert.ok(Math.abs(Math.hypot(...r) - 1) < 1e-2);
});

test("an existing collection with an incompatible schema stops the worker at start-up, saying why", async () => {
  const s = await setup();
  await s.client.createCollection(s.collection, { vectors: { dense: { size: 1024, distance: "Cosine" } } });
  await assert.rejects(
    s.start(),
    (err: Error) =>
      err.name === "CollectionSchemaError" &&
      /vector "dense" has size 1024, the model produces \d+/.test(err.message) &&
      /no sparse vector named "sparse"/.test(err.message),
  );
});

test("Qdrant answering 503 for a while: upserts retry with backoff and the job completes", async (t) => {
  if (!fx.target.server) {
    t.skip("needs the in-process Qdrant test server to inject 503s; QDRANT_URL is set");
    return;
  }
  const s = await setup({ SINK_RETRIES: "5", SINK_RETRY_BASE_MS: "20" });
  const w = await s.start();
  fx.target.server.setFault({ kind: "status", status: 503, count: 2 });
  await enqueueDocuments(
    s.queue,
    [
      {
        id: "retry",
        kind: "text",
        segments: [{ text: "Written after two refusals." }],
        metadata: {},
        source: { file: "inline" },
      },
    ],
    s.opts,
  );
  await waitFor(async () => (await s.queue.getJobCounts("completed")).completed === 1, 20_000, "completion");
  fx.target.server.setFault(null);
  assert.equal((await s.client.count(s.collection, { exact: true })).count, 1);
  const sinkErrors = (await w.metrics.errors.get()).values.find((v) => v.labels.type === "sink")?.value;
  assert.equal(sinkErrors, 2);
});
