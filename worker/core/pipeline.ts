/** Job bookkeeping between the queue and the ports: a submitted job's chunks are validated,
 *  tokenized, pooled with every other in-flight job's chunks, embedded in length-sorted
 *  batches, and written through the upsert grouper; the job's promise settles when its last
 *  point is stored, or when any of its chunks fails. One bad chunk fails only its job: a
 *  failing batch is split in halves and retried until the failing chunk runs alone.
 *  Chunks that carry a content hash are first looked up in the sink and skipped when the stored
 *  point has the same hash and model. Chunks that carry `docChunks` make the job holding the
 *  document's last chunk, once its own points are stored, remove the document's points beyond
 *  `docChunks` that older versions (lower `enqueuedAt`) wrote; a failed removal fails the job
 *  so it is retried. Query requests (`embedInteractive`) share the pool in a priority lane: their
 *  chunks are batched at once, ahead of every queued chunk, and their vectors go back to the
 *  caller instead of the sink. Knows nothing of Redis, ONNX, Qdrant or HTTP.
 *  Last-resort guard (issue 13): every promise chain and timer this class starts ends in a catch
 *  that fails the job(s) the work belonged to with InternalError, so an unexpected exception
 *  (a bug, a value nobody foresaw) fails those jobs with a reason and never reaches the process.
 *  A failure in the scheduler itself (`pump`) belongs to no single job: it fails every job in
 *  flight, which BullMQ retries. */
import assert from "node:assert/strict";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import {
  asEmbedError, ChunkTooLongError, EmbedError, errorKind, InferenceError, ShutdownError, SinkError, TimeoutError,
  ValidationError,
} from "../errors.js";
import { chunkHash, pointId } from "../../shared/ids.js";
import type { EmbedJobResult, JobChunk } from "../../shared/job.js";
import type { Metrics } from "../metrics.js";
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
  "SINK_RETRY_BASE_MS" | "MODEL_NAME" | "QUERY_FILL_TOKENS">;

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

/** One query request in flight. */
interface QueryState {
  id: string;
  results: ChunkEmbedding[];
  tokens: number[];
  remaining: number;
  failed: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
  settled: Promise<void>;
}

interface JobItem extends Pooled {
  interactive?: false;
  state: JobState;
  chunk: JobChunk;
  ids: Int32Array;
  truncated: boolean;
}

interface QueryItem extends Pooled {
  interactive: true;
  state: QueryState;
  /** Position of the text in its request. */
  slot: number;
  ids: Int32Array;
  truncated: boolean;
}

type Item = JobItem | QueryItem;

/** Embeddings of a query request, in input order. */
export interface InteractiveResult {
  embeddings: ChunkEmbedding[];
  /** Tokens per input, including <s> and </s> (after truncation). */
  tokens: number[];
  /** Per input, token id -> token string, when asked for. */
  tokenMaps?: Map<number, string>[];
}

export interface InteractiveOptions {
  /** Request id for logs. */
  id: string;
  /** Fail with TimeoutError when not answered within this long, milliseconds. */
  timeoutMs: number;
  /** Aborts the request (the client went away): its chunks leave the pool and the request rejects
   *  with the signal's reason (an Error), else with ShutdownError. */
  signal?: AbortSignal;
  /** Also return each input's token strings (for sparse weights by token). */
  withTokens?: boolean;
}

/** Batches handed to the model thread at once: one running and, only when it is full, one
 *  waiting behind it, so the model never idles on a round trip while partial batches wait
 *  in the pool to be sorted with later arrivals. */
const MODEL_DEPTH = 2;

/** Interactive batches handed to the model thread at once. A batch in the thread's inbox runs
 *  whatever happens to its requests; one still in the pool can be dropped when its request is
 *  cancelled, and batches there together with later arrivals. So the thread gets one at a time,
 *  plus a second waiting behind it only while queued batches are in the thread too: otherwise the
 *  queued batch waiting there would run before the next query batch arrives. With up to 8 here,
 *  ten abandoned 32-text requests had 224 of their texts embedded anyway (issue 13). */
