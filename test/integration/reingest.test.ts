/** Re-ingestion: a document that comes back shorter loses its stale points, only after the new
 *  version's points are stored, never a newer version's points, and a failed removal fails the
 *  job so BullMQ retries it; with skip-unchanged, chunks whose stored hash and model match are
 *  neither tokenized nor embedded. First with fake ports (ordering, failures), then through the
 *  real worker (ONNX on the generated model) into the strict Qdrant test server. */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { Queue } from "bullmq";
import { QdrantClient } from "@qdrant/js-client-rest";
import { parseConfig } from "../../shared/config.js";
import { SinkError } from "../../worker/errors.js";
import { chunkHash, pointId } from "../../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { runBackfill } from "../../producer/backfill.js";
import { checkpointKey } from "../../producer/backfill/checkpoint.js";
import type { SourceDocument } from "../../producer/document.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { EmbeddingPipeline, type PipelineJob } from "../../worker/core/pipeline.js";
import type {
  ChunkTokenizer,
  EmbeddingModel,
  StaleSelector,
  StoredChunk,
  VectorPoint,
  VectorSink,
} from "../../worker/core/ports.js";
import { startWorker, type RunningWorker } from "../../worker/app.js";
import { docText } from "../../kit/corpus.js";
import { testConfig, uniqueQueue, waitFor } from "../../kit/harness.js";
import { suiteFixture } from "../support/suite-fixture.js";
import { fakeModelInfo } from "../support/fake-model-info.js";

// ---- fake ports -------------------------------------------------------------------------

const tokenized: string[] = [];
const tokenizer: ChunkTokenizer = {
  async encode(texts) {
    tokenized.push(...texts);
    return texts.map((t) => ({
      ids: Int32Array.from([0, ...t.split(" ").map((w) => 10 + w.length), 2]),
      fullLength: 0,
      truncated: false,
    }));
  },
  async close() {},
};
const model: EmbeddingModel = {
  info: fakeModelInfo(),
  async embed(b) {
    return b.sequences.map((s) => ({ dense: Float32Array.from([s.length, 1]) }));
  },
  async close() {},
};

class RecordingSink implements VectorSink {
  log: string[] = [];
  stored = new Map<string, VectorPoint>();
  deleteFailures = 0;
  deleteCalls = 0;
  describe() {
    return "recording";
  }
  async init() {}
  async close() {}
  async upsert(points: VectorPoint[]) {
    await new Promise((r) => setTimeout(r, 5));
    for (const p of points) this.stored.set(p.id, p);
    this.log.push(`upsert ${points.map((p) => p.payload.chunk_index).join(",")}`);
  }
  async deleteStale(sel: StaleSelector) {
    this.deleteCalls++;
    if (this.deleteFailures-- > 0) throw new SinkError("delete failed (HTTP 503): unavailable", 503);
    this.log.push(`delete ${sel.docId} from ${sel.fromChunk} below ${sel.belowVersion}`);
  }
  async readStored(ids: string[]) {
    const out = new Map<string, StoredChunk>();
    for (const id of ids) {
      const p = this.stored.get(id);
      if (p) out.set(id, { chunkHash: p.payload.chunk_hash as string, model: p.payload.model as string });
    }
    return out;
  }
}

const fakeCfg = parseConfig({
  MAX_BATCH_TOKENS: "512",
  MAX_SEQ_LENGTH: "256",
  CHUNK_TOKENS: "128",
  BATCH_LINGER_MS: "1",
  UPSERT_LINGER_MS: "1",
  SINK_RETRIES: "2",
  SINK_RETRY_BASE_MS: "1",
});

function fakeJob(
  texts: string[],
  o: { version: number; docChunks?: number; from?: number; hashes?: boolean },
): PipelineJob {
  const from = o.from ?? 0;
  return {
    id: `j${o.version}-${from}`,
    docId: "doc",
    docHash: "h",
    enqueuedAt: o.version,
    metadata: {},
    chunks: texts.map((text, i) => ({
      index: from + i,
      text,
      metadata: {},
      docChunks: o.docChunks ?? texts.length,
      ...(o.hashes ? { hash: chunkHash(text, {}) } : {}),
    })),
  };
}

test("stale points are removed after the job's own points are stored, by the job holding the last chunk, below its version", async () => {
  const sink = new RecordingSink();
  const p = new EmbeddingPipeline(fakeCfg, { tokenizer, model, sink });
  await p.submit(fakeJob(["a b", "c d", "e f"], { version: 100 }));
  assert.deepEqual(
    sink.log.slice(-2).map((l) => l.split(" ")[0]),
    ["upsert", "delete"],
    sink.log.join(" | "),
  );
  assert.equal(sink.log.at(-1), "delete doc from 3 below 100");
  sink.log = [];
  await p.submit(fakeJob(["g h", "i j"], { version: 200, docChunks: 4, from: 0 }));
  assert.ok(!sink.log.some((l) => l.startsWith("delete")), "a part without the document's last chunk must not delete");
  await p.submit(fakeJob(["k l", "m n"], { version: 200, docChunks: 4, from: 2 }));
  assert.equal(sink.log.at(-1), "delete doc from 4 below 200");
  const payload = sink.stored.get(pointId("doc", 3))!.payload;
  assert.equal(payload.doc_version, 200);
  assert.equal(payload.doc_chunks, 4);
  assert.equal(payload.chunk_hash, chunkHash("m n", {}));
  await p.drain();
});

