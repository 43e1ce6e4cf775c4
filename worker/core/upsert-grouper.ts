/** Groups points from many batches (and so many jobs) into upsert requests sized by bytes.
 *  Trades a little latency (`lingerMs`) for fewer, larger requests. Each point carries a
 *  callback, called only after the request holding it succeeded (or finally failed), so a
 *  job completes only when every one of its points is stored. Retries transient sink
 *  failures with exponential backoff; at most `maxInFlight` requests run at once. A request
 *  whose final answer may concern its content (HTTP 4xx, 500) is split in halves, each sent
 *  once, until the failing points are alone, so one bad point fails only its own job;
 *  outages (refused connections, timeouts, 503) fail the whole group without splitting. An
 *  unexpected exception while writing a group fails that group's points, never the process. */
import pRetry, { AbortError } from "p-retry";
import { isRetryable, SinkError } from "../errors.js";
import { estimatePointBytes, type VectorPoint, type VectorSink } from "./ports.js";

/** Calls the sink, retrying retryable failures `retries` times with exponential backoff from
 *  `baseMs` (jittered); `onError` sees every failed attempt. Non-retryable errors end at once. */
export async function retrySink<T>(
  call: () => Promise<T>,
  o: { retries: number; baseMs: number; onError?: (err: Error, attempt: number) => void },
): Promise<T> {
  let attempt = 0;
  return pRetry(
    async () => {
      attempt++;
      try {
        return await call();
      } catch (err) {
        o.onError?.(err as Error, attempt);
        if (!isRetryable(err)) throw new AbortError(err as Error);
        throw err;
      }
    },
    { retries: o.retries, minTimeout: o.baseMs, factor: 2, randomize: true },
  );
}

export interface GroupedPoint {
  point: VectorPoint;
  done: (err?: Error) => void;
}

export interface GrouperOptions {
  maxBytes: number;
  maxPoints: number;
  lingerMs: number;
  retries: number;
  retryBaseMs: number;
  maxInFlight?: number;
  onRequest?: (points: number, seconds: number, ok: boolean) => void;
  /** Every failed upsert attempt, retried or not. */
  onError?: (err: Error, attempt: number) => void;
}

export class UpsertGrouper {
  private pending: GroupedPoint[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private ready: GroupedPoint[][] = [];
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly sink: VectorSink,
    private readonly opts: GrouperOptions,
  ) {}

  add(entries: GroupedPoint[]): void {
    for (const e of entries) {
      const bytes = estimatePointBytes(e.point);
      if (
        this.pending.length > 0 &&
        (this.pendingBytes + bytes > this.opts.maxBytes || this.pending.length >= this.opts.maxPoints)
      ) {
        this.cut();
      }
      this.pending.push(e);
      this.pendingBytes += bytes;
    }
    if (this.pending.length > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.cut();
      }, this.opts.lingerMs);
    }
    this.pump();
  }

  /** Resolves when nothing is pending or in flight. */
  async idle(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.cut();
    }
    if (this.pending.length === 0 && this.ready.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private cut(): void {
    if (this.pending.length === 0) return;
    this.ready.push(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < (this.opts.maxInFlight ?? 2) && this.ready.length > 0) {
      const group = this.ready.shift()!;
      this.inFlight++;
      this.write(group)
        .catch((err) => this.failGroup(group, err))
        .finally(() => {
          this.inFlight--;
          this.pump();
          if (this.pending.length === 0 && this.ready.length === 0 && this.inFlight === 0) {
            for (const w of this.idleWaiters.splice(0)) w();
          }
        });
    }
  }

  /** Last resort for a write that threw past its own handling: each point's callback gets the error once. */
  private failGroup(group: GroupedPoint[], err: unknown): void {
    const why = (err as Error)?.message ?? String(err);
    const e = new SinkError(`writing ${group.length} points failed unexpectedly: ${why}`, undefined, { cause: err });
    for (const g of group) {
      try {
        g.done(e);
      } catch {
        // The callback's owner guards its own exceptions; nothing more can be done for this point here.
      }
    }
  }

  private async write(group: GroupedPoint[], retries = this.opts.retries): Promise<void> {
    const points = group.map((g) => g.point);
    const started = performance.now();
    try {
      await retrySink(() => this.sink.upsert(points), {
        retries,
        baseMs: this.opts.retryBaseMs,
        onError: this.opts.onError,
      });
      this.opts.onRequest?.(points.length, (performance.now() - started) / 1000, true);
      for (const g of group) g.done();
    } catch (err) {
      this.opts.onRequest?.(points.length, (performance.now() - started) / 1000, false);
      const e =
        err instanceof SinkError
          ? err
          : new SinkError(`upsert failed: ${(err as Error).message}`, undefined, { cause: err });
      if (group.length > 1 && e.contentSuspect) {
        // The group already had its retries: each half gets one attempt, then splits again.
        const half = Math.ceil(group.length / 2);
        await this.write(group.slice(0, half), 0);
        await this.write(group.slice(half), 0);
        return;
      }
      for (const g of group) g.done(e);
    }
  }
}
