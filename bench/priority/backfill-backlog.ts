/** The saturating backfill of the priority-lane bench: the corpus's window jobs, added to the
 *  queue pass after pass (each pass under new document ids, so every pass is new work, not a
 *  duplicate BullMQ ignores), and topped up every `intervalMs` so at least `minWaiting` jobs
 *  always wait beyond the ones the worker holds. Trades a little producer work in the bench
 *  process during the measurement for a backlog that provably never runs dry: every sample
 *  of the waiting count is kept, and the smallest one is reported. */
import type { Queue } from "bullmq";
import type { BenchJob } from "../lib/corpus.js";

export interface BacklogSample {
  /** Date.now() of the sample. */
  at: number;
  waiting: number;
  active: number;
}

export class Backlog {
  private passes = 0;
  private next = 0;
  private added = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> = Promise.resolve();
  readonly samples: BacklogSample[] = [];

  constructor(
    private readonly queue: Queue,
    private readonly pass: readonly BenchJob[],
    private readonly minWaiting: number,
  ) {
    if (pass.length === 0) throw new Error("the backfill has no jobs: the corpus gave no windows");
  }

  /** Jobs added so far, and how many times the corpus was gone through (started passes). */
  get totals(): { jobs: number; passes: number } {
    return { jobs: this.added, passes: this.passes };
  }

  private take(n: number): BenchJob[] {
    const out: BenchJob[] = [];
    while (out.length < n) {
      if (this.next === 0) this.passes++;
      const j = this.pass[this.next];
      this.next = (this.next + 1) % this.pass.length;
      const tag = `pass${this.passes}`;
      out.push({
        ...j,
        data: { ...j.data, docId: `${tag}:${j.data.docId}`, enqueuedAt: Date.now() },
        opts: { ...j.opts, jobId: `${tag}-${j.opts.jobId}` },
      });
    }
    return out;
  }

  /** Samples the queue and adds jobs until `minWaiting` wait (plus `extra`). */
  async topUp(extra = 0): Promise<BacklogSample> {
    const c = await this.queue.getJobCounts("waiting", "active");
    const sample = { at: Date.now(), waiting: c.waiting, active: c.active };
    this.samples.push(sample);
    const want = this.minWaiting + extra - c.waiting;
    for (let i = 0; i < want; i += 500) {
      const jobs = this.take(Math.min(500, want - i));
      await this.queue.addBulk(jobs);
      this.added += jobs.length;
    }
    return sample;
  }

  /** Keeps topping up every `intervalMs` until `stop`. */
  start(intervalMs: number): void {
    const tick = () => {
      this.busy = this.topUp().then(() => {
        if (this.timer) this.timer = setTimeout(tick, intervalMs);
      });
    };
    this.timer = setTimeout(tick, intervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.busy;
  }

  /** Samples taken between `from` and `to` (Date.now() values). */
  between(from: number, to: number): BacklogSample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to);
  }
}