test("a failed stale removal is retried, then fails the job with a retryable sink error", async () => {
  const sink = new RecordingSink();
  const metrics = createMetrics({ defaultMetrics: false });
  const p = new EmbeddingPipeline(fakeCfg, { tokenizer, model, sink }, metrics);
  sink.deleteFailures = 2;
  await p.submit(fakeJob(["a b"], { version: 1 }));
  assert.equal(sink.deleteCalls, 3, "two failures, then success within SINK_RETRIES=2");
  sink.deleteFailures = 10;
  sink.deleteCalls = 0;
  await assert.rejects(
    p.submit(fakeJob(["a b"], { version: 2 })),
    (err: SinkError) => err.kind === "sink" && err.retryable && /delete failed/.test(err.message),
  );
  assert.equal(sink.deleteCalls, 3);
  assert.equal((await metrics.errors.get()).values.find((v) => v.labels.type === "sink")?.value, 2 + 3);
  await p.drain();
});

test("skip-unchanged: chunks whose stored hash and model match are neither tokenized nor embedded", async () => {
  const sink = new RecordingSink();
  const p = new EmbeddingPipeline(fakeCfg, { tokenizer, model, sink });
  await p.submit(fakeJob(["a b", "c d", "e f"], { version: 1 }));
  tokenized.length = 0;
  const same = await p.submit(fakeJob(["a b", "c d", "e f"], { version: 2, hashes: true }));
  assert.deepEqual(same, { chunks: 3, tokens: 0, truncated: 0, points: 0, unchanged: 3 });
  assert.deepEqual(tokenized, []);
  const changed = await p.submit(fakeJob(["a b", "c X", "e f", "g h"], { version: 3, hashes: true }));
  assert.equal(changed.unchanged, 2);
  assert.equal(changed.points, 2);
  assert.deepEqual(tokenized, ["c X", "g h"]);
  const other = new EmbeddingPipeline({ ...fakeCfg, MODEL_NAME: "another/model" }, { tokenizer, model, sink });
  assert.equal(
    (await other.submit(fakeJob(["a b"], { version: 4, docChunks: 4, hashes: true }))).unchanged,
    0,
    "another model re-embeds",
  );
  await Promise.all([p.drain(), other.drain()]);
});

// ---- through the real worker ------------------------------------------------------------

const fx = suiteFixture({ qdrant: "target", tmpPrefix: "reingest-test-" });

