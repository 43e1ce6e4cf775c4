/** Backpressure for a backfill: before each `addBulk` the producer reads the queue's backlog
 *  (waiting + prioritized + active + delayed jobs: one BullMQ `getJobCounts` call, O(1) in
 *  Redis) and, at or above a high-water mark in jobs or in chunks, pauses until both are at or
 *  below the low-water marks. The backlog therefore never exceeds a high-water mark by more
 *  than one bulk, and neither does Redis memory for queued job data.
 *
 *  Chunks are counted without reading job data: the producer remembers the chunk count of each
 *  job it added (`BacklogAccount`) and forgets it when QueueEvents reports the job completed,
 *  failed or a duplicate. While the queue holds fewer jobs than the account remembers, only the
 *  newest are counted (this run's jobs share one priority, and BullMQ serves equal priorities
 *  in insertion order), and missed events cannot inflate the count for long: such jobs are
 *  forgotten after a grace period. Backlog jobs the account
 *  does not know (live traffic, jobs from an earlier attempt) count at this run's mean chunks
 *  per job, or at `fallbackChunksPerJob` before it has one. Memory: one entry per job of this
 *  run in the backlog, so bounded by the high-water mark plus one bulk. On a sharded queue the
 *  backlog is summed over the shards (one `getJobCounts` per shard) and every shard's events feed
 *  the one account, so the marks bound the whole queue; job ids never repeat across shards. */
import type { JobType, QueueEvents } from "bullmq";

export interface WaterMarks {
  highJobs: number;
  lowJobs: number;
  highChunks: number;
  lowChunks: number;
}

export interface BacklogSample {
  jobs: number;
  chunks: number;
}

/** Pure bookkeeping of this run's jobs still in the backlog. */
export class BacklogAccount {
  private readonly outstanding = new Map<string, { chunks: number; at: number }>();
  private outstandingChunks = 0;
  private addedJobs = 0;
  private addedChunks = 0;
  /** Chunks of this run's jobs that left the backlog (completed, failed, or dropped by reconciliation). */
  drainedChunks = 0;

  /** `graceMs`: how long a job may be missing from the queue's count before its event is taken as lost. */
  constructor(
    private readonly fallbackChunksPerJob: number,
    private readonly graceMs = 10_000,
  ) {}

  get size(): number {
    return this.outstanding.size;
  }

  track(id: string, chunks: number, now = performance.now()): void {
    if (this.outstanding.has(id)) return;
    this.outstanding.set(id, { chunks, at: now });
    this.outstandingChunks += chunks;
    this.addedJobs++;
    this.addedChunks += chunks;
  }

  /** The job left the backlog; returns its chunk count if it was this run's. */
  finished(id: string, drained = true): number | undefined {
    const e = this.outstanding.get(id);
    if (e === undefined) return undefined;
    this.outstanding.delete(id);
    this.outstandingChunks -= e.chunks;
    if (drained) this.drainedChunks += e.chunks;
    return e.chunks;
  }

  /** Reconciles with the queue's backlog job count and returns the backlog in jobs and chunks. While
   *  the queue holds fewer jobs than remembered, only the newest are counted (events lag the count),
   *  and the oldest are forgotten once older than the grace period (their events were lost). */
  observe(backlogJobs: number, now = performance.now()): BacklogSample {
    for (const [id, e] of this.outstanding) {
      if (this.outstanding.size <= backlogJobs || now - e.at < this.graceMs) break;
      this.finished(id);
    }
    if (this.outstanding.size > backlogJobs) {
      let chunks = 0;
      let skip = this.outstanding.size - backlogJobs;
      for (const e of this.outstanding.values()) if (skip-- <= 0) chunks += e.chunks;
      return { jobs: backlogJobs, chunks };
    }
    const mean = this.addedJobs > 0 ? this.addedChunks / this.addedJobs : this.fallbackChunksPerJob;
    const unknown = backlogJobs - this.outstanding.size;
    return { jobs: backlogJobs, chunks: this.outstandingChunks + Math.ceil(unknown * mean) };
  }
}

