/** The worker's consumers of a sharded queue (issue 16): one BullMQ Worker (`GuardedWorker`) per
 *  shard this worker serves (QUEUE_SHARD_IDS), all feeding the one pipeline, so the batcher still
 *  packs batches from every shard's jobs. WORKER_CONCURRENCY is the worker's whole in-flight
 *  window, split evenly over its shards (`concurrencyShares`): each shard holds about 1/N of the
 *  backlog (documents are placed by a hash of their id), so every share stays full while the queue
 *  has a backlog, and memory and lock renewals stay those of one window; when a shard runs dry
 *  before the others the window shrinks by its share until the queue drains. Each consumer keeps
 *  BullMQ's lock and stalled-check settings (LOCK_DURATION_MS, STALLED_INTERVAL_MS) for its own
 *  jobs, and its own error tracking: the worker is not ready while any of its shards cannot fetch,
 *  and the reason names the shard. With one shard this is the single consumer of earlier releases. */
import type { WorkerListener } from "bullmq";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { concurrencyShares, servedShards, type QueueShard } from "../../shared/queue-shards.js";
import type { RedisClient } from "../../shared/redis.js";
import type { NotReady } from "../core/queue-error-tracker.js";
import type { EmbeddingPipeline } from "../core/pipeline.js";
import type { Metrics } from "../metrics.js";
import type { GuardedWorker } from "./guarded-worker.js";
import { createQueueConsumer } from "./queue-consumer.js";

export type ConsumerSetConfig = Parameters<typeof createQueueConsumer>[0] &
  Pick<Config, "QUEUE_SHARDS" | "QUEUE_SHARD_IDS">;

export class ShardConsumers {
  constructor(readonly consumers: ReadonlyArray<{ shard: QueueShard; worker: GuardedWorker }>) {}

  /** Listens on every shard's worker (job events carry the job; tests count completions here). */
  on<U extends keyof WorkerListener>(event: U, listener: WorkerListener[U]): this {
    for (const c of this.consumers) c.worker.on(event, listener);
    return this;
  }

  /** Why some shard cannot take jobs now (the first such shard), or undefined while all can. */
  notReady(): (NotReady & { shard?: number }) | undefined {
    for (const c of this.consumers) {
      const n = c.worker.notReady();
      if (n) return this.consumers.length > 1 ? { ...n, shard: c.shard.id } : n;
    }
    return undefined;
  }

  /** Stops every shard's fetching and waits for its in-flight jobs (BullMQ's `close`). */
  async close(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.worker.close()));
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.worker.disconnect()));
  }
}

export function createShardConsumers(
  cfg: ConsumerSetConfig,
  pipeline: EmbeddingPipeline,
  deps: { connection: RedisClient; log: Logger; metrics: Metrics; autorun?: boolean },
): ShardConsumers {
  const shards = servedShards(cfg);
  const shares = concurrencyShares(cfg.WORKER_CONCURRENCY, shards.length);
  return new ShardConsumers(
    shards.map((shard, k) => ({
      shard,
      worker: createQueueConsumer({ ...cfg, QUEUE_PREFIX: shard.prefix, WORKER_CONCURRENCY: shares[k] }, pipeline, {
        ...deps,
        log: cfg.QUEUE_SHARDS > 1 ? deps.log.child({ shard: shard.id }) : deps.log,
      }),
    })),
  );
}
