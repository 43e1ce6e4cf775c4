/** The BullMQ side of the worker: a Worker whose concurrency is the in-flight window the
 *  batcher sorts across. Each job is validated, handed to the pipeline, and completed only
 *  when the pipeline says every chunk is stored. Failures become BullMQ failures with a
 *  reason that starts with the error kind (`validation: …`, `sink: …`), so failed jobs can
 *  be filtered by cause; errors retrying cannot fix are thrown as UnrecoverableError. Before the
 *  schema parse, cheap bounds on the raw data (`job-bounds.ts`) refuse enormous or deeply nested
 *  jobs in milliseconds. Whatever a job throws, expected or not, fails that job with a kind and
 *  never escapes to the process (issue 13). A job still running when the drain deadline passes
 *  is moved back to the wait list. BullMQ errors are counted, rate-limited in the log and turned
 *  into readiness by `GuardedWorker` (issue 16). Each job records which process took it (BullMQ
 *  `processedBy`, set to `workerName()`), so an operator or a fleet test can tell whose jobs a crash
 *  stranded. A packed job (several small documents, shared/pack.ts) goes to `runPack`
 *  (pack-consumer.ts): its documents fail one by one and are split off as their own jobs. */
import os from "node:os";
import { UnrecoverableError, WaitingError, type Job } from "bullmq";
import type { RedisClient } from "../../shared/redis.js";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { asEmbedError, ShutdownError, ValidationError, type EmbedError } from "../errors.js";
import { checkJobBounds, type JobLimits } from "../../shared/job-bounds.js";
import { embedJobSchema, formatIssues, JOB_NAME, type EmbedJobData, type EmbedJobResult } from "../../shared/job.js";
import { isPackData } from "../../shared/pack.js";
import type { Metrics } from "../metrics.js";
import type { EmbeddingPipeline } from "../core/pipeline.js";
import { GuardedWorker } from "./guarded-worker.js";
import { parsePackData, runPack, type ParsedPackDoc } from "./pack-consumer.js";
import { PackSplitter } from "./pack-splitter.js";

type ConsumerConfig = JobLimits &
  Pick<Config, "QUEUE_NAME" | "QUEUE_PREFIX" | "WORKER_CONCURRENCY" | "LOCK_DURATION_MS" | "STALLED_INTERVAL_MS">;

/** This process's name in the fleet: host (the pod name on Kubernetes) and pid. */
export const workerName = (): string => `${os.hostname()}:${process.pid}`;

/** The job's data, checked: bounds on the raw data first, then the schema. Throws ValidationError. */
export function parseJobData(name: string, data: unknown, limits: JobLimits): EmbedJobData {
  if (name !== JOB_NAME) throw new ValidationError(`unknown job name "${name}" (expected "${JOB_NAME}")`);
  checkJobBounds(data, limits);
  const parsed = embedJobSchema.safeParse(data);
  if (!parsed.success) throw new ValidationError(formatIssues(parsed.error));
  return parsed.data;
}

/** The one place a failure becomes a BullMQ failure: reason prefixed with its kind, not retried
 *  unless retrying can help. */
function toQueueError(e: EmbedError): Error {
  const msg = `${e.kind}: ${e.message}`;
  return e.retryable ? new Error(msg, { cause: e }) : new UnrecoverableError(msg);
}

