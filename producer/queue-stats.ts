/** Queue counts for `npm run stats` and for tests: how much work is waiting, running, done
 *  and failed, read straight from Redis through BullMQ. */
import type { Queue } from "bullmq";

export const JOB_STATES = [
  "waiting",
  "prioritized",
  "active",
  "delayed",
  "completed",
  "failed",
  "waiting-children",
] as const;

export async function queueStats(
  queue: Queue,
): Promise<Record<(typeof JOB_STATES)[number], number> & { backlog: number }> {
  const counts = (await queue.getJobCounts(...JOB_STATES)) as Record<(typeof JOB_STATES)[number], number>;
  return { ...counts, backlog: counts.waiting + counts.prioritized + counts.active + counts.delayed };
}
