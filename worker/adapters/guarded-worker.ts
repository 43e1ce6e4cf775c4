/** A BullMQ Worker that notices when it cannot fetch jobs. BullMQ 6 swallows a fetch that Redis
 *  refuses (CROSSSLOT, NOSCRIPT, NOPERM, OOM, READONLY, …), emits `error` and fetches again at once:
 *  a worker against such a Redis spun a core and logged ~2,800 lines a second while its readiness
 *  probe said 200 (issue 16). Here each failed fetch pauses the fetch loop with a doubling backoff
 *  (250 ms to 5 s, so recovery is seen within 5 s), each `error` is counted in
 *  `embed_queue_errors_total{reason}` and logged per `QueueErrorTracker`'s rate limit, and
 *  `notReady()` says why the worker cannot work, for `/health/ready`. A fetch that returns a job or
 *  finds the queue empty counts as success, so an idle queue stays ready. Acts on every fetch and
 *  every `error` event; the backoff is cut short when the worker closes. */
import { setTimeout as sleep } from "node:timers/promises";
import { Worker, type Job, type Processor, type WorkerOptions } from "bullmq";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import { QueueErrorTracker, type NotReady, type QueueErrorPolicy } from "../core/queue-error-tracker.js";

export class GuardedWorker extends Worker {
  private readonly tracker: QueueErrorTracker;
  private readonly closingSignal = new AbortController();
  private readonly log: Logger;

  constructor(
    name: string,
    processor: Processor,
    opts: WorkerOptions,
    deps: { log: Logger; metrics: Metrics; policy?: QueueErrorPolicy },
  ) {
    // Started below, once this subclass's fields exist (BullMQ's autorun starts in its constructor).
    super(name, processor, { ...opts, autorun: false });
    this.tracker = new QueueErrorTracker(deps.policy);
    this.log = deps.log;
    this.on("closing", () => this.closingSignal.abort());
    this.on("active", () => this.fetchSucceeded());
    this.on("error", (err) => this.recordError(err, deps.metrics));
    if (opts.autorun ?? true) this.run().catch((err) => this.emit("error", err));
  }

  /** Why this worker cannot take jobs now, or undefined while it can. */
  notReady(): NotReady | undefined {
    return this.tracker.notReady(Date.now());
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    let job: Job;
    try {
      job = await super.moveToActive(token, name);
    } catch (err) {
      const pause = this.tracker.fetchFailed();
      await sleep(pause, undefined, { signal: this.closingSignal.signal }).catch(() => undefined);
      throw err;
    }
    this.fetchSucceeded();
    return job;
  }

  private fetchSucceeded(): void {
    const ended = this.tracker.fetched(Date.now());
    if (ended) this.log.info(ended, "BullMQ fetches jobs again after errors");
  }

  private recordError(err: Error, metrics: Metrics): void {
    const message = String(err?.message ?? err);
    const d = this.tracker.error(message, Date.now());
    metrics.queueErrors.inc({ reason: d.reason });
    if (d.log === "first") this.log.error({ reason: d.reason, err: message }, "BullMQ worker error");
    else if (d.log === "summary")
      this.log.error(
        { reason: d.reason, repeats: d.repeats, windowMs: d.windowMs, err: message },
        "BullMQ worker error repeated",
      );
  }
}
