/** The embedding pipeline's front: takes queued jobs (`submit`) and query requests
 *  (`embedQuery`), keeps the books of what is in flight, and wires the parts: each job has a
 *  job tracker (validation, skip-unchanged, points, stale removal; job-tracker.ts), each query
 *  request a query tracker (query-tracker.ts), and both feed one lane-agnostic scheduler
 *  (pool, model depth, split-and-retry; scheduler.ts) whose lane policy lives in query-lane.ts.
 *  Points go to the sink through the upsert grouper, stale-point removals through the stale
 *  remover (grouped across documents; stale-remover.ts). Trades a little latency for throughput:
 *  chunks of every in-flight job are pooled and embedded in length-sorted batches, while query
 *  texts overtake them in the query lane and their vectors go back to the caller. One bad chunk
 *  fails only its job. Knows nothing of Redis, ONNX, Qdrant or HTTP.
 *  Last-resort guard (issue 13): every promise chain and timer started by these parts ends in a
 *  catch that fails the job(s) the work belonged to with InternalError, so an unexpected
 *  exception fails those jobs with a reason and never reaches the process. A failure in the
 *  scheduler itself belongs to no single job: it fails every job in flight, which BullMQ retries. */
import assert from "node:assert/strict";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { ChunkTooLongError, errorKind, type EmbedError } from "../errors.js";
import type { EmbedJobResult } from "../../shared/job.js";
import type { Metrics } from "../metrics.js";
import type { ChunkEmbedding } from "./heads.js";
import { JobTracker, type JobTrackerConfig, type PipelineJob } from "./job-tracker.js";
import { validateJob } from "./job-validation.js";
import type { ChunkTokenizer, EmbeddingModel, VectorSink } from "./ports.js";
import { QUERY_LANE_LABEL } from "./query-lane.js";
import { QueryTracker } from "./query-tracker.js";
import { BatchScheduler, type BatchItem, type SchedulerConfig } from "./scheduler.js";
import { StaleRemover } from "./stale-remover.js";
import { UpsertGrouper } from "./upsert-grouper.js";

export type { PipelineJob } from "./job-tracker.js";

type PipelineConfig = SchedulerConfig &
  JobTrackerConfig &
  Pick<
    Config,
    | "MAX_CHUNK_CHARS"
    | "MAX_CHUNKS_PER_JOB"
    | "UPSERT_MAX_BYTES"
    | "UPSERT_MAX_POINTS"
    | "UPSERT_LINGER_MS"
    | "STALE_DELETE_MAX_DOCS"
    | "STALE_DELETE_LINGER_MS"
  >;

/** Embeddings of a query request, in input order. */
export interface QueryResult {
  embeddings: ChunkEmbedding[];
  /** Tokens per input, including <s> and </s> (after truncation). */
  tokens: number[];
  /** Per input, token id -> token string, when asked for. */
  tokenMaps?: Map<number, string>[];
}

export interface QueryOptions {
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

export interface PipelinePorts {
  tokenizer: ChunkTokenizer;
  model: EmbeddingModel;
  sink: VectorSink;
  queryTokenizer?: ChunkTokenizer;
}

export class EmbeddingPipeline {
  private readonly scheduler: BatchScheduler;
  private readonly grouper: UpsertGrouper;
  private readonly remover: StaleRemover;
  private readonly jobs = new Set<JobTracker>();
  private readonly queries = new Set<QueryTracker>();

