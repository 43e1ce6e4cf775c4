/** Groups the stale-point removals of documents that complete close together into one sink
 *  request (issue 15: one delete per document doubled Qdrant's write requests on corpora of short
 *  documents). Trades at most `lingerMs` of a job's completion for fewer requests: a removal waits
 *  that long for others (0: until the current turn of the event loop ends, which is enough to
 *  gather every job one upsert request completed), and while `maxInFlight` requests run, new
 *  removals queue up and leave together in the next one. A request carries at most `maxDocs`
 *  documents. Each removal's promise settles only when the request carrying it settles, so a job
 *  completes only after its own removal is applied, and a failure reaches only the jobs whose
 *  removals that request carried. Retries like the upsert grouper (`retrySink`); a request whose
 *  final answer may concern its content (HTTP 4xx, 500) is split in halves, each sent once, until
 *  the failing selector is alone; outages fail the whole request without splitting. With
 *  `maxDocs` 1, or a sink without `deleteStaleMany`, each removal is its own `deleteStale` call,
 *  sent at once: the behaviour before grouping. Performs no I/O itself. The default window
 *  (STALE_DELETE_LINGER_MS=10) comes from `npm run bench:stale`: on one-chunk documents it sent about
 *  a third fewer deletes than 0 with no throughput lost that the (noisy) runs could show. */
import { SinkError } from "../errors.js";
import type { StaleSelector, VectorSink } from "./ports.js";
import { retrySink } from "./upsert-grouper.js";

export interface StaleRemoverOptions {
  /** Most documents in one delete request; 1 = one request per document, sent at once. */
  maxDocs: number;
  /** Longest a removal waits for others before its request leaves, milliseconds. */
  lingerMs: number;
  retries: number;
  retryBaseMs: number;
  /** Delete requests running at once (grouped mode). */
  maxInFlight?: number;
  /** Every request, after its retries: documents it carried, seconds, success. */
  onRequest?: (docs: number, seconds: number, ok: boolean) => void;
  /** Every failed attempt, retried or not. */
  onError?: (err: Error, attempt: number, docs: number) => void;
}

interface Removal {
  sel: StaleSelector;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class StaleRemover {
  private pending: Removal[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The oldest pending removal has waited `lingerMs`: send without waiting for a full request. */
  private due = false;
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly sink: VectorSink,
    private readonly opts: StaleRemoverOptions,
  ) {}

  /** Whether this sink removes anything at all. */
  get active(): boolean {
    return this.sink.deleteStale !== undefined || this.sink.deleteStaleMany !== undefined;
  }

  private get grouping(): boolean {
    return this.opts.maxDocs > 1 && this.sink.deleteStaleMany !== undefined;
  }

  /** Resolves once the points `sel` selects are deleted; rejects with a SinkError after the retries. */
  remove(sel: StaleSelector): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const r: Removal = { sel, resolve, reject };
      if (!this.grouping) {
        void this.dispatch([r]);
        return;
      }
      this.pending.push(r);
      if (this.pending.length === 1) this.startLinger();
      this.schedulePump();
    });
  }

  private startLinger(): void {
    if (this.opts.lingerMs <= 0) {
      this.due = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due = true;
      this.pump();
    }, this.opts.lingerMs);
  }

  /** Pumps once the current turn ends, so removals the same turn completed leave together. */
  private schedulePump(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const maxInFlight = this.opts.maxInFlight ?? 2;
    while (
      this.inFlight < maxInFlight &&
      this.pending.length > 0 &&
      (this.due || this.pending.length >= this.opts.maxDocs)
    ) {
      const group = this.pending.splice(0, this.opts.maxDocs);
      if (this.pending.length === 0) {
        this.due = false;
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.inFlight++;
      void this.dispatch(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    // What is left waited for a full request or a free slot; its linger starts now if none runs.
    if (this.pending.length > 0 && !this.due) this.startLinger();
  }

  private call(sels: StaleSelector[]): Promise<void> {
    return this.grouping ? this.sink.deleteStaleMany!(sels) : this.sink.deleteStale!(sels[0]);
  }

  /** Sends `group`; an exception past `send`'s own handling (a throwing callback) fails its removals, never the process. */
  private dispatch(group: Removal[]): Promise<void> {
    return this.send(group).catch((err) => {
      const why = (err as Error)?.message ?? String(err);
      const e = new SinkError(
        `deleting stale points of ${group.length} documents failed unexpectedly: ${why}`,
        undefined,
        {
          cause: err,
        },
      );
      for (const r of group) r.reject(e);
    });
  }

  /** One request (with retries) for `group`; settles every removal it carried. */
  private async send(group: Removal[], retries = this.opts.retries): Promise<void> {
    const sels = group.map((r) => r.sel);
    const started = performance.now();
    try {
      await retrySink(() => this.call(sels), {
        retries,
        baseMs: this.opts.retryBaseMs,
        onError: (err, attempt) => this.opts.onError?.(err, attempt, group.length),
      });
      this.opts.onRequest?.(group.length, (performance.now() - started) / 1000, true);
      for (const r of group) r.resolve();
    } catch (err) {
      this.opts.onRequest?.(group.length, (performance.now() - started) / 1000, false);
      const e = asSinkError(err, sels);
      if (group.length > 1 && e.contentSuspect) {
        // The request already had its retries: each half gets one attempt, then splits again.
        const half = Math.ceil(group.length / 2);
        await this.send(group.slice(0, half), 0);
        await this.send(group.slice(half), 0);
        return;
      }
      for (const r of group) r.reject(group.length === 1 ? e : forDocument(e, r.sel.docId));
    }
  }
}

function asSinkError(err: unknown, sels: StaleSelector[]): SinkError {
  if (err instanceof SinkError) return err;
  const what = sels.length === 1 ? `document "${sels[0].docId}"` : `${sels.length} documents`;
  return new SinkError(
    `deleting stale points of ${what} failed: ${(err as Error)?.message ?? String(err)}`,
    undefined,
    {
      cause: err,
    },
  );
}

/** The request's error, naming the job's own document (the request's message counts documents). */
function forDocument(e: SinkError, docId: string): SinkError {
  return new SinkError(`document "${docId}": ${e.message}`, e.status, { cause: e });
}
