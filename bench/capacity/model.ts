/** The capacity model behind `npm run capacity`: what a backfill of N chunks asks of Redis, the
 *  workers and Qdrant, from constants measured by the benches (bench:queue, bench:ceiling) and the published GPU figures (e2e/gpu-figures.ts). Pure arithmetic: every
 *  input arrives as a number the caller took from a results file or a code constant and prints
 *  with its source; nothing here reads a file or guesses a missing figure (a missing ceiling
 *  stays undefined and so do the figures built on it). */
import { formatFloat32 } from "../../worker/core/float32-format.js";

export interface QueueConstants {
  /** Memory fit: Redis bytes per waiting job = bytesPerJob + bytesPerDataByte x job data bytes. */
  bytesPerJob: number;
  bytesPerDataByte: number;
  /** Job data JSON: text bytes per content token, bytes per chunk beyond its text, per job beyond its chunks. */
  textBytesPerToken: number;
  chunkJsonOverheadBytes: number;
  jobJsonOverheadBytes: number;
  /** Redis CPU seconds per job (net of idle) at the measured job size nearest the asked one. */
  redisCpuSecondsPerJob: number;
  /** Distinct non-special ids per content token (sparse entries per token, an upper bound). */
  distinctTokenRatio: number;
  /** Payload JSON bytes per point beyond its text. */
  payloadOverheadBytes: number;
}

export interface CeilingConstants {
  /** Tokens/s one worker process's main thread sustains (ceiling bench, instant model). */
  mainCeilingTokensPerSec: number;
  /** Tokens per CPU-second of one tokenizer thread. */
  tokenizerTokensPerCpuSec: number;
}

export interface BackfillMarks {
  highWaterJobs: number;
  highWaterChunks: number;
  bulkSize: number;
  /** Completed jobs BullMQ keeps per queue (REMOVE_ON_COMPLETE). */
  keptCompleted: number;
}

export interface CapacityInput {
  chunks: number;
  /** Model-side tokens per chunk, <s> and </s> included. */
  tokensPerChunk: number;
  gpus: number;
  jobChunks: number;
  colbert: boolean;
  gpuTokensPerSecond: number;
  /** Share of a Redis core to plan for (e.g. 0.5: leave half for bursts, persistence and replication). */
  redisUtilization: number;
  workerConcurrency: number;
  queue: QueueConstants;
  ceiling?: CeilingConstants;
  marks: BackfillMarks;
  /** JSON bytes of a point's vectors per float, and per sparse entry (index and value). */
  jsonBytesPerFloat: number;
  jsonBytesPerSparseEntry: number;
  /** Vector sizes of BGE-M3. */
  denseDim: number;
  colbertDim: number;
}

export interface CapacityResult {
  contentTokensPerChunk: number;
  jobDataBytes: number;
  redisBytesPerJob: number;
  /** Jobs in Redis at the backfill's high-water mark: the backlog bound plus kept completed jobs. */
  peakJobsInRedis: number;
  peakRedisBytes: number;
  fleetTokensPerSecond: number;
  chunksPerSecond: number;
  jobsPerSecond: number;
  redisJobsPerCoreSecond: number;
  redisCores: number;
  /** Shards (QUEUE_SHARDS, one Redis master each) to keep every core under `redisUtilization`. */
  redisShards: number;
  workerProcessesPerGpu?: number;
  tokenizerThreadsPerGpu?: number;
  /** The fleet's jobs in flight (WORKER_CONCURRENCY per process; one process per GPU when the ceiling is not
   *  measured, so a lower bound then) and whether the backlog bound covers them. */
  inFlightJobs: number;
  backlogJobs: number;
  backlogCoversInFlight: boolean;
  /** High-water mark (jobs; chunks = jobs x jobChunks) holding twice the jobs in flight, and Redis memory then. */
  coveringHighWaterJobs: number;
  coveringPeakRedisBytes: number;
  qdrantPointsPerSecond: number;
  storedVectorBytesPerPoint: number;
  requestBytesPerPoint: number;
  qdrantStoredBytesPerSecond: number;
  qdrantRequestBytesPerSecond: number;
  totalStoredVectorBytes: number;
  wallSeconds: number;
}

/** Content tokens (no <s> and </s>) of a chunk of `tokensPerChunk` model-side tokens. */
export const contentTokens = (tokensPerChunk: number) => Math.max(1, tokensPerChunk - 2);

export function jobDataBytes(q: QueueConstants, jobChunks: number, tokensPerChunk: number): number {
  return (
    q.jobJsonOverheadBytes +
    jobChunks * (q.chunkJsonOverheadBytes + q.textBytesPerToken * contentTokens(tokensPerChunk))
  );
}

/** Jobs waiting, active or delayed at most: the lower high-water mark (in jobs, or chunks over
 *  job size) plus one bulk, as producer/backfill's gate bounds it (estimate.ts does the same). */