  constructor(
    private readonly cfg: PipelineConfig,
    private readonly ports: PipelinePorts,
    private readonly metrics?: Metrics,
    private readonly log?: Logger,
  ) {
    this.grouper = new UpsertGrouper(ports.sink, {
      maxBytes: cfg.UPSERT_MAX_BYTES,
      maxPoints: cfg.UPSERT_MAX_POINTS,
      lingerMs: cfg.UPSERT_LINGER_MS,
      retries: cfg.SINK_RETRIES,
      retryBaseMs: cfg.SINK_RETRY_BASE_MS,
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
    this.remover = new StaleRemover(ports.sink, {
      maxDocs: cfg.STALE_DELETE_MAX_DOCS,
      lingerMs: cfg.STALE_DELETE_LINGER_MS,
      retries: cfg.SINK_RETRIES,
      retryBaseMs: cfg.SINK_RETRY_BASE_MS,
      onRequest: () => metrics?.deletes.inc(),
      onError: (err, attempt, docs) => {
        metrics?.errors.inc({ type: "sink" });
        log?.warn({ err: err.message, attempt, docs }, "stale-point delete failed");
      },
    });
    this.scheduler = new BatchScheduler(cfg, {
      model: ports.model,
      encodeVectors: ports.sink.usesVectorJson,
      metrics,
      log,
      write: (points) => this.grouper.add(points),
      onSchedulerFailure: (e) => this.schedulerFailed(e),
    });
  }

  get inFlightJobs(): number {
    return this.jobs.size;
  }

  get inFlightQueries(): number {
    return this.queries.size;
  }

  /** Embeds and stores every chunk of `job`; rejects with an EmbedError saying why not. */
  async submit(job: PipelineJob): Promise<EmbedJobResult> {
    try {
      validateJob(job, this.cfg);
    } catch (err) {
      this.metrics?.errors.inc({ type: errorKind(err) });
      throw err;
    }
    const { cfg, ports, scheduler, metrics, log } = this;
    const tracker = new JobTracker(job, {
      cfg,
      tokenizer: ports.tokenizer,
      sink: ports.sink,
      remover: this.remover,
      scheduler,
      metrics,
      log,
      onSettled: (t) => {
        this.jobs.delete(t);
        this.metrics?.inflightJobs.set(this.jobs.size);
      },
    });
    this.jobs.add(tracker);
    this.metrics?.inflightJobs.set(this.jobs.size);
    tracker.start();
    return tracker.done;
  }

  /** Fails every job still in flight with `err` (the drain deadline passed). Their chunks
   *  leave the pool; points already on their way to the sink may still be written, which is
   *  harmless since point ids are deterministic. */
  abortAll(err: Error): number {
    const jobs = [...this.jobs];
    for (const t of jobs) t.fail(err);
    for (const q of [...this.queries]) q.fail(err);
    return jobs.length;
  }

  /** Waits until no job or query is in flight and nothing is left to write. */
  async drain(): Promise<void> {
    while (this.jobs.size > 0 || this.queries.size > 0) {
      await Promise.all([...[...this.jobs].map((t) => t.finished), ...[...this.queries].map((q) => q.finished)]);
    }
    await this.grouper.idle();
  }

  /** Embeds `texts` in the query lane and returns their vectors (nothing is written). Texts
   *  must be validated by the caller (non-empty, at most MAX_CHUNK_CHARS); a text over
   *  MAX_SEQ_LENGTH tokens is truncated, or with TRUNCATE=false rejects the request with
   *  ChunkTooLongError naming its index. */
  async embedQuery(texts: string[], opts: QueryOptions): Promise<QueryResult> {
    assert.ok(texts.length > 0, "embedQuery called without texts; the caller validates this");
    const q = new QueryTracker({
      id: opts.id,
      texts: texts.length,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      metrics: this.metrics,
      onSettled: (t) => this.queries.delete(t),
      onFailed: (t) => this.scheduler.removeOwner(t),
    });
    this.queries.add(q);
    q.watch();
    try {
      if (q.settled) await q.done; // aborted before it started: rejects with the reason, nothing to tokenize
      const tokenMaps = await this.poolQuery(q, texts, opts.withTokens);
      await q.done;
      return { embeddings: q.results, tokens: q.tokens, tokenMaps };
    } catch (err) {
      if (err instanceof ChunkTooLongError) this.metrics?.errors.inc({ type: err.kind });
      q.fail(err as Error);
      throw err;
    }
  }

  /** Tokenizes a request's texts into the query lane and schedules at once. */
  private async poolQuery(
    q: QueryTracker,
    texts: string[],
    withTokens?: boolean,
  ): Promise<Map<number, string>[] | undefined> {
    const tokenizer = this.ports.queryTokenizer ?? this.ports.tokenizer;
    const started = performance.now();
    const encoded = await tokenizer.encode(texts, { tokens: withTokens });
    this.metrics?.stage.observe({ stage: "tokenize", lane: QUERY_LANE_LABEL }, (performance.now() - started) / 1000);
    const now = Date.now();
    const items: BatchItem[] = encoded.map((t, i) => {
      if (t.truncated && !this.cfg.TRUNCATE) throw new ChunkTooLongError(i, t.fullLength, this.cfg.MAX_SEQ_LENGTH);
      q.tokens[i] = t.ids.length;
      const { ids, truncated } = t;
      return { queryLane: true, owner: q, index: i, ids, truncated, length: ids.length, pooledAt: now };
    });
    const tokenMaps = withTokens
      ? encoded.map((t) => new Map(Array.from(t.ids, (id, k) => [id, t.tokens?.[k] ?? ""])))
      : undefined;
    if (!q.settled) {
      this.scheduler.add(items);
      this.scheduler.pump();
    }
    return tokenMaps;
  }

  /** The scheduling pass threw: no single job is to blame, so every job in flight fails (BullMQ retries them). */
  private schedulerFailed(e: EmbedError): void {
    this.metrics?.errors.inc({ type: e.kind });
    const jobs = this.jobs.size;
    this.log?.error({ kind: e.kind, err: e.message, jobs }, "batch scheduling failed; failing every job in flight");
    this.abortAll(e);
  }
}
