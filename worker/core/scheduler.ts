/** The lane-agnostic scheduler: pools tokenized items from every owner in flight (jobs, query
 *  requests), hands batches to the model under a depth limit, and splits a failing batch in
 *  halves until the failing item runs alone, so one bad item fails only its owner. Trades a
 *  little latency for throughput: `MODEL_DEPTH` batches sit in the model thread so it never
 *  idles on a round trip, and partial batches wait in the pool to be sorted with later
 *  arrivals. It serves the query lane first; what a query batch holds and how many may be in
 *  the model thread is decided in query-lane.ts. Acts whenever items arrive, a batch returns,
 *  or the linger timer fires. Knows nothing of jobs or requests: an item's owner receives its
 *  vectors (`embedded`) and failures (`fail`).
 *  Last-resort guard (issue 13): every promise chain and timer started here ends in a catch that
 *  fails the owners the work belonged to with InternalError; a failure of the scheduling pass
 *  itself belongs to no single owner and goes to `onSchedulerFailure`. */
import assert from "node:assert/strict";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { asEmbedError, EmbedError, errorKind, InferenceError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { BatchPool, batchOf, type Batch, type Pooled } from "./batcher.js";
import type { ChunkEmbedding } from "./heads.js";
import type { EmbeddingModel } from "./ports.js";
import { laneLabel, queryFillBudget, queryLaneDepth, type LaneLabel } from "./query-lane.js";
import type { GroupedPoint } from "./upsert-grouper.js";

/** Whoever an item's vectors belong to: a job or a query request. */
export interface BatchOwner {
  /** Resolved or failed: its items are skipped and late events ignored. */
  readonly settled: boolean;
  /** Log fields naming the owner, e.g. `{ jobId }`. */
  readonly logFields: Record<string, string>;
  /** What an item and its owner are called in logs ("chunk"/"job", "query text"/"request"). */
  readonly nouns: { item: string; owner: string };
  /** Takes an item's vectors; returns the point to write, if the owner writes one. May throw:
   *  the scheduler then fails only this owner. */
  embedded(item: BatchItem, emb: ChunkEmbedding): GroupedPoint | undefined;
  /** Fails the owner with `err` (no-op once settled). */
  fail(err: Error): void;
}

export interface BatchItem extends Pooled {
  owner: BatchOwner;
  /** Chunk index (jobs) or position in the request (queries), for messages. */
  index: number;
  ids: Int32Array;
  truncated: boolean;
}

/** Batches handed to the model thread at once: one running and, only when it is full, one
 *  waiting behind it, so the model never idles on a round trip while partial batches wait
 *  in the pool to be sorted with later arrivals. */
const MODEL_DEPTH = 2;

export type SchedulerConfig = Pick<
  Config,
  | "MAX_BATCH_TOKENS"
  | "MAX_BATCH_SIZE"
  | "MAX_BATCH_ATTENTION"
  | "PAD_MULTIPLE"
  | "BATCH_OVERHEAD_TOKENS"
  | "BATCH_LINGER_MS"
  | "BATCH_STRATEGY"
  | "QUERY_FILL_TOKENS"
>;

export interface SchedulerHooks {
  model: EmbeddingModel;
  /** Ask the model for vector JSON on batches of queued chunks (the sink uses it); query-lane
   *  batches never, since query callers need the typed arrays. */
  encodeVectors?: boolean;
  /** Receives the points a batch produced, once per batch. */
  write(points: GroupedPoint[]): void;
  /** The scheduling pass threw: no single owner is to blame. */
  onSchedulerFailure(err: EmbedError): void;
  metrics?: Metrics;
  log?: Logger;
}

export class BatchScheduler {
  private readonly pool: BatchPool<BatchItem>;
  /** Owners still tokenizing: more items are coming, worth waiting for a fuller batch. */
  private tokenizing = 0;
  private modelInFlight = 0;
  private queryInFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private batchSeq = 0;

  constructor(
    private readonly cfg: SchedulerConfig,
    private readonly hooks: SchedulerHooks,
  ) {
    this.pool = new BatchPool<BatchItem>({
      maxBatchTokens: cfg.MAX_BATCH_TOKENS,
      maxBatchSize: cfg.MAX_BATCH_SIZE,
      maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
      padMultiple: cfg.PAD_MULTIPLE,
      batchOverheadTokens: cfg.BATCH_OVERHEAD_TOKENS,
      strategy: cfg.BATCH_STRATEGY,
    });
  }

  /** Counts `work` (a tokenization) as in progress until it settles, then schedules. */
  async whileTokenizing<T>(work: () => Promise<T>): Promise<T> {
    this.tokenizing++;
    try {
      return await work();
    } finally {
      this.tokenizing--;
      this.pump();
    }
  }

  add(items: BatchItem[]): void {
    this.pool.add(items);
  }

  /** Drops the pooled items of `owner` (it failed or was cancelled). */
  removeOwner(owner: BatchOwner): void {
    this.pool.remove((it) => it.owner === owner);
  }

  /** Schedules batches; called from timers and promise callbacks, so it must never throw. */
  pump(): void {
    try {
      this.schedule();
    } catch (err) {
      this.hooks.onSchedulerFailure(asEmbedError(err, "scheduling batches"));
    }
  }

  private schedule(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // The query lane first: query texts go at once, whatever the queue lane holds in flight.
    while (this.queryInFlight < queryLaneDepth(this.modelInFlight, this.queryInFlight) && this.pool.querySize > 0) {
      const batch = this.pool.takeQuery(queryFillBudget(this.cfg))!;
      this.queryInFlight++;
      this.modelInFlight++;
      this.runGuarded(batch).finally(() => {
        this.queryInFlight--;
        this.modelInFlight--;
        this.pump();
      });
    }
    while (this.modelInFlight < MODEL_DEPTH) {
      const { batch, waitMs } = this.pool.take({
        now: Date.now(),
        moreComing: this.tokenizing > 0,
        lingerMs: this.cfg.BATCH_LINGER_MS,
        onlyFull: this.modelInFlight > 0,
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
    this.hooks.metrics?.pooledChunks.set(this.pool.size);
  }

  /** Runs a batch; whatever escapes `runBatch` fails the owners of its items. Never rejects. */
  private runGuarded(batch: Batch<BatchItem>): Promise<void> {
    return this.runBatch(batch, ++this.batchSeq).catch((err) => {
      const owners = new Set(batch.items.map((it) => it.owner));
      failUnexpected([...owners], err, "running a batch", this.hooks);
    });
  }

  /** Runs a batch; on failure splits it until the failing item is alone, then fails only its owner. */
  private async runBatch(batch: Batch<BatchItem>, batchId: number): Promise<void> {
    const live = batch.items.filter((it) => !it.owner.settled);
    if (live.length === 0) return;
    const queryLane = live.some((it) => it.queryLane);
    const lane = laneLabel(queryLane);
    const { metrics, log } = this.hooks;
    const now = Date.now();
    for (const it of live) {
      metrics?.stage.observe({ stage: "batch_wait", lane: laneLabel(it.queryLane) }, (now - it.pooledAt) / 1000);
    }
    const padded = batch.paddedLength;
    const started = performance.now();
    let out: ChunkEmbedding[];
    try {
      const sequences = live.map((it) => it.ids);
      const encodeVectors = !queryLane && this.hooks.encodeVectors === true;
      out = await this.hooks.model.embed({ sequences, paddedLength: padded, queryLane, encodeVectors });
      assert.equal(out.length, live.length, "model returned a different number of results than inputs; this is a bug");
    } catch (err) {
      metrics?.errors.inc({ type: errorKind(err) });
      if (live.length === 1) return this.failAlone(live[0], err, batchId, lane);
      const size = live.length;
      log?.warn({ batchId, lane, size, err: (err as Error).message }, "batch failed; splitting and retrying");
      const half = Math.ceil(size / 2);
      for (const part of [live.slice(0, half), live.slice(half)]) {
        await this.runBatch(batchOf(part, this.cfg.PAD_MULTIPLE), batchId);
      }
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    this.recordBatch(live, padded, seconds, lane);
    const realTokens = live.reduce((a, it) => a + it.length, 0);
    const ms = Math.round(seconds * 1000);
    const pool = this.pool.size;
    log?.debug({ batchId, lane, size: live.length, paddedLength: padded, realTokens, pool, ms }, "batch embedded");
    this.deliver(live, out);
  }

  private failAlone(it: BatchItem, err: unknown, batchId: number, lane: LaneLabel): void {
    const e =
      err instanceof EmbedError
        ? err
        : new InferenceError(`inference failed: ${(err as Error).message}`, { cause: err });
    const { nouns, logFields } = it.owner;
    const msg = `${nouns.item} failed alone; failing its ${nouns.owner}`;
    this.hooks.log?.warn({ batchId, ...logFields, lane, kind: e.kind, err: e.message }, msg);
    it.owner.fail(e);
  }

  /** Hands each item's vectors to its owner, then the batch's points to the sink. */
  private deliver(live: BatchItem[], out: ChunkEmbedding[]): void {
    const toSink: GroupedPoint[] = [];
    live.forEach((it, i) => {
      // Per item, so an item whose point cannot be built fails only its own owner.
      try {
        const point = it.owner.embedded(it, out[i]);
        if (point) toSink.push(point);
      } catch (err) {
        failUnexpected([it.owner], err, `building the point of chunk ${it.index}`, this.hooks);
      }
    });
    if (toSink.length > 0) this.hooks.write(toSink);
  }

  private recordBatch(items: BatchItem[], padded: number, seconds: number, lane: LaneLabel): void {
    const m = this.hooks.metrics;
    if (!m) return;
    m.batches.inc({ lane });
    m.batchSize.observe(items.length);
    m.batchTokens.observe(items.length * padded);
    m.paddedTokens.inc(items.length * padded);
    m.stage.observe({ stage: "infer", lane }, seconds);
  }
}

/** The last-resort guard: fails `owners` with InternalError, logged and counted once. */
export function failUnexpected(
  owners: BatchOwner[],
  err: unknown,
  where: string,
  o: { metrics?: Metrics; log?: Logger },
): void {
  const e = asEmbedError(err, where);
  o.metrics?.errors.inc({ type: e.kind });
  const stack = (err as Error)?.stack;
  o.log?.error({ kind: e.kind, err: e.message, stack }, `unexpected error while ${where}; failing its jobs`);
  for (const owner of owners) owner.fail(e);
}