async function setup() {
  const name = uniqueQueue("re");
  const collection = `re_${name.replace(/-/g, "_")}`;
  const cfg = testConfig({
    MODEL_DIR: fx.modelDir,
    QUEUE_NAME: name,
    QDRANT_URL: fx.target.url,
    QDRANT_API_KEY: fx.target.apiKey,
    COLLECTION: collection,
    CHUNK_TOKENS: "16",
    CHUNK_OVERLAP_TOKENS: "0",
    MAX_CHUNKS_PER_JOB: "4",
    JOB_BACKOFF_MS: "50",
  });
  const queue = new Queue(name, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  const client = new QdrantClient({ url: fx.target.url, apiKey: fx.target.apiKey, checkCompatibility: false });
  const worker: RunningWorker = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  fx.onCleanup(async () => {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await client.deleteCollection(collection).catch(() => undefined);
    const keys = await fx.connection.keys(checkpointKey(cfg.QUEUE_PREFIX, name, "*"));
    if (keys.length > 0) await fx.connection.del(...keys);
  });
  const points = async () => {
    const res = await client.scroll(collection, { limit: 1000, with_payload: true, with_vector: false });
    return new Map(res.points.map((p) => [String(p.id), p.payload as Record<string, unknown>]));
  };
  const settled = (n: number) =>
    waitFor(
      async () => {
        const c = await queue.getJobCounts("completed", "failed", "waiting", "prioritized", "active", "delayed");
        return c.completed + c.failed >= n && c.waiting + c.prioritized + c.active + c.delayed === 0;
      },
      30_000,
      `${n} jobs settled`,
    );
  return { cfg, queue, client, collection, points, settled };
}

const doc = (id: string, sentences: number, seed = 0): SourceDocument => ({
  id,
  kind: "text",
  segments: [{ text: docText(seed, sentences) }],
  metadata: {},
  source: { file: "inline" },
});

test("worker: a document re-ingested with fewer chunks leaves no stale points; a late job of an older version deletes nothing newer", async () => {
  const s = await setup();
  const opts = enqueueOptionsFrom(s.cfg, fx.countTokens);
  const v1 = await enqueueDocuments(s.queue, [doc("talk", 30), doc("other", 6)], opts);
  await s.settled(v1.jobs);
  const before = await s.points();
  const talkBefore = [...before.values()].filter((p) => p.doc_id === "talk").length;
  assert.ok(talkBefore > 8, `expected a long document spanning several jobs, got ${talkBefore} chunks`);
  const v2 = await enqueueDocuments(s.queue, [doc("talk", 4, 1)], opts);
  await s.settled(v1.jobs + v2.jobs);
  const after1 = await s.points();
  const talk = [...after1.values()].filter((p) => p.doc_id === "talk");
  assert.equal(talk.length, v2.chunks, "stale points of the longer version remain");
  assert.deepEqual(talk.map((p) => p.chunk_index).sort(), [...Array(v2.chunks).keys()]);
  assert.ok(talk.every((p) => p.text !== undefined && typeof p.doc_version === "number"));
  assert.equal(
    [...after1.values()].filter((p) => p.doc_id === "other").length,
    [...before.values()].filter((p) => p.doc_id === "other").length,
    "another document lost points",
  );
  const newest = talk[0].doc_version as number;
  // A job of an older, one-chunk version arriving late (a delayed retry): it may rewrite chunk 0
  // (per point the last write wins) but must not delete the newer version's other chunks.
  const late: EmbedJobData = {
    v: JOB_SCHEMA_VERSION,
    docId: "talk",
    part: 0,
    parts: 1,
    docHash: "old",
    enqueuedAt: newest - 1000,
    metadata: {},
    chunks: [{ index: 0, text: "an old single chunk", metadata: {}, docChunks: 1 }],
  };
  await s.queue.add(JOB_NAME, late);
  await s.settled(v1.jobs + v2.jobs + 1);
  const after2 = await s.points();
  assert.equal(
    [...after2.values()].filter((p) => p.doc_id === "talk").length,
    v2.chunks,
    "an older version's job deleted the newer version's points",
  );
  if (fx.target.server) {
    const deletes = fx.target.server.requests.filter((r) => r.method === "POST" && r.path.endsWith("/points/delete"));
    assert.ok(deletes.length > 0 && deletes.every((r) => r.status === 200));
  }
});

test("worker: --skip-unchanged re-embeds nothing the second time and only the changed chunks after an edit", async (t) => {
  if (!fx.target.server) {
    t.skip("needs the in-process Qdrant test server's write counts; QDRANT_URL is set");
    return;
  }
  const s = await setup();
  const file = path.join(fx.tmp, "corpus.jsonl");
  const records = (edit: boolean) =>
    Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({ id: `r${i}`, text: edit && i === 3 ? `${docText(i, 2)} Edited words here.` : docText(i, 5) }),
    ).join("\n");
  await writeFile(file, records(false));
  const base = {
    inputs: [file],
    countTokens: fx.countTokens,
    progress: "none" as const,
    pollMs: 20,
    wait: true,
    skipUnchanged: true,
  };
  const first = await runBackfill(s.cfg, base);
  assert.equal(first.worker?.drained, true);
  assert.equal(first.worker?.unchangedChunks, 0);
  const written = () => [...fx.target.server!.writeCounts(s.collection).values()].reduce((a, b) => a + b, 0);
  const afterFirst = written();
  assert.equal(afterFirst, first.run.chunks);
  // Completed jobs BullMQ still keeps would make the same job ids duplicates (not re-run at all); a later re-run finds them gone.
  const forget = () => s.queue.clean(0, 100_000, "completed");
  await forget();
  const second = await runBackfill(s.cfg, { ...base, restart: true });
  assert.equal(second.worker?.duplicateJobs, 0);
  assert.equal(second.worker?.unchangedChunks, second.run.chunks, "unchanged chunks were re-embedded");
  assert.equal(written(), afterFirst, "the second run wrote points");
  await writeFile(file, records(true));
  await forget();
  const third = await runBackfill(s.cfg, { ...base, restart: true });
  const rewrites = written() - afterFirst;
  const r3 = [...(await s.points()).values()].filter((p) => p.doc_id === "r3");
  assert.ok(rewrites >= 1 && rewrites <= r3.length, `${rewrites} points rewritten; only r3's changed chunks should be`);
  assert.equal(third.worker?.unchangedChunks, third.run.chunks - rewrites);
  assert.ok(r3.some((p) => String(p.text).includes("Edited")));
  assert.equal(
    r3.length,
    Math.max(...r3.map((p) => p.chunk_index as number)) + 1,
    "r3 kept stale chunks after getting shorter",
  );
});
