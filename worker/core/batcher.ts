/** Turns tokenized chunks from all in-flight jobs into model-sized batches. Trades latency
 *  for throughput: chunks of similar length are grouped so little compute goes to padding,
 *  and a partly filled batch waits at most `lingerMs` for company. A batch never exceeds
 *  `maxBatchSize` chunks, `maxBatchTokens` padded tokens (chunks x padded length) nor
 *  `maxBatchAttention` attention cells (chunks x padded length², issue 15: unfused attention
 *  memory grows with the square of the length); a single chunk over a budget alone is the only
 *  exception, and config validation rules it out. Performs no I/O; time is passed in. */
import assert from "node:assert/strict";
import { attentionCells, rowsWithinAttention } from "./activation-memory.js";
import { padTo } from "./padding.js";
import { cutQueryBatch } from "./query-lane.js";

export { padTo } from "./padding.js";
export { FILL_MIN_SHARE } from "./query-lane.js";

export interface BatchLimits {
  maxBatchTokens: number;
  maxBatchSize: number;
  padMultiple: number;
  /** Attention-cell budget of one batch: rows x padded length² (MAX_BATCH_ATTENTION); unset = none. */
  maxBatchAttention?: number;
  /** Fixed cost of one model call, in tokens: larger values favour fewer, fuller batches. */
  batchOverheadTokens?: number;
  /** "sorted" (default): length-sorted, token-budgeted, cost-optimal batches. "fifo": fixed-size
   *  batches of `maxBatchSize` chunks in arrival order with no token budget, the way a naive
   *  batcher works; kept for benchmarks (the ablation) and comparison. */
  strategy?: "sorted" | "fifo";
}

export interface Sized {
  /** Sequence length in tokens, including special tokens. */
  length: number;
}

export interface Batch<T extends Sized> {
  items: T[];
  /** Every sequence is padded to this length: the longest, rounded up to padMultiple. */
  paddedLength: number;
  realTokens: number;
  paddedTokens: number;
}

function makeBatch<T extends Sized>(items: T[], paddedLength: number): Batch<T> {
  let real = 0;
  for (const it of items) real += it.length;
  return { items, paddedLength, realTokens: real, paddedTokens: paddedLength * items.length };
}

/** A batch of exactly these items, padded to the longest of them. */
export function batchOf<T extends Sized>(items: T[], padMultiple: number): Batch<T> {
  let longest = 0;
  for (const it of items) longest = Math.max(longest, it.length);
  return makeBatch(items, padTo(longest, padMultiple));
}

/** Sorts by length (longest first) and cuts the sorted list into batches that minimise the
 *  total cost: padded tokens computed plus `batchOverheadTokens` per batch (the fixed cost of
 *  one model call, in token-equivalents). Greedy filling would put one long chunk with dozens
 *  of short ones and pad them all to its length; the exact partition (dynamic programming over
 *  contiguous runs, O(items x maxBatchSize)) splits them whenever that is cheaper. */
export function planBatches<T extends Sized>(items: readonly T[], limits: BatchLimits): Batch<T>[] {
  const sorted = [...items].sort((a, b) => b.length - a.length);
  const n = sorted.length;
  const overhead = limits.batchOverheadTokens ?? 0;
  const padded = sorted.map((it) => padTo(it.length, limits.padMultiple));
  // best[j] = cheapest cost of batching sorted[0..j); from[j] = where its last batch starts.
  const best = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  best[0] = 0;
  for (let i = 0; i < n; i++) {
    if (best[i] === Infinity) continue;
    const len = padded[i]; // the longest of any batch starting at i
    const fit = Math.min(
      limits.maxBatchSize,
      Math.floor(limits.maxBatchTokens / len),
      rowsWithinAttention(len, limits.maxBatchAttention),
    );
    const rows = Math.max(1, Math.min(fit, n - i));
    for (let k = 1; k <= rows; k++) {
      const cost = best[i] + k * len + overhead;
      if (cost < best[i + k]) {
        best[i + k] = cost;
        from[i + k] = i;
      }
    }
  }
  const out: Batch<T>[] = [];
  for (let j = n; j > 0; j = from[j]) out.push(makeBatch(sorted.slice(from[j], j), padded[from[j]]));
  return out.reverse();
}

export interface Pooled extends Sized {
  /** When the chunk entered the pool (ms, caller's clock). */
  pooledAt: number;
  /** A query text (the query lane): see `BatchPool.takeQuery`. */
  queryLane?: boolean;
}