export interface GateStats {
  /** Highest backlog seen before a bulk plus that bulk: an upper bound of the real peak. */
  peakJobs: number;
  peakChunks: number;
  pauses: number;
  pausedSeconds: number;
  completedJobs: number;
  failedJobs: number;
  /** Jobs BullMQ did not add because a job with the same id was still in Redis (same content, already queued or kept completed). */
  duplicateJobs: number;
  /** Chunks this run's completed jobs did not re-embed (job return value `unchanged`). */
  unchangedChunks: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

export class BacklogGate {
  readonly account: BacklogAccount;
  readonly stats: GateStats = {
    peakJobs: 0,
    peakChunks: 0,
    pauses: 0,
    pausedSeconds: 0,
    completedJobs: 0,
    failedJobs: 0,
    duplicateJobs: 0,
    unchangedChunks: 0,
  };
  paused = false;
  last: BacklogSample = { jobs: 0, chunks: 0 };
  private refreshing = false;

  constructor(
    private readonly queue: { getJobCounts(...states: JobType[]): Promise<Record<string, number>> },
    events: QueueEvents | QueueEvents[] | undefined,
    private readonly marks: WaterMarks,
    private readonly opts: { pollMs: number; fallbackChunksPerJob: number },
  ) {
    this.account = new BacklogAccount(opts.fallbackChunksPerJob);
    for (const e of events === undefined ? [] : Array.isArray(events) ? events : [events]) this.listen(e);
  }

  private listen(events: QueueEvents): void {
    events.on("completed", ({ jobId, returnvalue }) => {
      if (this.account.finished(jobId) === undefined) return;
      this.stats.completedJobs++;
      const unchanged = (returnvalue as { unchanged?: unknown } | null)?.unchanged;
      if (typeof unchanged === "number") this.stats.unchangedChunks += unchanged;
    });
    events.on("failed", ({ jobId }) => {
      if (this.account.finished(jobId) !== undefined) this.stats.failedJobs++;
    });
    events.on("duplicated", ({ jobId }) => {
      if (this.account.finished(jobId, false) !== undefined) this.stats.duplicateJobs++;
    });
  }

  /** Reads the backlog from Redis. */
  async sample(): Promise<BacklogSample> {
    const c = await this.queue.getJobCounts("waiting", "prioritized", "active", "delayed");
    this.last = this.account.observe(c.waiting + c.prioritized + c.active + c.delayed);
    return this.last;
  }

  /** Refreshes `last` between bulks, for progress (one read at a time; a failed read waits for the next). */
  refresh(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    void this.sample()
      .catch(() => undefined)
      .finally(() => (this.refreshing = false));
  }

  /** Resolves when a bulk may be added (or `signal` aborts): at once below the high-water marks, else once at or under the low ones. */
  async waitForRoom(signal?: AbortSignal): Promise<void> {
    let s = await this.sample();
    if (s.jobs < this.marks.highJobs && s.chunks < this.marks.highChunks) return;
    this.paused = true;
    this.stats.pauses++;
    const started = performance.now();
    try {
      while (!signal?.aborted && (s.jobs > this.marks.lowJobs || s.chunks > this.marks.lowChunks)) {
        await sleep(this.opts.pollMs, signal);
        s = await this.sample();
      }
    } finally {
      this.paused = false;
      this.stats.pausedSeconds += (performance.now() - started) / 1000;
    }
  }

  /** Records a bulk about to be added (before `addBulk`, so a completion event cannot beat it). */
  track(jobs: Array<{ id: string; chunks: number }>): void {
    let chunks = 0;
    for (const j of jobs) {
      this.account.track(j.id, j.chunks);
      chunks += j.chunks;
    }
    this.stats.peakJobs = Math.max(this.stats.peakJobs, this.last.jobs + jobs.length);
    this.stats.peakChunks = Math.max(this.stats.peakChunks, this.last.chunks + chunks);
  }

  /** Resolves when none of this run's jobs is left in the backlog (or `signal` aborts). */
  async drained(signal?: AbortSignal, onPoll?: () => void): Promise<void> {
    await this.sample();
    while (!signal?.aborted && this.account.size > 0) {
      await sleep(this.opts.pollMs, signal);
      await this.sample();
      onPoll?.();
    }
  }
}
