/** One queued job in flight, from its chunks to its last stored point: skips unchanged chunks,
 *  tokenizes the rest into the scheduler's pool, turns each embedded chunk into a point for the
 *  upsert grouper, and settles when the last point is stored (or when any chunk fails: one
 *  failure fails the job). Chunks that carry a content hash are first looked up in the sink and
 *  skipped when the stored point has the same hash and model. Chunks that carry `docChunks` make
 *  the job holding the document's last chunk, once its own points are stored, remove the
 *  document's points beyond `docChunks` that older versions (lower `enqueuedAt`) wrote, through the
 *  stale remover (grouped with other documents' removals, stale-remover.ts); a failed removal fails
 *  the job so it is retried. A `fresh` job (the producer promises the collection never held the
 *  document) removes nothing. Trades one sink read per job (hashes) for skipping tokenizer and
 *  model time. Acts at submit, per written point, and at completion. */
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { ChunkTooLongError, EmbedError, SinkError, ValidationError } from "../errors.js";
import { pointId } from "../../shared/ids.js";
import type { EmbedJobResult, JobChunk } from "../../shared/job.js";
import type { Metrics } from "../metrics.js";
import type { ChunkEmbedding } from "./heads.js";
import { toPoint } from "./point-payload.js";
import type { ChunkTokenizer, VectorSink } from "./ports.js";
import type { BatchItem, BatchOwner, BatchScheduler } from "./scheduler.js";
import { failUnexpected } from "./scheduler.js";
import type { StaleRemover } from "./stale-remover.js";
import { retrySink, type GroupedPoint } from "./upsert-grouper.js";

export interface PipelineJob {
  id: string;
  docId: string;
  docHash: string;
  enqueuedAt: number;
  metadata: Record<string, unknown>;
  chunks: JobChunk[];
  /** The producer promises the collection holds no earlier version of this document: no stale removal. */
  fresh?: boolean;
}

export type JobTrackerConfig = Pick<
  Config,
  "TRUNCATE" | "MAX_SEQ_LENGTH" | "STORE_TEXT" | "SINK_RETRIES" | "SINK_RETRY_BASE_MS" | "MODEL_NAME"
>;

export interface JobContext {
  cfg: JobTrackerConfig;
  tokenizer: ChunkTokenizer;
  sink: VectorSink;
  /** Removes stale points, grouped across jobs (stale-remover.ts). */
  remover: StaleRemover;
  scheduler: BatchScheduler;
  metrics?: Metrics;
  log?: Logger;
  /** Called once when the job settles either way (leaves the pipeline's books). */
  onSettled(t: JobTracker): void;
}

interface JobItem extends BatchItem {
  chunk: JobChunk;
}

export class JobTracker implements BatchOwner {
  /** The chunks to embed: the job's, minus those skipped as unchanged. */
  private todo: JobChunk[];
  private unchanged = 0;
  private remaining: number;
  private tokens = 0;
  private truncated = 0;
  private isSettled = false;
  readonly done: Promise<EmbedJobResult>;
  /** Resolves once the job settled either way. */
  readonly finished: Promise<void>;
  readonly nouns = { item: "chunk", owner: "job" };
  private resolve!: (r: EmbedJobResult) => void;
  private reject!: (e: Error) => void;

  constructor(
    readonly job: PipelineJob,
    private readonly ctx: JobContext,
  ) {
    this.todo = job.chunks;
    this.remaining = job.chunks.length;
    this.done = new Promise<EmbedJobResult>((res, rej) => ((this.resolve = res), (this.reject = rej)));
    this.finished = this.done.then(
      () => undefined,
      () => undefined,
    );
  }

  get settled(): boolean {
    return this.isSettled;
  }

  get logFields(): Record<string, string> {
    return { jobId: this.job.id };
  }

  /** Skips unchanged chunks, then tokenizes the rest into the pool. Never rejects. */
  start(): void {
    this.prepare().catch((err) => failUnexpected([this], err, "preparing the job", this.ctx));
  }

