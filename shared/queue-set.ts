/** The producer side of a sharded queue (issue 16): one BullMQ `Queue` per shard over one Redis
 *  connection, with what the producer commands need from "the queue": `addBulk` places each job
 *  on its document's shard (`shardFor`, queue-shards.ts), counts are read per shard and summed, and
 *  `shards` exposes each shard's queue for walks (requeue-failed) and events (backfill). With
 *  QUEUE_SHARDS=1 it is exactly the one queue under QUEUE_PREFIX. Opens nothing but the `Queue`
 *  objects; the caller owns the connection. */
import { Queue, type JobsOptions, type JobType } from "bullmq";
import type { RedisClient } from "./redis.js";
import { groupByShard, queueShards, type Placeable, type QueueShard, type ShardSettings } from "./queue-shards.js";

/** What a job must carry to be placed: its document id, or a pack's documents (all parts and
 *  versions of a document share a shard). */
export interface PlacedJob {
  name: string;
  data: Placeable;
  opts?: JobsOptions;
}

/** The part of a queue the enqueue path uses; a `Queue` and a `QueueSet` both are one. */
export interface JobQueue {
  addBulk(jobs: PlacedJob[]): Promise<unknown>;
  /** Shards jobs are placed over (absent = one queue); the producer packs documents per shard. */
  readonly shardCount?: number;
}

export type ShardQueue = QueueShard & { queue: Queue };

export class QueueSet implements JobQueue {
  readonly shards: ShardQueue[];

  constructor(
    readonly cfg: ShardSettings & { QUEUE_NAME: string },
    connection: RedisClient,
  ) {
    this.shards = queueShards(cfg).map((s) => ({
      ...s,
      queue: new Queue(cfg.QUEUE_NAME, { connection, prefix: s.prefix }),
    }));
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** Adds each job to its document's shard: one `addBulk` per shard, in parallel. */
  async addBulk(jobs: PlacedJob[]): Promise<void> {
    const groups = groupByShard(jobs, this.shards.length);
    await Promise.all([...groups].map(([id, list]) => this.shards[id].queue.addBulk(list)));
  }

  /** Job counts of every shard, in shard order. */
  async countsByShard<S extends JobType>(...states: S[]): Promise<Array<Record<S, number>>> {
    return Promise.all(this.shards.map((s) => s.queue.getJobCounts(...states) as Promise<Record<S, number>>));
  }

  /** Job counts summed over the shards. */
  async getJobCounts<S extends JobType>(...states: S[]): Promise<Record<S, number>> {
    return sumCounts(await this.countsByShard(...states), states);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.queue.close()));
  }
}

export function sumCounts<S extends string>(rows: Array<Record<S, number>>, states: readonly S[]): Record<S, number> {
  const sum = Object.fromEntries(states.map((s) => [s, 0])) as Record<S, number>;
  for (const r of rows) for (const s of states) sum[s] += r[s] ?? 0;
  return sum;
}