export function backlogBound(m: BackfillMarks, jobChunks: number): number {
  return Math.min(m.highWaterJobs, Math.ceil(m.highWaterChunks / jobChunks)) + m.bulkSize;
}

export function vectorBytes(i: CapacityInput): { stored: number; request: number } {
  const t = contentTokens(i.tokensPerChunk);
  const sparse = Math.round(i.queue.distinctTokenRatio * t);
  const colbertRows = i.colbert ? i.tokensPerChunk : 0;
  const stored = i.denseDim * 4 + sparse * 8 + colbertRows * i.colbertDim * 2;
  const request =
    (i.denseDim + colbertRows * i.colbertDim) * i.jsonBytesPerFloat +
    sparse * i.jsonBytesPerSparseEntry +
    i.queue.payloadOverheadBytes +
    i.queue.textBytesPerToken * t;
  return { stored, request };
}

export function capacity(i: CapacityInput): CapacityResult {
  const data = jobDataBytes(i.queue, i.jobChunks, i.tokensPerChunk);
  const perJob = i.queue.bytesPerJob + i.queue.bytesPerDataByte * data;
  const backlog = backlogBound(i.marks, i.jobChunks);
  const peakJobs = backlog + i.marks.keptCompleted;
  const fleet = i.gpus * i.gpuTokensPerSecond;
  const chunksPerSecond = fleet / i.tokensPerChunk;
  const jobsPerSecond = chunksPerSecond / i.jobChunks;
  const perCore = 1 / i.queue.redisCpuSecondsPerJob;
  const cores = jobsPerSecond / perCore;
  const processes = i.ceiling && Math.ceil(i.gpuTokensPerSecond / i.ceiling.mainCeilingTokensPerSec);
  // Without a measured ceiling, one process per GPU: the fewest jobs the fleet can hold in flight.
  const inFlight = i.gpus * (processes ?? 1) * i.workerConcurrency;
  const v = vectorBytes(i);
  return {
    contentTokensPerChunk: contentTokens(i.tokensPerChunk),
    jobDataBytes: data,
    redisBytesPerJob: perJob,
    peakJobsInRedis: peakJobs,
    peakRedisBytes: peakJobs * perJob,
    fleetTokensPerSecond: fleet,
    chunksPerSecond,
    jobsPerSecond,
    redisJobsPerCoreSecond: perCore,
    redisCores: cores,
    redisShards: Math.max(1, Math.ceil(cores / i.redisUtilization)),
    workerProcessesPerGpu: processes,
    tokenizerThreadsPerGpu: i.ceiling && Math.ceil(i.gpuTokensPerSecond / i.ceiling.tokenizerTokensPerCpuSec),
    inFlightJobs: inFlight,
    backlogJobs: backlog,
    backlogCoversInFlight: backlog > inFlight,
    coveringHighWaterJobs: 2 * inFlight,
    coveringPeakRedisBytes: (2 * inFlight + i.marks.bulkSize + i.marks.keptCompleted) * perJob,
    qdrantPointsPerSecond: chunksPerSecond,
    storedVectorBytesPerPoint: v.stored,
    requestBytesPerPoint: v.request,
    qdrantStoredBytesPerSecond: chunksPerSecond * v.stored,
    qdrantRequestBytesPerSecond: chunksPerSecond * v.request,
    totalStoredVectorBytes: i.chunks * v.stored,
    wallSeconds: (i.chunks * i.tokensPerChunk) / fleet,
  };
}

/** Deterministic pseudo-random numbers in [0, 1) (a linear congruential generator). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** JSON bytes per float of a unit vector of `dim` float32 values as the worker sends it, and per
 *  sparse entry (an index below `vocab` and a float32 weight). `prebuilt` (QDRANT_UPSERT_BODY's
 *  default): the worker's own shortest round-trip float32 formatter; `client`: Float32Array ->
 *  number[] -> JSON.stringify, as the Qdrant client sends it. Computed by serializing seeded values,
 *  not assumed. */
export function jsonSizes(
  dim: number,
  vocab: number,
  body: "prebuilt" | "client" = "prebuilt",
): { perFloat: number; perSparseEntry: number } {
  const rnd = lcg(1);
  const raw = Array.from({ length: dim }, () => rnd() * 2 - 1);
  const norm = Math.hypot(...raw);
  const dense = Array.from(new Float32Array(raw.map((x) => x / norm)));
  const list = (xs: number[]) => (body === "client" ? JSON.stringify(xs) : `[${xs.map(formatFloat32).join(",")}]`);
  const perFloat = Buffer.byteLength(list(dense)) / dim;
  const n = 256;
  const indices = Array.from({ length: n }, () => Math.floor(rnd() * vocab));
  const values = Array.from(new Float32Array(Array.from({ length: n }, () => rnd() * 0.3)));
  const perSparseEntry = Buffer.byteLength(`{"indices":${JSON.stringify(indices)},"values":${list(values)}}`) / n;
  return { perFloat, perSparseEntry };
}