export interface TakeOptions {
  now: number;
  /** More chunks are on their way (jobs still tokenizing): worth waiting for a fuller batch. */
  moreComing: boolean;
  lingerMs: number;
  /** A batch at least this full (share of the token budget) goes without waiting. */
  fullRatio?: number;
  /** Take only a full batch (the model is busy: a partial batch now would just sit in line,
   *  while waiting lets the pool grow and sort better). */
  onlyFull?: boolean;
}

/** Holds the pool and decides which batch runs next. Two lanes: queued chunks (jobs) and the
 *  query lane (query requests' texts). Query texts never wait for company and never sit behind
 *  queued ones: `takeQuery` cuts their batch at once (policy in query-lane.ts), and `take`
 *  never picks them. */
export class BatchPool<T extends Pooled> {
  private pool: T[] = [];
  private queries: T[] = [];

  constructor(private readonly limits: BatchLimits) {
    assert.ok(
      limits.maxBatchTokens > 0 &&
        limits.maxBatchSize > 0 &&
        limits.padMultiple > 0 &&
        (limits.maxBatchAttention ?? 1) > 0,
      "batch limits must be positive",
    );
  }

  get size(): number {
    return this.pool.length + this.queries.length;
  }

  /** Query texts waiting for a batch. */
  get querySize(): number {
    return this.queries.length;
  }

  add(items: readonly T[]): void {
    for (const it of items) (it.queryLane ? this.queries : this.pool).push(it);
  }

  /** Drops pooled items matching `pred` (their job or request failed); returns how many. */
  remove(pred: (item: T) => boolean): number {
    const before = this.size;
    this.pool = this.pool.filter((it) => !pred(it));
    this.queries = this.queries.filter((it) => !pred(it));
    return before - this.size;
  }

  /** The query lane's next batch: the waiting query texts with their fill of queued chunks,
   *  under `fillTokens` (QUERY_FILL_TOKENS), as `cutQueryBatch` decides. Null when no query text waits. */
  takeQuery(fillTokens: number): Batch<T> | null {
    if (this.queries.length === 0) return null;
    const { lead, fill, paddedLength } = cutQueryBatch(this.queries, this.pool, this.limits, fillTokens);
    const leadSet = new Set(lead);
    this.queries = this.queries.filter((it) => !leadSet.has(it));
    if (fill.length > 0) {
      const taken = new Set(fill);
      this.pool = this.pool.filter((it) => !taken.has(it));
    }
    return makeBatch([...lead, ...fill], paddedLength);
  }

  /** The next batch to run, or null with how long to wait before asking again. */
  take(opts: TakeOptions): { batch: Batch<T> | null; waitMs: number } {
    if (this.pool.length === 0) return { batch: null, waitMs: Infinity };
    if (this.limits.strategy === "fifo") return this.takeFifo(opts);
    const plans = planBatches(this.pool, this.limits);
    const oldest = this.oldest();
    const full = (b: Batch<T>) =>
      b.items.length >= this.limits.maxBatchSize ||
      b.paddedTokens >= (opts.fullRatio ?? 0.9) * this.limits.maxBatchTokens ||
      // the next row would not fit anyway
      b.paddedTokens + b.paddedLength > this.limits.maxBatchTokens ||
      attentionCells(b.items.length + 1, b.paddedLength) > (this.limits.maxBatchAttention ?? Infinity);
    const withOldest = plans.find((b) => b.items.includes(oldest))!;
    const age = opts.now - oldest.pooledAt;
    let chosen: Batch<T> | undefined;
    if (full(withOldest) || (!opts.onlyFull && (!opts.moreComing || age >= opts.lingerMs))) chosen = withOldest;
    else chosen = plans.find(full);
    if (!chosen) return { batch: null, waitMs: opts.onlyFull ? Infinity : Math.max(0, opts.lingerMs - age) };
    const taken = new Set<T>(chosen.items);
    this.pool = this.pool.filter((it) => !taken.has(it));
    return { batch: chosen, waitMs: 0 };
  }

  /** Arrival order, `maxBatchSize` at a time, padded to the longest: no sorting, no budget. */
  private takeFifo(opts: TakeOptions): { batch: Batch<T> | null; waitMs: number } {
    const full = this.pool.length >= this.limits.maxBatchSize;
    const age = opts.now - this.pool[0].pooledAt;
    if (!full && (opts.onlyFull || (opts.moreComing && age < opts.lingerMs))) {
      return { batch: null, waitMs: opts.onlyFull ? Infinity : Math.max(0, opts.lingerMs - age) };
    }
    const items = this.pool.splice(0, this.limits.maxBatchSize);
    return { batch: batchOf(items, this.limits.padMultiple), waitMs: 0 };
  }

  private oldest(): T {
    let o = this.pool[0];
    for (const it of this.pool) if (it.pooledAt < o.pooledAt) o = it;
    return o;
  }
}