const INTERACTIVE_DEPTH = { alone: 1, besideQueued: 2 };

export class EmbeddingPipeline {
  private readonly pool: BatchPool<Item>;
  private readonly grouper: UpsertGrouper;
  private tokenizing = 0;
  private modelInFlight = 0;
  private interactiveInFlight = 0;
  private readonly queries = new Set<QueryState>();
  private timer: NodeJS.Timeout | undefined;
  private batchSeq = 0;
  private readonly jobs = new Set<JobState>();

  constructor(
    private readonly cfg: PipelineConfig,
    private readonly ports: { tokenizer: ChunkTokenizer; model: EmbeddingModel; sink: VectorSink; queryTokenizer?: ChunkTokenizer },
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
        if (ok) metrics?.stage.observe({ stage: "sink_write", lane: "queue" }, s);
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
    this.start(state).catch((err) => this.failUnexpected([state], err, "preparing the job"));
    return done;
  }

  /** Fails every job still in flight with `err` (the drain deadline passed). Their chunks
   *  leave the pool; points already on their way to the sink may still be written, which is
   *  harmless since point ids are deterministic. */
  abortAll(err: Error): number {
    const states = [...this.jobs];
    for (const s of states) this.fail(s, err);
    for (const q of [...this.queries]) this.failQuery(q, err);
    return states.length;
  }

  /** Waits until no job or query is in flight and nothing is left to write. */
  async drain(): Promise<void> {
    while (this.jobs.size > 0 || this.queries.size > 0) {
      await Promise.all([...[...this.jobs].map((s) => s.settled), ...[...this.queries].map((q) => q.settled)]);
    }
    await this.grouper.idle();
  }

  get inFlightQueries(): number {
    return this.queries.size;
  }

