/** Every metric this project exports, defined in one place. Each worker builds its own
 *  registry (tests run several workers in one process). Durations are in seconds with a
 *  `_seconds` suffix, counters end in `_total`, one histogram per pipeline stage, failures
 *  counted by reason. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { QUEUE_ERROR_REASONS } from "./core/queue-error-tracker.js";

export type Stage = "queue_wait" | "tokenize" | "batch_wait" | "infer" | "sink_write";

export interface Metrics {
  registry: Registry;
  chunks: Counter<"lane">;
  tokens: Counter<"lane">;
  paddedTokens: Counter<never>;
  batches: Counter<"lane">;
  batchSize: Histogram<never>;
  batchTokens: Histogram<never>;
  stage: Histogram<"stage" | "lane">;
  jobLatency: Histogram<never>;
  jobs: Counter<"status">;
  errors: Counter<"type">;
  truncated: Counter<never>;
  unchanged: Counter<never>;
  documents: Counter<"status">;
  upserts: Counter<never>;
  upsertPoints: Histogram<never>;
  /** Stale-point delete requests sent to the sink (each may carry several documents; issue 15). */
  deletes: Counter<never>;
  /** Documents whose stale-point removal was applied (`removed`) or skipped for a fresh job (`skipped`). */
  staleRemovals: Counter<"outcome">;
  modelInfo: Gauge<"model" | "provider" | "outputs" | "device">;
  inflightJobs: Gauge<never>;
  pooledChunks: Gauge<never>;
  /** Jobs in the queue by state, read from Redis at scrape time (all workers see the same). */
  queueJobs: Gauge<"queue" | "state" | "shard">;
  /** Age of the oldest job waiting to be picked up (waiting or prioritized), read at scrape time. */
  queueLag: Gauge<"queue" | "shard">;
  /** Scrapes whose Redis read failed or ran past its time bound (the queue gauges keep their last values). */
  queueScrapeErrors: Counter<"reason">;
  /** Errors BullMQ's worker loops reported (failed fetches, lock renewals, stalled checks), by Redis error class. */
  queueErrors: Counter<"reason">;
  gpuMemoryUsed: Gauge<"device">;
  gpuMemoryTotal: Gauge<"device">;
  /** 1 while the worker reports ready, 0 while starting or draining. */
  ready: Gauge<never>;
  /** Query API requests by endpoint and outcome (ok, or the error type answered). */
  queryRequests: Counter<"endpoint" | "outcome">;
  /** Query API request latency, from the request's arrival to its answer. */
  queryLatency: Histogram<"endpoint">;
  /** Query requests in flight. */
  inflightQueries: Gauge<never>;
}

const pow2 = (from: number, n: number) => Array.from({ length: n }, (_, i) => from * 2 ** i);

export function createMetrics(opts: { defaultMetrics?: boolean; prefix?: string } = {}): Metrics {
  const registry = new Registry();
  const p = opts.prefix ?? "embed_";
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  const m = build(registry, p);
  // Known label values start at 0, so rates and "no errors" are visible before the first event.
  const kinds = ["validation", "too_long", "inference", "oom", "sink", "timeout", "shutdown", "internal"];
  for (const type of kinds) m.errors.inc({ type }, 0);
  for (const status of ["completed", "failed", "retried"]) m.jobs.inc({ status }, 0);
  for (const reason of QUEUE_ERROR_REASONS) m.queueErrors.inc({ reason }, 0);
  for (const outcome of ["removed", "skipped"]) m.staleRemovals.inc({ outcome }, 0);
  return m;
}

