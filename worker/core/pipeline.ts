/** Job bookkeeping between the queue and the ports: a submitted job's chunks are validated,
 *  tokenized, pooled with every other in-flight job's chunks, embedded in length-sorted
 *  batches, and written through the upsert grouper; the job's promise settles when its last
 *  point is stored, or when any of its chunks fails. One bad chunk fails only its job: a
 *  failing batch is split in halves and retried until the failing chunk runs alone.
 *  Chunks that carry a content hash are first looked up in the sink and skipped when the stored
 *  point has the same hash and model. Chunks that carry `docChunks` make the job holding the
 *  document's last chunk, once its own points are stored, remove the document's points beyond
 *  `docChunks` that older versions (lower `enqueuedAt`) wrote; a failed removal fails the job
 *  so it is retried. Knows nothing of Redis, ONNX or Qdrant. */
import assert from "node:assert/strict";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { ChunkTooLongError, EmbedError, errorKind, InferenceError, SinkError, ValidationError } from "../../shared/errors.js";
import { chunkHash, pointId } from "../../shared/ids.js";
import type { EmbedJobResult, JobChunk } from "../../shared/job.js";
import type { Metrics } from "../../shared/metrics.js";
import { BatchPool, batchOf, type Batch, type Pooled } from "./batcher.js";
import type { ChunkEmbedding } from "./heads.js";
import type { ChunkTokenizer, EmbeddingModel, VectorPoint, VectorSink } from "./ports.js";
import { retrySink, UpsertGrouper } from "./upsert-grouper.js";

export interface PipelineJob {
  id: string;
  docId: string;
  docHash: string;
  enqueuedAt: number;
  metadata: Record<string, unknown>;
  chunks: JobChunk[];
}

type PipelineConfig = Pick<Config,
  "MAX_BATCH_TOKENS" | "MAX_BATCH_SIZE" | "PAD_MULTIPLE" | "BATCH_OVERHEAD_TOKENS" | "BATCH_LINGER_MS" | "BATCH_STRATEGY" | "TRUNCATE" | "MAX_SEQ_LENGTH" |
  "MAX_CHUNK_CHARS" | "MAX_CHUNKS_PER_JOB" | "STORE_TEXT" | "UPSERT_MAX_BYTES" | "UPSERT_MAX_POINTS" | "UPSERT_LINGER_MS" | "SINK_RETRIES" |
  "SINK_RETRY_BASE_MS" | "MODEL_NAME">;

interface JobState {
  job: PipelineJob;
  /** The chunks to embed: the job's, minus those skipped as unchanged. */
  todo: JobChunk[];
  unchanged: number;
  remaining: number;
  tokens: number;
  truncated: number;
  failed: boolean;
  resolve: (r: EmbedJobResult) => void;
  reject: (e: Error) => void;
  settled?: Promise<void>;
}

interface Item extends Pooled {
  state: JobState;
  chunk: JobChunk;
  ids: Int32Array;
  truncated: boolean;
}

/** Batches handed to the model thread at once: one running and, only when it is full, one
 *  waiting behind it, so the model never idles on a round trip while partial batches wait
 *  in the pool to be sorted with later arrivals. */
const MODEL_DEPTH = 2;

export class EmbeddingPipeline {
  private readonly pool: BatchPool<Item>;
  private readonly grouper: UpsertGrouper;
  private tokenizing = 0;
  private modelInFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private batchSeq = 0;
  private readonly jobs = new Set<JobState>();

