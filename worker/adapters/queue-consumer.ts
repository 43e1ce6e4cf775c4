/** The BullMQ side of the worker: a Worker whose concurrency is the in-flight window the
 *  batcher sorts across. Each job is validated, handed to the pipeline, and completed only
 *  when the pipeline says every chunk is stored. Failures become BullMQ failures with a
 *  reason that starts with the error kind (`validation: …`, `sink: …`), so failed jobs can
 *  be filtered by cause; errors retrying cannot fix are thrown as UnrecoverableError. A job
 *  still running when the drain deadline passes is moved back to the wait list. */
import { UnrecoverableError, WaitingError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { errorKind, isRetryable, ShutdownError } from "../../shared/errors.js";
import { embedJobSchema, formatIssues, JOB_NAME, type EmbedJobResult } from "../../shared/job.js";
import type { Metrics } from "../../shared/metrics.js";
import type { EmbeddingPipeline } from "../core/pipeline.js";

type ConsumerConfig = Pick<Config, "QUEUE_NAME" | "QUEUE_PREFIX" | "WORKER_CONCURRENCY" | "LOCK_DURATION_MS" | "STALLED_INTERVAL_MS">;

export function createQueueConsumer(
  cfg: ConsumerConfig,
  pipeline: EmbeddingPipeline,
  deps: { connection: Redis; log: Logger; metrics: Metrics; autorun?: boolean },
): Worker {
  const { log, metrics } = deps;
  const processor = async (job: Job, token?: string): Promise<EmbedJobResult> => {
    const jl = log.child({ jobId: job.id });
    metrics.stage.observe({ stage: "queue_wait", lane: "queue" }, Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp) / 1000);
    if (job.name !== JOB_NAME) {
      metrics.errors.inc({ type: "validation" });
      throw new UnrecoverableError(`validation: unknown job name "${job.name}" (expected "${JOB_NAME}")`);
    }
    const parsed = embedJobSchema.safeParse(job.data);
    if (!parsed.success) {
      metrics.errors.inc({ type: "validation" });
      jl.warn({ issues: formatIssues(parsed.error) }, "job failed validation");
      throw new UnrecoverableError(`validation: ${formatIssues(parsed.error)}`);
    }
    const d = parsed.data;
    try {
      const result = await pipeline.submit({
        id: job.id ?? "", docId: d.docId, docHash: d.docHash, enqueuedAt: d.enqueuedAt, metadata: d.metadata, chunks: d.chunks,
      });
      metrics.jobLatency.observe(Math.max(0, Date.now() - d.enqueuedAt) / 1000);
      if (result.unchanged) metrics.unchanged.inc(result.unchanged);
      jl.debug({ docId: d.docId, ...result }, "job completed");
      return result;
    } catch (err) {
      if (err instanceof ShutdownError) {
        // Not a failure: back to the queue at once (attempts unchanged) rather than after the lock expires.
        await job.moveToWait(token);
        jl.info({ docId: d.docId }, "job handed back to the queue: drain deadline passed");
        throw new WaitingError();
      }
      // Counted in errors_total where it happened (pipeline, model, sink), not again here.
      const kind = errorKind(err);
      const msg = `${kind}: ${(err as Error).message}`;
      jl.warn({ docId: d.docId, kind, err: (err as Error).message, attempt: job.attemptsMade + 1 }, "job failed");
      if (!isRetryable(err)) throw new UnrecoverableError(msg);
      throw new Error(msg, { cause: err });
    }
  };
  const worker = new Worker(cfg.QUEUE_NAME, processor, {
    connection: deps.connection,
    prefix: cfg.QUEUE_PREFIX,
    concurrency: cfg.WORKER_CONCURRENCY,
    lockDuration: cfg.LOCK_DURATION_MS,
    stalledInterval: cfg.STALLED_INTERVAL_MS,
    autorun: deps.autorun ?? true,
  });
  worker.on("completed", () => metrics.jobs.inc({ status: "completed" }));
  worker.on("failed", (job, err) => {
    const final = !job || err instanceof UnrecoverableError || err.name === "UnrecoverableError" || job.attemptsMade >= (job.opts.attempts ?? 1);
    metrics.jobs.inc({ status: final ? "failed" : "retried" });
  });
  worker.on("error", (err) => log.error({ err: err.message }, "BullMQ worker error"));
  return worker;
}