  /** Embeds `texts` in the priority lane and returns their vectors (nothing is written). Texts
   *  must be validated by the caller (non-empty, at most MAX_CHUNK_CHARS); a text over
   *  MAX_SEQ_LENGTH tokens is truncated, or with TRUNCATE=false rejects the request with
   *  ChunkTooLongError naming its index. */
  async embedInteractive(texts: string[], opts: InteractiveOptions): Promise<InteractiveResult> {
    assert.ok(texts.length > 0, "embedInteractive called without texts; the caller validates this");
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    const q: QueryState = {
      id: opts.id, results: new Array(texts.length), tokens: new Array(texts.length).fill(0), remaining: texts.length, failed: false, resolve, reject,
      settled: done.catch(() => undefined),
    };
    this.queries.add(q);
    const timer = setTimeout(() => this.failQuery(q, new TimeoutError(`not answered within ${Math.round(opts.timeoutMs)} ms`)), opts.timeoutMs);
    const onAbort = () => {
      const reason: unknown = opts.signal?.reason;
      this.failQuery(q, reason instanceof Error ? reason : new ShutdownError("the client closed the request"));
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    void q.settled.then(() => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    });
    const tokenizer = this.ports.queryTokenizer ?? this.ports.tokenizer;
    const started = performance.now();
    let tokenMaps: Map<number, string>[] | undefined;
    try {
      if (q.failed) await done; // aborted before it started: rejects with the reason, nothing to tokenize
      const encoded = await tokenizer.encode(texts, { tokens: opts.withTokens });
      this.metrics?.stage.observe({ stage: "tokenize", lane: "interactive" }, (performance.now() - started) / 1000);
      const now = Date.now();
      const items: QueryItem[] = [];
      encoded.forEach((t, i) => {
        if (t.truncated && !this.cfg.TRUNCATE) throw new ChunkTooLongError(i, t.fullLength, this.cfg.MAX_SEQ_LENGTH);
        q.tokens[i] = t.ids.length;
        items.push({ interactive: true, state: q, slot: i, ids: t.ids, truncated: t.truncated, length: t.ids.length, pooledAt: now });
      });
      if (opts.withTokens) tokenMaps = encoded.map((t) => new Map(Array.from(t.ids, (id, k) => [id, t.tokens?.[k] ?? ""])));
      if (!q.failed) {
        this.pool.add(items);
        this.pump();
      }
      await done;
      return { embeddings: q.results, tokens: q.tokens, tokenMaps };
    } catch (err) {
      if (err instanceof ChunkTooLongError) this.metrics?.errors.inc({ type: err.kind });
      this.failQuery(q, err as Error);
      throw err;
    }
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
      this.metrics?.stage.observe({ stage: "tokenize", lane: "queue" }, (performance.now() - started) / 1000);
      const now = Date.now();
      const items: JobItem[] = [];
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

  /** Schedules batches; called from timers and promise callbacks, so it must never throw. */
  private pump(): void {
    try {
      this.schedule();
    } catch (err) {
      const e = asEmbedError(err, "scheduling batches");
      this.metrics?.errors.inc({ type: e.kind });
      const jobs = this.jobs.size;
      this.log?.error({ kind: e.kind, err: e.message, jobs }, "batch scheduling failed; failing every job in flight");
      this.abortAll(e);
    }
  }

  private schedule(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // The priority lane first: query chunks go at once, whatever the queue lane holds in flight.
    while (this.interactiveInFlight < this.interactiveDepth() && this.pool.interactiveSize > 0) {
      const batch = this.pool.takeInteractive(this.cfg.QUERY_FILL_TOKENS)!;
      this.interactiveInFlight++;
      this.modelInFlight++;
      this.runGuarded(batch).finally(() => {
        this.interactiveInFlight--;
        this.modelInFlight--;
        this.pump();
      });
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
      this.runGuarded(batch).finally(() => {
        this.modelInFlight--;
        this.pump();
      });
    }
    this.metrics?.pooledChunks.set(this.pool.size);
  }

  private interactiveDepth(): number {
    const queuedInThread = this.modelInFlight > this.interactiveInFlight;
    return queuedInThread ? INTERACTIVE_DEPTH.besideQueued : INTERACTIVE_DEPTH.alone;
  }

  /** Runs a batch; on failure splits it until the failing chunk is alone, then fails only its job or request. */
  private async runBatch(batch: Batch<Item>, batchId: number): Promise<void> {
    const live = batch.items.filter((it) => !it.state.failed);
    if (live.length === 0) return;
    const interactive = live.some((it) => it.interactive);
    const lane = interactive ? "interactive" : "queue";
    const now = Date.now();
    for (const it of live) this.metrics?.stage.observe({ stage: "batch_wait", lane: it.interactive ? "interactive" : "queue" }, (now - it.pooledAt) / 1000);
    const padded = batch.paddedLength;
    const started = performance.now();
    let out: ChunkEmbedding[];
    try {
      out = await this.ports.model.embed({ sequences: live.map((it) => it.ids), paddedLength: padded, interactive });
      assert.equal(out.length, live.length, "model returned a different number of results than inputs; this is a bug");
    } catch (err) {
      this.metrics?.errors.inc({ type: errorKind(err) });
      if (live.length === 1) {
        const e = err instanceof EmbedError ? err : new InferenceError(`inference failed: ${(err as Error).message}`, { cause: err });
        const it = live[0];
        if (it.interactive) {
          this.log?.warn({ batchId, requestId: it.state.id, lane, kind: e.kind, err: e.message }, "query text failed alone; failing its request");
          this.failQuery(it.state, e);
        } else {
          this.log?.warn({ batchId, jobId: it.state.job.id, lane, kind: e.kind, err: e.message }, "chunk failed alone; failing its job");
          this.fail(it.state, e);
        }
        return;
      }
      this.log?.warn({ batchId, lane, size: live.length, err: (err as Error).message }, "batch failed; splitting and retrying");
      const half = Math.ceil(live.length / 2);
      for (const part of [live.slice(0, half), live.slice(half)]) await this.runBatch(batchOf(part, this.cfg.PAD_MULTIPLE), batchId);
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    this.recordBatch(live, padded, seconds, lane);
    this.log?.debug({ batchId, lane, size: live.length, paddedLength: padded, realTokens: live.reduce((a, it) => a + it.length, 0), pool: this.pool.size, ms: Math.round(seconds * 1000) }, "batch embedded");
    const toSink: Array<{ point: VectorPoint; done: (e?: Error) => void }> = [];
    live.forEach((it, i) => {
      // Per item, so a chunk whose point cannot be built fails only its own job.
      try {
        if (it.interactive) this.queryTextDone(it, out[i]);
        else toSink.push({ point: this.toPoint(it, out[i]), done: (e?: Error) => this.chunkWrittenGuarded(it, e) });
      } catch (err) {
        const index = it.interactive ? it.slot : it.chunk.index;
        this.failUnexpected([it.state], err, `building the point of chunk ${index}`);
      }
    });
    if (toSink.length > 0) this.grouper.add(toSink);
  }

  private recordBatch(items: Item[], padded: number, seconds: number, lane: "interactive" | "queue"): void {
    const m = this.metrics;
    if (!m) return;
    m.batches.inc({ lane });
    m.batchSize.observe(items.length);
    m.batchTokens.observe(items.length * padded);
    m.paddedTokens.inc(items.length * padded);
    m.stage.observe({ stage: "infer", lane }, seconds);
  }

  private queryTextDone(it: QueryItem, emb: ChunkEmbedding): void {
    const q = it.state;
    if (q.failed) return; // timed out or aborted while its batch ran
    q.results[it.slot] = emb;
    this.metrics?.chunks.inc({ lane: "interactive" });
    this.metrics?.tokens.inc({ lane: "interactive" }, it.length);
    if (it.truncated) this.metrics?.truncated.inc();
    if (--q.remaining > 0) return;
    this.queries.delete(q);
    q.failed = true; // settled: a late timeout or abort must not reject it
    q.resolve();
  }

  private failQuery(q: QueryState, err: Error): void {
    if (q.failed) return;
    q.failed = true;
    this.pool.remove((it) => it.state === q);
    this.queries.delete(q);
    q.reject(err);
  }

  private toPoint(it: JobItem, emb: ChunkEmbedding): VectorPoint {
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

  /** Called by the grouper, which must not see this job's exceptions. */
  private chunkWrittenGuarded(it: JobItem, err?: Error): void {
    try {
      this.chunkWritten(it, err);
    } catch (e) {
      this.failUnexpected([it.state], e, "recording a stored point");
    }
  }

  private chunkWritten(it: JobItem, err?: Error): void {
    const s = it.state;
    if (s.failed) return;
    if (err) {
      this.fail(s, err);
      return;
    }
    this.metrics?.chunks.inc({ lane: "queue" });
    this.metrics?.tokens.inc({ lane: "queue" }, it.length);
    if (it.truncated) this.metrics?.truncated.inc();
    if (--s.remaining === 0) this.complete(s).catch((e) => this.failUnexpected([s], e, "completing the job"));
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

  /** Runs a batch; whatever escapes `runBatch` fails the jobs and requests of its items. Never rejects. */
  private runGuarded(batch: Batch<Item>): Promise<void> {
    return this.runBatch(batch, ++this.batchSeq).catch((err) => {
      const owners = new Set(batch.items.map((it) => it.state));
      this.failUnexpected([...owners], err, "running a batch");
    });
  }

  /** The last-resort guard: fails `owners` (jobs or query requests) with InternalError, logged and counted once. */
  private failUnexpected(owners: Array<JobState | QueryState>, err: unknown, where: string): void {
    const e = asEmbedError(err, where);
    this.metrics?.errors.inc({ type: e.kind });
    const stack = (err as Error)?.stack;
    this.log?.error({ kind: e.kind, err: e.message, stack }, `unexpected error while ${where}; failing its jobs`);
    for (const o of owners) {
      if ("job" in o) this.fail(o, e);
      else this.failQuery(o, e);
    }
  }
}