  private async prepare(): Promise<void> {
    if (this.ctx.sink.readStored && this.job.chunks.some((c) => c.hash !== undefined)) {
      try {
        await this.skipUnchanged();
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (this.isSettled) return;
      if (this.todo.length === 0) return this.complete();
    }
    await this.ctx.scheduler.whileTokenizing(() => this.tokenize());
  }

  /** Reads the stored hashes once per job, before tokenizing, so skipped chunks cost no tokenizer
   *  or model time. */
  private async skipUnchanged(): Promise<void> {
    const { job, ctx } = this;
    const hashed = job.chunks.filter((c) => c.hash !== undefined);
    const ids = hashed.map((c) => pointId(job.docId, c.index));
    const what = `reading stored hashes of "${job.docId}"`;
    const stored = await this.withSinkRetries(what, () => ctx.sink.readStored!(ids));
    const same = new Set<number>();
    hashed.forEach((c, i) => {
      const s = stored.get(ids[i]);
      if (s && s.chunkHash === c.hash && s.model === ctx.cfg.MODEL_NAME) same.add(c.index);
    });
    this.todo = job.chunks.filter((c) => !same.has(c.index));
    this.unchanged = same.size;
    this.remaining = this.todo.length;
  }

  /** Runs a sink call with the upsert retry policy; every failed attempt counts as a sink error. */
  private async withSinkRetries<T>(what: string, call: () => Promise<T>): Promise<T> {
    const { cfg, metrics, log } = this.ctx;
    try {
      return await retrySink(call, {
        retries: cfg.SINK_RETRIES,
        baseMs: cfg.SINK_RETRY_BASE_MS,
        onError: (err, attempt) => {
          metrics?.errors.inc({ type: "sink" });
          log?.warn({ err: err.message, attempt }, `${what} failed`);
        },
      });
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError(`${what} failed: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  private async tokenize(): Promise<void> {
    const { cfg, metrics } = this.ctx;
    const started = performance.now();
    try {
      const encoded = await this.ctx.tokenizer.encode(this.todo.map((c) => c.text));
      metrics?.stage.observe({ stage: "tokenize", lane: "queue" }, (performance.now() - started) / 1000);
      const now = Date.now();
      const items: JobItem[] = [];
      for (let i = 0; i < encoded.length; i++) {
        const t = encoded[i];
        const chunk = this.todo[i];
        if (t.truncated && !cfg.TRUNCATE) throw new ChunkTooLongError(chunk.index, t.fullLength, cfg.MAX_SEQ_LENGTH);
        if (t.truncated) this.truncated++;
        this.tokens += t.ids.length;
        const { ids, truncated } = t;
        items.push({ owner: this, chunk, index: chunk.index, ids, truncated, length: ids.length, pooledAt: now });
      }
      if (!this.isSettled) this.ctx.scheduler.add(items);
    } catch (err) {
      const e =
        err instanceof EmbedError
          ? err
          : new ValidationError(`tokenizing failed: ${(err as Error).message}`, { cause: err });
      metrics?.errors.inc({ type: e.kind });
      this.fail(e);
    }
  }

  embedded(item: BatchItem, emb: ChunkEmbedding): GroupedPoint {
    const it = item as JobItem;
    const point = toPoint(this.job, it.chunk, it, emb, this.ctx.cfg);
    return { point, done: (e?: Error) => this.chunkWrittenGuarded(it, e) };
  }

  /** Called by the grouper, which must not see this job's exceptions. */
  private chunkWrittenGuarded(it: JobItem, err?: Error): void {
    try {
      this.chunkWritten(it, err);
    } catch (e) {
      failUnexpected([this], e, "recording a stored point", this.ctx);
    }
  }

  private chunkWritten(it: JobItem, err?: Error): void {
    if (this.isSettled) return;
    if (err) {
      this.fail(err);
      return;
    }
    const { metrics } = this.ctx;
    metrics?.chunks.inc({ lane: "queue" });
    metrics?.tokens.inc({ lane: "queue" }, it.length);
    if (it.truncated) metrics?.truncated.inc();
    if (--this.remaining === 0) this.complete().catch((e) => failUnexpected([this], e, "completing the job", this.ctx));
  }

  /** Every point of the job is stored: remove what older versions left beyond this one, then resolve.
   *  Runs after the job's own writes so a reader never sees the document with fewer chunks than
   *  either version has. The version guard (`belowVersion`) keeps a late job of an older version
   *  (a retry, a delayed job) from deleting a newer version's points; its upserts are not guarded:
   *  per point the last write wins. */
  private async complete(): Promise<void> {
    const { job } = this;
    const docChunks = job.chunks[0].docChunks;
    const { remover, metrics } = this.ctx;
    // One part per document is enough (the removal never touches indexes below docChunks):
    // the one holding the last chunk.
    if (docChunks !== undefined && remover.active && job.chunks.some((c) => c.index === docChunks - 1)) {
      if (job.fresh) {
        metrics?.staleRemovals.inc({ outcome: "skipped" });
      } else {
        try {
          await remover.remove({ docId: job.docId, fromChunk: docChunks, belowVersion: job.enqueuedAt });
        } catch (err) {
          this.fail(err as Error);
          return;
        }
        metrics?.staleRemovals.inc({ outcome: "removed" });
      }
    }
    if (this.isSettled) return;
    this.isSettled = true;
    this.ctx.onSettled(this);
    const { tokens, truncated, unchanged } = this;
    this.resolve({ chunks: job.chunks.length, tokens, truncated, points: this.todo.length, unchanged });
  }

  fail(err: Error): void {
    if (this.isSettled) return;
    this.isSettled = true;
    this.ctx.scheduler.removeOwner(this);
    this.ctx.onSettled(this);
    this.reject(err);
  }
}
