/** One query request in flight in the query lane: its texts' vectors come back to the caller in
 *  input order instead of going to the sink. Trades nothing: it only keeps books. Acts when a
 *  text's vectors arrive, when the request's deadline passes (TimeoutError) and when its caller
 *  aborts (the signal's reason, else ShutdownError); the first of these to settle it wins, and
 *  later ones are ignored. On failure its texts leave the pool. Performs no I/O. */
import { ShutdownError, TimeoutError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { ChunkEmbedding } from "./heads.js";
import { QUERY_LANE_LABEL } from "./query-lane.js";
import type { BatchItem, BatchOwner } from "./scheduler.js";

export interface QueryTrackerOptions {
  id: string;
  texts: number;
  timeoutMs: number;
  signal?: AbortSignal;
  metrics?: Metrics;
  /** Called once when the request settles either way (leaves the pipeline's books). */
  onSettled(q: QueryTracker): void;
  /** Called once when the request fails: drop its pooled texts. */
  onFailed(q: QueryTracker): void;
}

export class QueryTracker implements BatchOwner {
  readonly results: ChunkEmbedding[];
  /** Tokens per input, including <s> and </s> (after truncation). */
  readonly tokens: number[];
  private remaining: number;
  private isSettled = false;
  /** Resolves with the request, rejects with its failure. */
  readonly done: Promise<void>;
  /** Resolves once the request settled either way. */
  readonly finished: Promise<void>;
  readonly nouns = { item: "query text", owner: "request" };
  private resolve!: () => void;
  private reject!: (e: Error) => void;

  constructor(private readonly o: QueryTrackerOptions) {
    this.results = new Array(o.texts);
    this.tokens = new Array(o.texts).fill(0);
    this.remaining = o.texts;
    this.done = new Promise<void>((res, rej) => ((this.resolve = res), (this.reject = rej)));
    this.finished = this.done.catch(() => undefined);
  }

  get settled(): boolean {
    return this.isSettled;
  }

  get logFields(): Record<string, string> {
    return { requestId: this.o.id };
  }

  /** Starts the deadline and the abort listener; both end when the request settles. Call once the
   *  request is on the pipeline's books: an already aborted signal fails it at once. */
  watch(): void {
    const { signal, timeoutMs } = this.o;
    const late = () => this.fail(new TimeoutError(`not answered within ${Math.round(timeoutMs)} ms`));
    const timer = setTimeout(late, timeoutMs);
    const onAbort = () => {
      const reason: unknown = signal?.reason;
      this.fail(reason instanceof Error ? reason : new ShutdownError("the client closed the request"));
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    void this.finished.then(() => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    });
  }

  embedded(it: BatchItem, emb: ChunkEmbedding): undefined {
    if (this.isSettled) return; // timed out or aborted while its batch ran
    this.results[it.index] = emb;
    this.o.metrics?.chunks.inc({ lane: QUERY_LANE_LABEL });
    this.o.metrics?.tokens.inc({ lane: QUERY_LANE_LABEL }, it.length);
    if (it.truncated) this.o.metrics?.truncated.inc();
    if (--this.remaining > 0) return;
    this.o.onSettled(this);
    this.isSettled = true;
    this.resolve();
  }

  fail(err: Error): void {
    if (this.isSettled) return;
    this.isSettled = true;
    this.o.onFailed(this);
    this.o.onSettled(this);
    this.reject(err);
  }
}