function build(registry: Registry, p: string): Metrics {
  const r = [registry];
  const latencyBuckets = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900,
  ];
  return {
    registry,
    chunks: new Counter({
      name: `${p}chunks_total`,
      help: "Chunks embedded and written",
      labelNames: ["lane"],
      registers: r,
    }),
    tokens: new Counter({
      name: `${p}tokens_total`,
      help: "Real (unpadded) tokens embedded",
      labelNames: ["lane"],
      registers: r,
    }),
    paddedTokens: new Counter({
      name: `${p}padded_tokens_total`,
      help: "Tokens computed by the model including padding (real/padded = padding efficiency)",
      registers: r,
    }),
    batches: new Counter({
      name: `${p}batches_total`,
      help: "Model batches run, by lane (interactive: the batch carried query texts)",
      labelNames: ["lane"],
      registers: r,
    }),
    batchSize: new Histogram({
      name: `${p}batch_size`,
      help: "Chunks per model batch",
      buckets: pow2(1, 13),
      registers: r,
    }),
    batchTokens: new Histogram({
      name: `${p}batch_tokens`,
      help: "Padded tokens per model batch",
      buckets: pow2(64, 12),
      registers: r,
    }),
    stage: new Histogram({
      name: `${p}stage_duration_seconds`,
      help: "Time spent per pipeline stage, by lane (queue: jobs; interactive: query requests)",
      labelNames: ["stage", "lane"],
      buckets: latencyBuckets,
      registers: r,
    }),
    jobLatency: new Histogram({
      name: `${p}job_latency_seconds`,
      help: "Job latency from enqueue to completion",
      buckets: latencyBuckets,
      registers: r,
    }),
    jobs: new Counter({
      name: `${p}jobs_total`,
      help: "Jobs finished by status",
      labelNames: ["status"],
      registers: r,
    }),
    errors: new Counter({
      name: `${p}errors_total`,
      help: "Errors by type, counted where they happen: each invalid job or chunk, failed model call, failed upsert attempt",
      labelNames: ["type"],
      registers: r,
    }),
    truncated: new Counter({
      name: `${p}truncated_chunks_total`,
      help: "Chunks truncated to MAX_SEQ_LENGTH",
      registers: r,
    }),
    unchanged: new Counter({
      name: `${p}unchanged_chunks_total`,
      help: "Chunks not re-embedded because the stored point has the same content hash and model (skip-unchanged jobs)",
      registers: r,
    }),
    documents: new Counter({
      name: `${p}documents_total`,
      help: "Documents finished by status: completed, or split_off from a packed job to run as their own job",
      labelNames: ["status"],
      registers: r,
    }),
    upserts: new Counter({ name: `${p}sink_requests_total`, help: "Upsert requests sent to the sink", registers: r }),
    upsertPoints: new Histogram({
      name: `${p}sink_request_points`,
      help: "Points per upsert request",
      buckets: pow2(1, 11),
      registers: r,
    }),
    deletes: new Counter({
      name: `${p}sink_delete_requests_total`,
      help: "Stale-point delete requests sent to the sink (one may carry several documents' removals)",
      registers: r,
    }),
    staleRemovals: new Counter({
      name: `${p}stale_removals_total`,
      help: "Documents by stale-point removal outcome: removed (its delete request succeeded) or skipped (fresh job)",
      labelNames: ["outcome"],
      registers: r,
    }),
    modelInfo: new Gauge({
      name: `${p}model_info`,
      help: "Loaded model (value is always 1)",
      labelNames: ["model", "provider", "outputs", "device"],
      registers: r,
    }),
    inflightJobs: new Gauge({ name: `${p}inflight_jobs`, help: "Jobs currently held by this worker", registers: r }),
    pooledChunks: new Gauge({ name: `${p}pooled_chunks`, help: "Tokenized chunks waiting for a batch", registers: r }),
    queueJobs: new Gauge({
      name: `${p}queue_jobs`,
      help: "Jobs in the queue by state (waiting, prioritized, active, delayed, failed), read from Redis at scrape time; per shard (label shard) on a sharded queue",
      labelNames: ["queue", "state", "shard"],
      registers: r,
    }),
    queueLag: new Gauge({
      name: `${p}queue_lag_seconds`,
      help: "Age of the oldest job waiting to be picked up (waiting or prioritized), read from Redis at scrape time; 0 when none waits; per shard (label shard) on a sharded queue",
      labelNames: ["queue", "shard"],
      registers: r,
    }),
    queueScrapeErrors: new Counter({
      name: `${p}queue_scrape_errors_total`,
      help: "Scrapes whose queue read from Redis failed or timed out (queue gauges keep their last values)",
      labelNames: ["reason"],
      registers: r,
    }),
    queueErrors: new Counter({
      name: `${p}queue_errors_total`,
      help:
        "Errors reported by BullMQ's worker loops (fetching jobs, renewing locks, stalled checks), by Redis error " +
        `class (${QUEUE_ERROR_REASONS.join(", ")})`,
      labelNames: ["reason"],
      registers: r,
    }),
    gpuMemoryUsed: new Gauge({
      name: `${p}gpu_memory_used_bytes`,
      help: "GPU memory in use on the worker's device (CUDA only, from nvidia-smi)",
      labelNames: ["device"],
      registers: r,
    }),
    gpuMemoryTotal: new Gauge({
      name: `${p}gpu_memory_total_bytes`,
      help: "GPU memory on the worker's device (CUDA only, from nvidia-smi)",
      labelNames: ["device"],
      registers: r,
    }),
    ready: new Gauge({
      name: `${p}ready`,
      help: "1 while the worker is ready to take jobs, 0 while starting, draining or unable to fetch jobs",
      registers: r,
    }),
    queryRequests: new Counter({
      name: `${p}query_requests_total`,
      help:
        "Query API requests by endpoint and outcome " +
        "(ok, validation_error, unauthorized, model_not_found, method_not_allowed, timeout, payload_too_large, " +
        "unsupported_media_type, rate_limited, out_of_memory, inference_error, not_ready, " +
        "client_closed: the client went away before its answer)",
      labelNames: ["endpoint", "outcome"],
      registers: r,
    }),
    queryLatency: new Histogram({
      name: `${p}query_latency_seconds`,
      help: "Query API request latency from arrival to answer",
      labelNames: ["endpoint"],
      buckets: latencyBuckets,
      registers: r,
    }),
    inflightQueries: new Gauge({
      name: `${p}inflight_queries`,
      help: "Query API requests being answered",
      registers: r,
    }),
  };
}

/** Sum of a metric over all its label values (0 if it does not exist). */
export async function metricTotal(m: Metrics, name: string): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) return 0;
  return (await metric.get()).values.reduce((a, v) => a + v.value, 0);
}
