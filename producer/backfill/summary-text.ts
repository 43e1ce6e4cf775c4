/** The lines `backfill` prints when it is done (without `--json`): what this invocation
 *  enqueued, the whole run so far, the checkpoint, backpressure, the workers' results, the
 *  dry run's estimate, skips by reason with samples, and peak memory. Pure. */
import type { BackfillSummary } from "../backfill.js";
import { sampleWhere } from "../ingest-summary.js";
import { formatBytes } from "../readers/reader-errors.js";
import { formatSeconds } from "./progress.js";

function runLines(s: BackfillSummary): string[] {
  const r = s.run;
  const out: string[] = [];
  if (s.alreadyComplete) {
    out.push(`backfill ${s.runId} was already complete (${s.checkpoint}); nothing to do (--restart to run it again)`);
  } else {
    const verb = s.dryRun ? "would enqueue" : "enqueued";
    out.push(
      `backfill ${s.runId}: ${verb} ${r.documents} documents as ${r.jobs} jobs: ${r.chunks} chunks, ` +
        `${r.tokens} tokens from ${r.files} files (${formatBytes(r.bytes)}) in ${s.elapsedSeconds} s` +
        `${s.interrupted ? " (interrupted)" : ""}`,
    );
  }
  const t = s.total;
  if (s.resumed || s.alreadyComplete) {
    out.push(
      `  whole run so far: ${t.documents} documents, ${t.jobs} jobs, ${t.chunks} chunks, ` +
        `${t.tokens} tokens, ${t.files} files`,
    );
  }
  if (s.checkpoint) out.push(`  checkpoint: ${s.checkpoint} (${s.complete ? "complete" : "resumable"})`);
  return out;
}

function queueLines(s: BackfillSummary): string[] {
  const out: string[] = [];
  const b = s.backlog;
  if (b) {
    out.push(
      `  backlog: peak ${b.peakJobs} jobs / ${b.peakChunks} chunks (high-water ${b.highJobs} / ${b.highChunks}), ` +
        `paused ${b.pauses} times for ${b.pausedSeconds} s; priority ${s.priority}`,
    );
  }
  const w = s.worker;
  if (w) {
    out.push(
      `  workers (this invocation's jobs${w.drained ? ", all finished" : ", seen so far"}): ` +
        `${w.completedJobs} completed, ${w.failedJobs} failed, ${w.duplicateJobs} already in Redis ` +
        `(not added again), ${w.unchangedChunks} chunks unchanged (not re-embedded)`,
    );
  }
  const e = s.estimate;
  if (e) {
    out.push(
      `  estimate: Redis peak ${formatBytes(e.peakRedisBytes)} for ${e.peakJobsInRedis} jobs ` +
        `(${formatBytes(e.unboundedRedisBytes)} without backpressure); ` +
        `mean job ${formatBytes(e.meanJobDataBytes)}, ${e.meanChunksPerJob} chunks`,
    );
    const embed =
      e.embedSeconds === null
        ? "unknown: pass --tokens-per-second with a throughput measured on your workers"
        : formatSeconds(e.embedSeconds);
    out.push(`  embedding time: ${embed}`);
    for (const a of e.assumptions) out.push(`    assumes ${a}`);
  }
  return out;
}

export function formatBackfillSummary(s: BackfillSummary): string {
  const out = runLines(s);
  if (!s.alreadyComplete) {
    out.push(...queueLines(s));
    if (s.total.skipped > 0) {
      out.push(`  skipped ${s.total.skipped} records:`);
      for (const [reason, n] of Object.entries(s.skippedByReason)) out.push(`    ${n} x ${reason}`);
      for (const x of s.skippedSamples.slice(0, 10)) out.push(`    e.g. ${sampleWhere(x)}: ${x.reason}`);
    }
    out.push(`  peak memory: ${formatBytes(s.maxRssBytes)}`);
  }
  return out.join("\n") + "\n";
}