export function createQueueConsumer(
  cfg: ConsumerConfig,
  pipeline: EmbeddingPipeline,
  deps: { connection: RedisClient; log: Logger; metrics: Metrics; autorun?: boolean; splitter?: PackSplitter },
): GuardedWorker {
  const { log, metrics } = deps;
  const ownSplitter = deps.splitter ? undefined : new PackSplitter(cfg, deps.connection);
  const splitter = deps.splitter ?? ownSplitter!;
  const handBack = async (job: Job, token: string | undefined, jl: Logger, what: Record<string, unknown>) => {
    // Not a failure: back to the queue at once (attempts unchanged) rather than after the lock expires.
    await job.moveToWait(token);
    jl.info(what, "job handed back to the queue: drain deadline passed");
    return new WaitingError();
  };
  const packProcessor = async (job: Job, token: string | undefined, jl: Logger): Promise<EmbedJobResult> => {
    let docs: ParsedPackDoc[];
    try {
      if (job.name !== JOB_NAME) throw new ValidationError(`unknown job name "${job.name}" (expected "${JOB_NAME}")`);
      docs = parsePackData(job.data, cfg);
    } catch (err) {
      const e = asEmbedError(err, "validating the pack");
      metrics.errors.inc({ type: e.kind });
      jl.warn({ kind: e.kind, err: e.message }, "packed job failed validation");
      throw toQueueError(e);
    }
    try {
      const s = await runPack(job, docs, { pipeline, splitter, metrics }, jl);
      if (s.kind === "hand-back") throw await handBack(job, token, jl, { documents: docs.length });
      if (s.result.unchanged) metrics.unchanged.inc(s.result.unchanged);
      jl.debug({ ...s.result, split: s.result.split?.length ?? 0 }, "packed job completed");
      return s.result;
    } catch (err) {
      if (err instanceof WaitingError) throw err;
      const e = asEmbedError(err, "processing the pack");
      jl.warn({ documents: docs.length, kind: e.kind, err: e.message, attempt: job.attemptsMade + 1 }, "job failed");
      throw toQueueError(e);
    }
  };
  const processor = async (job: Job, token?: string): Promise<EmbedJobResult> => {
    const jl = log.child({ jobId: job.id });
    metrics.stage.observe(
      { stage: "queue_wait", lane: "queue" },
      Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp) / 1000,
    );
    if (isPackData(job.data)) return packProcessor(job, token, jl);
    let d: EmbedJobData;
    try {
      d = parseJobData(job.name, job.data, cfg);
    } catch (err) {
      const e = asEmbedError(err, "validating the job");
      metrics.errors.inc({ type: e.kind });
      jl.warn({ kind: e.kind, err: e.message }, "job failed validation");
      throw toQueueError(e);
    }
    try {
      const result = await pipeline.submit({
        id: job.id ?? "",
        docId: d.docId,
        docHash: d.docHash,
        enqueuedAt: d.enqueuedAt,
        metadata: d.metadata,
        chunks: d.chunks,
        fresh: d.fresh,
      });
      metrics.jobLatency.observe(Math.max(0, Date.now() - d.enqueuedAt) / 1000);
      metrics.documents.inc({ status: "completed" });
      if (result.unchanged) metrics.unchanged.inc(result.unchanged);
      jl.debug({ docId: d.docId, ...result }, "job completed");
      return result;
    } catch (err) {
      if (err instanceof ShutdownError) throw await handBack(job, token, jl, { docId: d.docId });
      // Counted in errors_total where it happened (pipeline, model, sink), not again here.
      const e = asEmbedError(err, "processing the job");
      jl.warn({ docId: d.docId, kind: e.kind, err: e.message, attempt: job.attemptsMade + 1 }, "job failed");
      throw toQueueError(e);
    }
  };
  const options = {
    connection: deps.connection,
    name: workerName(),
    prefix: cfg.QUEUE_PREFIX,
    concurrency: cfg.WORKER_CONCURRENCY,
    lockDuration: cfg.LOCK_DURATION_MS,
    stalledInterval: cfg.STALLED_INTERVAL_MS,
    autorun: deps.autorun ?? true,
  };
  const worker = new GuardedWorker(cfg.QUEUE_NAME, processor, options, { log, metrics });
  worker.on("completed", () => metrics.jobs.inc({ status: "completed" }));
  if (ownSplitter) worker.on("closed", () => void ownSplitter.close().catch(() => undefined));
  worker.on("failed", (job, err) => {
    const final =
      !job ||
      err instanceof UnrecoverableError ||
      err.name === "UnrecoverableError" ||
      job.attemptsMade >= (job.opts.attempts ?? 1);
    metrics.jobs.inc({ status: final ? "failed" : "retried" });
  });
  return worker;
}
