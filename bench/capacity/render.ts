/** Text of `npm run capacity`: the question, every constant with its source, then one column per
 *  GPU scenario. Pure: same report, same text. */
import type { Sourced } from "./inputs.js";
import type { CapacityResult } from "./model.js";

export interface CapacityReport {
  question: { chunks: number; tokensPerChunk: number; gpus: number; gpu: string; colbert: boolean; jobChunks: number };
  constants: Sourced[];
  ceilingMissing?: string;
  scenarios: Array<{ label: string; gpuTokensPerSecond: number; result: CapacityResult }>;
}

const num = (x: number | undefined, d = 0) =>
  x === undefined || !Number.isFinite(x)
    ? "n/a"
    : x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

export function bytes(x: number): string {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let v = x;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function duration(s: number): string {
  if (!Number.isFinite(s)) return "n/a";
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.round((s % 3600) / 60);
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
}

export function renderCapacity(r: CapacityReport): string {
  const q = r.question;
  const rows: Array<[string, (c: CapacityResult) => string]> = [
    ["fleet tokens/s", (c) => num(c.fleetTokensPerSecond)],
    ["chunks/s (= Qdrant points/s)", (c) => num(c.chunksPerSecond)],
    ["jobs/s through Redis", (c) => num(c.jobsPerSecond, 1)],
    ["jobs/s one Redis core serves (measured)", (c) => num(c.redisJobsPerCoreSecond)],
    ["Redis cores busy", (c) => num(c.redisCores, 2)],
    ["Redis shards (QUEUE_SHARDS) at the planned utilization", (c) => num(c.redisShards)],
    ["Redis bytes per waiting job", (c) => bytes(c.redisBytesPerJob)],
    ["jobs in Redis at the backfill's high-water mark (backlog bound + kept completed)", (c) => num(c.peakJobsInRedis)],
    ["Redis memory at the high-water mark (job data)", (c) => bytes(c.peakRedisBytes)],
    ["worker processes per GPU (main-thread ceiling)", (c) => num(c.workerProcessesPerGpu)],
    ["tokenizer threads per GPU", (c) => num(c.tokenizerThreadsPerGpu)],
    [
      r.scenarios.some((s) => s.result.workerProcessesPerGpu === undefined)
        ? "jobs the fleet holds in flight (one process per GPU: at least) / backlog bound"
        : "jobs the fleet holds in flight / backlog bound",
      (c) => `${num(c.inFlightJobs)} / ${num(c.backlogJobs)}`,
    ],
    [
      "high-water mark covering twice the jobs in flight: jobs / Redis memory then",
      (c) => `${num(c.coveringHighWaterJobs)} / ${bytes(c.coveringPeakRedisBytes)}`,
    ],
    ["Qdrant stored vector bytes per point", (c) => bytes(c.storedVectorBytesPerPoint)],
    ["Qdrant request JSON bytes per point", (c) => bytes(c.requestBytesPerPoint)],
    ["Qdrant vector bytes/s to absorb (stored)", (c) => `${bytes(c.qdrantStoredBytesPerSecond)}/s`],
    ["Qdrant request bytes/s (JSON over HTTP)", (c) => `${bytes(c.qdrantRequestBytesPerSecond)}/s`],
    ["vectors stored in total", (c) => bytes(c.totalStoredVectorBytes)],
    ["wall time (GPU-bound)", (c) => duration(c.wallSeconds)],
  ];
  const lines = [
    `Backfill of ${num(q.chunks)} chunks of ${q.tokensPerChunk} tokens in jobs of ${q.jobChunks} chunks, ${q.gpus} x ${q.gpu}, ColBERT ${q.colbert ? "on" : "off"}.`,
    "",
    "Constants (value: source):",
    ...r.constants.map((c) => `  ${c.name} = ${num(c.value, c.value < 10 ? 3 : 0)}: ${c.source}`),
  ];
  if (r.ceilingMissing) lines.push(`  worker processes and tokenizer threads per GPU: ${r.ceilingMissing}`);
  const width = Math.max(...rows.map(([n]) => n.length));
  lines.push("", `${"".padEnd(width)}  ${r.scenarios.map((s) => s.label.padStart(18)).join("  ")}`);
  for (const [name, f] of rows)
    lines.push(`${name.padEnd(width)}  ${r.scenarios.map((s) => f(s.result).padStart(18)).join("  ")}`);
  const starved = r.scenarios.some((s) => s.result.backlogCoversInFlight === false);
  if (starved)
    lines.push(
      "",
      "The backlog bound is below the jobs the fleet holds in flight: workers would starve. Raise the backfill's " +
        "--high-water-jobs and --high-water-chunks (the row above: twice the jobs in flight, and the Redis memory that costs), " +
        "or lower WORKER_CONCURRENCY.",
    );
  return lines.join("\n");
}