  constructor(
    private readonly cfg: PipelineConfig,
    private readonly ports: { tokenizer: ChunkTokenizer; model: EmbeddingModel; sink: VectorSink },
    private readonly metrics?: Metrics,
    private readonly log?: Logger,
  ) {
    this.pool = new BatchPool<Item>({
      maxBatchTokens: cfg.MAX_BATCH_TOKENS, maxBatchSize: cfg.MAX_BATCH_SIZE, padMultiple: cfg.PAD_MULTIPLE, batchOverheadTokens: cfg.BATCH_OVERHEAD_TOKENS,
      strategy: cfg.BATCH_STRATEGY,
    });
    this.grouper = new UpsertGrouper(ports.sink, {
      maxBytes: cfg.UPSERT_MAX_BYTES, maxPoints: cfg.UPSERT_MAX_POINTS, lingerMs: cfg.UPSERT_LINGER_MS,
      retries: cfg.SINK_RETRIES, retryBaseMs: cfg.SINK_RETRY_BASE_MS,
      onRequest: (n, s, ok) => {
        metrics?.upserts.inc();
        metrics?.upsertPoints.observe(n);
        if (ok) metrics?.stage.observe({ stage: "sink_write" }, s);
      },
      onError: (err, attempt) => {
        metrics?.errors.inc({ type: "sink" });
        log?.warn({ err: err.message, attempt }, "upsert failed");
      },
    });
  }

  get inFlightJobs(): number {
    return this.jobs.size;
  }

  /** Embeds and stores every chunk of `job`; rejects with an EmbedError saying why not. */
  async submit(job: PipelineJob): Promise<EmbedJobResult> {
    try {
      this.validate(job);
    } catch (err) {
      this.metrics?.errors.inc({ type: errorKind(err) });
      throw err;
    }
    let resolve!: (r: EmbedJobResult) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<EmbedJobResult>((res, rej) => ((resolve = res), (reject = rej)));
    const state: JobState = { job, todo: job.chunks, unchanged: 0, remaining: job.chunks.length, tokens: 0, truncated: 0, failed: false, resolve, reject };
    state.settled = done.then(() => undefined, () => undefined);
    this.jobs.add(state);
    this.metrics?.inflightJobs.set(this.jobs.size);
    void this.start(state);
    return done;
  }

  /** Fails every job still in flight with `err` (the drain deadline passed). Their chunks
   *  leave the pool; points already on their way to the sink may still be written, which is
   *  harmless since point ids are deterministic. */
  abortAll(err: Error): number {
    const states = [...this.jobs];
    for (const s of states) this.fail(s, err);
    return states.length;
  }

  /** Waits until no job is in flight and nothing is left to write. */
  async drain(): Promise<void> {
    while (this.jobs.size > 0) await Promise.all([...this.jobs].map((s) => s.settled));
    await this.grouper.idle();
  }

  private validate(job: PipelineJob): void {
    if (job.chunks.length > this.cfg.MAX_CHUNKS_PER_JOB) {
      throw new ValidationError(`job for document "${job.docId}" has ${job.chunks.length} chunks, more than MAX_CHUNKS_PER_JOB=${this.cfg.MAX_CHUNKS_PER_JOB}; enqueue long documents as several jobs (the producer does)`);
    }
    const seen = new Set<number>();
    for (const c of job.chunks) {
      if (seen.has(c.index)) throw new ValidationError(`chunk index ${c.index} appears twice in document "${job.docId}"`);
      seen.add(c.index);
      if (c.text.trim().length === 0) throw new ValidationError(`chunk ${c.index} of document "${job.docId}" has empty text`);
      if (c.text.length > this.cfg.MAX_CHUNK_CHARS) {
        throw new ValidationError(`chunk ${c.index} of document "${job.docId}" has ${c.text.length} characters, more than MAX_CHUNK_CHARS=${this.cfg.MAX_CHUNK_CHARS}`);
      }
    }
  }

  private async start(state: JobState): Promise<void> {
    if (this.ports.sink.readStored && state.job.chunks.some((c) => c.hash !== undefined)) {
      try {
        await this.skipUnchanged(state);
      } catch (err) {
        this.fail(state, err as Error);
        return;
      }
      if (state.failed) return;
      if (state.todo.length === 0) return this.complete(state);
    }
    await this.tokenize(state);
  }

