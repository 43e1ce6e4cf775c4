/** `requeue-failed`: lists the queue's failed jobs and moves the chosen ones back to waiting
 *  once their cause is fixed. A failed reason starts with the error kind (`sink: …`,
 *  `validation: …`), so `reason` selects by kind and `match` by a regular expression over the
 *  whole reason. Re-enqueueing uses BullMQ's `job.retry("failed")`, which keeps the job id,
 *  data and options; by default it also resets the attempt counters so the job gets its full
 *  JOB_ATTEMPTS again with backoff (BullMQ's own default keeps them, which leaves a job that
 *  used up its attempts exactly one more try). A packed job (shared/pack.ts) that failed as a
 *  whole is listed with its first document and how many it holds, and retried as a whole; its
 *  documents that failed on their own were split off as their own jobs and are listed by themselves.
 *  A sharded queue (QUEUE_SHARDS > 1) is walked shard
 *  by shard, `limit` counting across all of them, and each row names its shard. */
import type { Job, Queue } from "bullmq";
import { jobDocIds } from "../shared/pack.js";

export interface RequeueOptions {
  /** Error kinds to select (the part of the reason before the first colon); empty = any. */
  reasons?: string[];
  /** Regular expression the failed reason must match. */
  match?: RegExp;
  /** Most jobs to requeue (or list); undefined = all that match. */
  limit?: number;
  /** List only; move nothing. */
  dryRun?: boolean;
  /** Keep attemptsMade (one more try, no backoff) instead of resetting it. */
  keepAttempts?: boolean;
  /** Failed jobs read from Redis per call. */
  pageSize?: number;
}

export interface FailedJobRow {
  id: string;
  /** The job's shard; only on a sharded queue. */
  shard?: number;
  docId: string | null;
  attempts: number;
  reasonKind: string;
  failedReason: string;
  finishedOn: string | null;
}

export interface RequeueSummary {
  /** Failed jobs looked at. */
  scanned: number;
  /** Jobs that passed the filters (at most `limit`). */
  matched: number;
  requeued: number;
  dryRun: boolean;
  jobs: Array<FailedJobRow & { requeued: boolean; error?: string }>;
}

/** `sink: upsert failed` -> `sink`; a reason without a kind prefix -> `unknown`. */
export function reasonKind(reason: string | undefined): string {
  const m = /^([a-z_]+):/.exec(reason ?? "");
  return m ? m[1] : "unknown";
}

export function describeFailedJob(job: Job): FailedJobRow {
  const ids = jobDocIds(job.data);
  const docId = ids.length === 0 ? null : ids.length === 1 ? ids[0] : `${ids[0]} (+${ids.length - 1} packed)`;
  return {
    id: job.id ?? "",
    docId,
    attempts: job.attemptsMade,
    reasonKind: reasonKind(job.failedReason),
    failedReason: job.failedReason ?? "",
    finishedOn: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

function selected(row: FailedJobRow, o: RequeueOptions): boolean {
  if (o.reasons && o.reasons.length > 0 && !o.reasons.includes(row.reasonKind)) return false;
  return !o.match || o.match.test(row.failedReason);
}

/** Matching failed jobs, oldest failure first; collected before any is moved, so moving
 *  jobs out of the failed set cannot shift the pages being read. */
export async function findFailed(queue: Queue, o: RequeueOptions): Promise<{ scanned: number; jobs: Job[] }> {
  const pageSize = o.pageSize ?? 500;
  const total = await queue.getFailedCount();
  const out: Job[] = [];
  let scanned = 0;
  for (let start = 0; start < total && (o.limit === undefined || out.length < o.limit); start += pageSize) {
    const page = await queue.getJobs("failed", start, start + pageSize - 1, true);
    if (page.length === 0) break;
    for (const job of page) {
      if (!job) continue;
      scanned++;
      if (selected(describeFailedJob(job), o)) out.push(job);
      if (o.limit !== undefined && out.length >= o.limit) break;
    }
  }
  return { scanned, jobs: out };
}

/** Requeues the matching failed jobs of `queue`, or of every shard's queue in shard order. */
export async function requeueFailed(queue: Queue | Queue[], o: RequeueOptions): Promise<RequeueSummary> {
  const queues = Array.isArray(queue) ? queue : [queue];
  let scanned = 0;
  const jobs: Array<{ job: Job; shard?: number }> = [];
  for (const [shard, q] of queues.entries()) {
    const left = o.limit === undefined ? undefined : o.limit - jobs.length;
    if (left !== undefined && left <= 0) break;
    const found = await findFailed(q, { ...o, limit: left });
    scanned += found.scanned;
    for (const job of found.jobs) jobs.push({ job, ...(queues.length > 1 ? { shard } : {}) });
  }
  const summary: RequeueSummary = { scanned, matched: jobs.length, requeued: 0, dryRun: Boolean(o.dryRun), jobs: [] };
  for (const { job, shard } of jobs) {
    const row = { ...(shard === undefined ? {} : { shard }), ...describeFailedJob(job) };
    if (o.dryRun) {
      summary.jobs.push({ ...row, requeued: false });
      continue;
    }
    try {
      await job.retry("failed", { resetAttemptsMade: !o.keepAttempts, resetAttemptsStarted: !o.keepAttempts });
      summary.requeued++;
      summary.jobs.push({ ...row, requeued: true });
    } catch (err) {
      // Typically: another process requeued or removed it since it was listed.
      summary.jobs.push({ ...row, requeued: false, error: (err as Error).message });
    }
  }
  return summary;
}

export function formatRequeueSummary(s: RequeueSummary): string {
  const lines = s.jobs.map(
    (j) =>
      `${j.shard === undefined ? "" : `shard=${j.shard}  `}${j.id}  doc=${j.docId ?? "-"}  attempts=${j.attempts}  failed=${j.finishedOn ?? "-"}  ${j.failedReason.split("\n")[0].slice(0, 200)}` +
      (j.requeued ? "  -> requeued" : j.error ? `  -> not requeued: ${j.error}` : ""),
  );
  const verb = s.dryRun ? "would requeue" : "requeued";
  lines.push(
    `${verb} ${s.dryRun ? s.matched : s.requeued} of ${s.matched} matching failed jobs (${s.scanned} scanned)`,
  );
  return lines.join("\n") + "\n";
}
