/** The producer's two queue commands as library calls: `stats` prints the queue's job counts
 *  (queue-stats.ts) and `requeue-failed` lists failed jobs and moves the chosen ones back to
 *  waiting (requeue-failed.ts); on a sharded queue both cover every shard, and `stats` prints
 *  each shard beside the sum. Each opens one Redis connection for the call and closes it
 *  before returning, whatever happens. */
import type { Config } from "../shared/config.js";
import { QueueSet } from "../shared/queue-set.js";
import { redisConnection } from "../shared/redis.js";
import { queueStats, shardedQueueStats } from "./queue-stats.js";
import { formatRequeueSummary, requeueFailed, type RequeueOptions } from "./requeue-failed.js";

async function withQueue<T>(cfg: Config, use: (queue: QueueSet) => Promise<T>): Promise<T> {
  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const queue = new QueueSet(cfg, connection);
  try {
    return await use(queue);
  } finally {
    await queue.close();
    await connection.quit();
  }
}

/** Prints the job counts of QUEUE_NAME as JSON on stdout; sharded: the sum, then `shards` and `byShard`. */
export async function printQueueStats(cfg: Config): Promise<void> {
  await withQueue(cfg, async (queue) => {
    const counts =
      cfg.QUEUE_SHARDS === 1
        ? await queueStats(queue)
        : { shards: cfg.QUEUE_SHARDS, ...(await shardedQueueStats(queue)) };
    process.stdout.write(JSON.stringify({ queue: cfg.QUEUE_NAME, ...counts }, null, 2) + "\n");
  });
}

/** Requeues the matching failed jobs and prints the result; the exit code is 1 when a job could not be moved. */
export async function requeueFailedCommand(cfg: Config, o: RequeueOptions, json: boolean): Promise<number> {
  return withQueue(cfg, async (queue) => {
    const s = await requeueFailed(
      queue.shards.map((sh) => sh.queue),
      o,
    );
    process.stdout.write(
      json ? JSON.stringify({ queue: cfg.QUEUE_NAME, ...s }, null, 2) + "\n" : formatRequeueSummary(s),
    );
    return s.jobs.some((j) => j.error) ? 1 : 0;
  });
}
