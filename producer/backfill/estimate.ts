/** Sizing a backfill from a dry run: what Redis would hold at most, and how long embedding
 *  would take at a given worker throughput. Only measured inputs (job data serialized during
 *  the dry run, tokens counted with the model's tokenizer) and the stated constants below. */

/** Redis bytes per job byte and per job, measured with `MEMORY USAGE` on Redis 7.0 (jemalloc)
 *  for BullMQ jobs of 8 and 64 chunks (ratio 1.47-1.49, about 700 B of options and timestamps
 *  per job, about 120 B per sorted-set entry). Jobs of one tiny chunk measured 3.1x: the fixed
 *  part dominates there, which the per-job term covers. */
export const REDIS_BYTES_PER_DATA_BYTE = 1.5;
export const REDIS_BYTES_PER_JOB = 850;

export interface EstimateInput {
  jobs: number;
  chunks: number;
  tokens: number;
  /** Sum of `JSON.stringify(job.data)` lengths in bytes. */
  jobDataBytes: number;
  highWaterJobs: number;
  highWaterChunks: number;
  bulkSize: number;
  /** Completed jobs BullMQ keeps (REMOVE_ON_COMPLETE): their data stays in Redis too. */
  keptCompleted: number;
  /** Measured embedding throughput of the workers, tokens per second (e.g. from bench:probe). */
  tokensPerSecond?: number;
}

export interface BackfillEstimate {
  meanJobDataBytes: number;
  meanChunksPerJob: number;
  /** Jobs in Redis at most: the backlog bound (high-water mark plus one bulk) plus kept completed jobs. */
  peakJobsInRedis: number;
  peakRedisBytes: number;
  /** Redis bytes if the whole corpus were enqueued at once, without backpressure. */
  unboundedRedisBytes: number;
  embedSeconds: number | null;
  assumptions: string[];
}

const redisBytes = (jobs: number, meanData: number) =>
  Math.round(jobs * (meanData * REDIS_BYTES_PER_DATA_BYTE + REDIS_BYTES_PER_JOB));

export function estimateBackfill(e: EstimateInput): BackfillEstimate {
  const meanData = e.jobs > 0 ? e.jobDataBytes / e.jobs : 0;
  const meanChunks = e.jobs > 0 ? e.chunks / e.jobs : 0;
  const byChunks = meanChunks > 0 ? Math.ceil(e.highWaterChunks / meanChunks) : e.highWaterJobs;
  const backlogBound = Math.min(e.highWaterJobs, byChunks) + e.bulkSize;
  const peakJobs = Math.min(e.jobs, backlogBound + e.keptCompleted);
  const assumptions = [
    `Redis holds ${REDIS_BYTES_PER_DATA_BYTE}x each job's JSON data plus ${REDIS_BYTES_PER_JOB} B per job (measured on Redis 7.0 with BullMQ jobs of 8-64 chunks)`,
    `at most the high-water mark plus one bulk of jobs wait, plus ${e.keptCompleted} completed jobs kept (REMOVE_ON_COMPLETE)`,
  ];
  if (e.tokensPerSecond)
    assumptions.push(`workers embed ${e.tokensPerSecond} tokens/s in total (given with --tokens-per-second)`);
  return {
    meanJobDataBytes: Math.round(meanData),
    meanChunksPerJob: Math.round(meanChunks * 10) / 10,
    peakJobsInRedis: peakJobs,
    peakRedisBytes: redisBytes(peakJobs, meanData),
    unboundedRedisBytes: redisBytes(e.jobs, meanData),
    embedSeconds: e.tokensPerSecond ? Math.round(e.tokens / e.tokensPerSecond) : null,
    assumptions,
  };
}
