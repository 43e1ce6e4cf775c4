/** Queue counts for `npm run stats` and for tests: how much work is waiting, running, done
 *  and failed, read straight from Redis through BullMQ; for a sharded queue per shard and summed. */
import type { QueueSet } from "../shared/queue-set.js";

export const JOB_STATES = [
  "waiting",
  "prioritized",
  "active",
  "delayed",
  "completed",
  "failed",
  "waiting-children",
] as const;

export type QueueCounts = Record<(typeof JOB_STATES)[number], number> & { backlog: number };

/** Anything with BullMQ's `getJobCounts`: a `Queue`, or a `QueueSet` (summed over its shards). */
export interface CountSource {
  getJobCounts(...states: Array<(typeof JOB_STATES)[number]>): Promise<Record<string, number>>;
}

const withBacklog = (counts: Record<string, number>): QueueCounts => {
  const c = counts as Record<(typeof JOB_STATES)[number], number>;
  return { ...c, backlog: c.waiting + c.prioritized + c.active + c.delayed };
};

export async function queueStats(queue: CountSource): Promise<QueueCounts> {
  return withBacklog(await queue.getJobCounts(...JOB_STATES));
}

/** The counts summed over the shards, and each shard's own with its prefix and cluster slot. */
export async function shardedQueueStats(
  set: QueueSet,
): Promise<QueueCounts & { byShard: Array<{ shard: number; prefix: string; slot: number } & QueueCounts> }> {
  const rows = (await set.countsByShard(...JOB_STATES)).map(withBacklog);
  const sum = withBacklog(Object.fromEntries(JOB_STATES.map((s) => [s, rows.reduce((n, r) => n + r[s], 0)])));
  return {
    ...sum,
    byShard: rows.map((r, i) => ({ shard: i, prefix: set.shards[i].prefix, slot: set.shards[i].slot, ...r })),
  };
}
