/** The BullMQ side of a packed job (shared/pack.ts): parses the pack, runs each of its documents
 *  through the pipeline as its own job (chunks pooled with every other job in flight), and
 *  settles the pack by `decidePack`: documents that failed for their own reason are split off as
 *  their own single-document jobs (PackSplitter) and the pack completes with a result naming them;
 *  a transient failure retries the whole pack; a shutdown hands it back. A pack whose envelope is
 *  malformed, or that passes a bound as a whole, fails as a whole (the producer never builds one).
 *  Acts once per packed job. */
import type { Job } from "bullmq";
import type { Logger } from "pino";
import { checkPackBounds, type JobLimits } from "../../shared/job-bounds.js";
import { formatIssues, type EmbedJobResult } from "../../shared/job.js";
import { packedDocSchema, packJobSchema, singleJobFromPackedDoc } from "../../shared/pack.js";
import { asEmbedError, PackRetryError, ValidationError, type EmbedError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { decidePack, splitReason, type DocOutcome } from "../core/pack-outcome.js";
import type { EmbeddingPipeline, PipelineJob } from "../core/pipeline.js";
import type { PackSplitter } from "./pack-splitter.js";

/** One document of a pack as parsed: ready to run, or failed already. */
export interface ParsedPackDoc {
  index: number;
  raw: unknown;
  docId: string | null;
  job?: Omit<PipelineJob, "id">;
  error?: ValidationError;
}

/** The pack's documents, each parsed on its own. Throws ValidationError when the pack as a whole is
 *  bad (envelope, or a bound passed by the pack as a whole). */
export function parsePackData(data: unknown, limits: JobLimits): ParsedPackDoc[] {
  const bad = checkPackBounds(data, limits);
  const env = packJobSchema.safeParse(data);
  if (!env.success) throw new ValidationError(`pack: ${formatIssues(env.error)}`);
  return env.data.docs.map((raw, index) => {
    const rawId = (raw as { docId?: unknown } | null)?.docId;
    const docId = typeof rawId === "string" ? rawId : null;
    const early = bad.get(index);
    if (early) return { index, raw, docId, error: early };
    const parsed = packedDocSchema.safeParse(raw);
    if (!parsed.success) return { index, raw, docId, error: new ValidationError(formatIssues(parsed.error)) };
    return { index, raw, docId, job: parsed.data };
  });
}

export interface PackDeps {
  pipeline: EmbeddingPipeline;
  splitter: PackSplitter;
  metrics: Metrics;
}

export type PackSettlement = { kind: "done"; result: EmbedJobResult } | { kind: "hand-back" };

/** Runs a parsed pack. Throws the EmbedError that should retry the pack; split-offs are added first. */
export async function runPack(job: Job, docs: ParsedPackDoc[], deps: PackDeps, log: Logger): Promise<PackSettlement> {
  const { pipeline, metrics } = deps;
  const outcomes: DocOutcome[] = await Promise.all(
    docs.map(async (d): Promise<DocOutcome> => {
      const base = { index: d.index, docId: d.docId };
      if (d.error) {
        metrics.errors.inc({ type: d.error.kind });
        return { ...base, error: d.error };
      }
      try {
        const result = await pipeline.submit({ ...d.job!, id: `${job.id ?? ""}#${d.index}` });
        metrics.jobLatency.observe(Math.max(0, Date.now() - d.job!.enqueuedAt) / 1000);
        return { ...base, result };
      } catch (err) {
        return { ...base, error: asEmbedError(err, "processing a packed document") };
      }
    }),
  );
  const decision = decidePack(outcomes);
  if (decision.kind === "hand-back") return decision;
  const split = decision.split.map((o) => ({
    o,
    single: singleJobFromPackedDoc(docs[o.index].raw, job.id ?? "", o.index),
  }));
  try {
    await deps.splitter.add(
      split.map((s) => s.single),
      job.opts,
    );
  } catch (err) {
    throw asEmbedError(err, "re-enqueueing documents split off the pack");
  }
  for (const { o, single } of split) {
    log.warn(
      { docId: o.docId, index: o.index, splitJobId: single.id, kind: o.error!.kind, err: o.error!.message },
      "document split off its pack as its own job",
    );
  }
  if (decision.kind === "retry") throw packRetryError(decision.error, outcomes);
  const result: EmbedJobResult = {
    ...decision.result,
    split: split.map(({ o, single }) => ({
      docId: o.docId,
      index: o.index,
      jobId: single.id,
      reason: splitReason(o.error!),
    })),
  };
  metrics.documents.inc({ status: "completed" }, outcomes.length - split.length);
  if (split.length > 0) metrics.documents.inc({ status: "split_off" }, split.length);
  return { kind: "done", result };
}

/** The transient error the pack retries with, saying how many of its documents it hit. */
function packRetryError(first: EmbedError, outcomes: DocOutcome[]): EmbedError {
  const n = outcomes.filter((o) => o.error?.retryable).length;
  const msg = `${n} of ${outcomes.length} packed documents failed transiently, retrying the pack; first: ${first.message}`;
  return new PackRetryError(first.kind, msg, { cause: first });
}
