/** Re-enqueues documents split off a packed job (shared/pack.ts) as their own single-document
 *  jobs, on the worker's queue and Redis connection. Each gets the pack's job options (attempts,
 *  backoff, retention, priority), so it has its own attempts, and the id the producer gives that
 *  document unpacked: BullMQ ignores an add whose id exists, so a pack retried, or a worker that
 *  died between this add and the pack's completion, adds nothing twice. Acts only when a pack has
 *  a document to split off; the BullMQ Queue is opened on first use. */
import { Queue, type JobsOptions } from "bullmq";
import type { Config } from "../../shared/config.js";
import { JOB_NAME } from "../../shared/job.js";
import type { RedisClient } from "../../shared/redis.js";

export interface SplitJob {
  id: string;
  data: Record<string, unknown>;
}

export class PackSplitter {
  private queue?: Queue;

  constructor(
    private readonly cfg: Pick<Config, "QUEUE_NAME" | "QUEUE_PREFIX">,
    private readonly connection: RedisClient,
  ) {}

  /** Adds `jobs` with the options of the pack they come from; resolves once Redis has them. */
  async add(jobs: SplitJob[], packOpts: JobsOptions): Promise<void> {
    if (jobs.length === 0) return;
    this.queue ??= new Queue(this.cfg.QUEUE_NAME, { connection: this.connection, prefix: this.cfg.QUEUE_PREFIX });
    const { attempts, backoff, removeOnComplete, removeOnFail, priority } = packOpts;
    const opts: JobsOptions = { attempts, backoff, removeOnComplete, removeOnFail };
    if (priority) opts.priority = priority;
    await this.queue.addBulk(jobs.map((j) => ({ name: JOB_NAME, data: j.data, opts: { ...opts, jobId: j.id } })));
  }

  async close(): Promise<void> {
    await this.queue?.close();
  }
}