  /** Reads the stored hashes once per job, before tokenizing, so skipped chunks cost no tokenizer or model time. */
  private async skipUnchanged(state: JobState): Promise<void> {
    const { job } = state;
    const hashed = job.chunks.filter((c) => c.hash !== undefined);
    const ids = hashed.map((c) => pointId(job.docId, c.index));
    const stored = await this.withSinkRetries(`reading stored hashes of "${job.docId}"`, () => this.ports.sink.readStored!(ids));
    const same = new Set<number>();
    hashed.forEach((c, i) => {
      const s = stored.get(ids[i]);
      if (s && s.chunkHash === c.hash && s.model === this.cfg.MODEL_NAME) same.add(c.index);
    });
    state.todo = job.chunks.filter((c) => !same.has(c.index));
    state.unchanged = same.size;
    state.remaining = state.todo.length;
  }

  /** Runs a sink call with the upsert retry policy; every failed attempt counts as a sink error. */
  private async withSinkRetries<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await retrySink(call, {
        retries: this.cfg.SINK_RETRIES, baseMs: this.cfg.SINK_RETRY_BASE_MS,
        onError: (err, attempt) => {
          this.metrics?.errors.inc({ type: "sink" });
          this.log?.warn({ err: err.message, attempt }, `${what} failed`);
        },
      });
    } catch (err) {
      throw err instanceof SinkError ? err : new SinkError(`${what} failed: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  private async tokenize(state: JobState): Promise<void> {
    this.tokenizing++;
    const started = performance.now();
    try {
      const encoded = await this.ports.tokenizer.encode(state.todo.map((c) => c.text));
      this.metrics?.stage.observe({ stage: "tokenize" }, (performance.now() - started) / 1000);
      const now = Date.now();
      const items: Item[] = [];
      for (let i = 0; i < encoded.length; i++) {
        const t = encoded[i];
        const chunk = state.todo[i];
        if (t.truncated && !this.cfg.TRUNCATE) throw new ChunkTooLongError(chunk.index, t.fullLength, this.cfg.MAX_SEQ_LENGTH);
        if (t.truncated) state.truncated++;
        state.tokens += t.ids.length;
        items.push({ state, chunk, ids: t.ids, truncated: t.truncated, length: t.ids.length, pooledAt: now });
      }
      if (!state.failed) this.pool.add(items);
    } catch (err) {
      const e = err instanceof EmbedError ? err : new ValidationError(`tokenizing failed: ${(err as Error).message}`, { cause: err });
      this.metrics?.errors.inc({ type: e.kind });
      this.fail(state, e);
    } finally {
      this.tokenizing--;
      this.pump();
    }
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.modelInFlight < MODEL_DEPTH) {
      const { batch, waitMs } = this.pool.take({
        now: Date.now(), moreComing: this.tokenizing > 0, lingerMs: this.cfg.BATCH_LINGER_MS, onlyFull: this.modelInFlight > 0,
      });
      if (!batch) {
        if (Number.isFinite(waitMs)) this.timer = setTimeout(() => this.pump(), Math.max(1, waitMs));
        break;
      }
      this.modelInFlight++;
      void this.runBatch(batch, ++this.batchSeq).finally(() => {
        this.modelInFlight--;
        this.pump();
      });
    }
    this.metrics?.pooledChunks.set(this.pool.size);
  }

  /** Runs a batch; on failure splits it until the failing chunk is alone, then fails only its job. */
  private async runBatch(batch: Batch<Item>, batchId: number): Promise<void> {
    const live = batch.items.filter((it) => !it.state.failed);
    if (live.length === 0) return;
    const now = Date.now();
    for (const it of live) this.metrics?.stage.observe({ stage: "batch_wait" }, (now - it.pooledAt) / 1000);
    const padded = batch.paddedLength;
    const started = performance.now();
    let out: ChunkEmbedding[];
    try {
      out = await this.ports.model.embed({ sequences: live.map((it) => it.ids), paddedLength: padded });
      assert.equal(out.length, live.length, "model returned a different number of results than inputs; this is a bug");
    } catch (err) {
      this.metrics?.errors.inc({ type: errorKind(err) });
      if (live.length === 1) {
        const e = err instanceof EmbedError ? err : new InferenceError(`inference failed: ${(err as Error).message}`, { cause: err });
        this.log?.warn({ batchId, jobId: live[0].state.job.id, kind: e.kind, err: e.message }, "chunk failed alone; failing its job");
        this.fail(live[0].state, e);
        return;
      }
      this.log?.warn({ batchId, size: live.length, err: (err as Error).message }, "batch failed; splitting and retrying");
      const half = Math.ceil(live.length / 2);
      for (const part of [live.slice(0, half), live.slice(half)]) await this.runBatch(batchOf(part, this.cfg.PAD_MULTIPLE), batchId);
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    this.recordBatch(live, padded, seconds);
    this.log?.debug({ batchId, size: live.length, paddedLength: padded, realTokens: live.reduce((a, it) => a + it.length, 0), pool: this.pool.size, ms: Math.round(seconds * 1000) }, "batch embedded");
    this.grouper.add(live.map((it, i) => ({ point: this.toPoint(it, out[i]), done: (e?: Error) => this.chunkWritten(it, e) })));
  }

  private recordBatch(items: Item[], padded: number, seconds: number): void {
    const m = this.metrics;
    if (!m) return;
    m.batches.inc();
    m.batchSize.observe(items.length);
    m.batchTokens.observe(items.length * padded);
    m.paddedTokens.inc(items.length * padded);
    m.stage.observe({ stage: "infer" }, seconds);
  }

  private toPoint(it: Item, emb: ChunkEmbedding): VectorPoint {
    const { job } = it.state;
    const metadata = { ...job.metadata, ...it.chunk.metadata };
    const payload: Record<string, unknown> = {
      doc_id: job.docId,
      chunk_index: it.chunk.index,
      token_count: it.length,
      truncated: it.truncated,
      model: this.cfg.MODEL_NAME,
      doc_hash: job.docHash,
      doc_version: job.enqueuedAt,
      chunk_hash: it.chunk.hash ?? chunkHash(it.chunk.text, metadata),
      metadata,
    };
    if (it.chunk.docChunks !== undefined) payload.doc_chunks = it.chunk.docChunks;
    if (this.cfg.STORE_TEXT) payload.text = it.chunk.text;
    return { id: pointId(job.docId, it.chunk.index), dense: emb.dense, sparse: emb.sparse, colbert: emb.colbert, colbertDim: emb.colbertDim, payload };
  }

  private chunkWritten(it: Item, err?: Error): void {
    const s = it.state;
    if (s.failed) return;
    if (err) {
      this.fail(s, err);
      return;
    }
    this.metrics?.chunks.inc({ lane: "queue" });
    this.metrics?.tokens.inc({ lane: "queue" }, it.length);
    if (it.truncated) this.metrics?.truncated.inc();
    if (--s.remaining === 0) void this.complete(s);
  }

  /** Every point of the job is stored: remove what older versions left beyond this one, then resolve.
   *  Runs after the job's own writes so a reader never sees the document with fewer chunks than
   *  either version has. The version guard (`belowVersion`) keeps a late job of an older version
   *  (a retry, a delayed job) from deleting a newer version's points; its upserts are not guarded:
   *  per point the last write wins. */
  private async complete(s: JobState): Promise<void> {
    const { job } = s;
    const docChunks = job.chunks[0].docChunks;
    const { sink } = this.ports;
    // One part per document is enough (the removal never touches indexes below docChunks): the one holding the last chunk.
    if (docChunks !== undefined && sink.deleteStale && job.chunks.some((c) => c.index === docChunks - 1)) {
      try {
        await this.withSinkRetries(`removing stale points of "${job.docId}"`, () =>
          sink.deleteStale!({ docId: job.docId, fromChunk: docChunks, belowVersion: job.enqueuedAt }));
      } catch (err) {
        this.fail(s, err as Error);
        return;
      }
    }
    if (s.failed) return;
    this.jobs.delete(s);
    this.metrics?.inflightJobs.set(this.jobs.size);
    s.resolve({ chunks: job.chunks.length, tokens: s.tokens, truncated: s.truncated, points: s.todo.length, unchanged: s.unchanged });
  }

  private fail(s: JobState, err: Error): void {
    if (s.failed) return;
    s.failed = true;
    this.pool.remove((it) => it.state === s);
    this.jobs.delete(s);
    this.metrics?.inflightJobs.set(this.jobs.size);
    s.reject(err);
  }
}
