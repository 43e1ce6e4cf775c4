/** The text `ingest` prints when it is done: a JSON document with `--json`, else a few lines
 *  (what was enqueued, repairs, skips counted by reason with the first samples). Pure. */
import type { EnqueueSummary, SkippedRecord } from "./enqueue.js";

/** `file:line` of a skipped record, or the file alone when the record has no line. */
export const sampleWhere = (r: SkippedRecord): string => `${r.file}${r.line ? `:${r.line}` : ""}`;

export function formatIngestSummary(s: EnqueueSummary, ms: number, json: boolean, dryRun: boolean): string {
  if (json) return JSON.stringify({ ...s, elapsedMs: Math.round(ms), dryRun }, null, 2) + "\n";
  const verb = dryRun ? "would enqueue" : "enqueued";
  const out = [
    `${verb} ${s.documents} documents as ${s.jobs} jobs: ${s.chunks} chunks, ${s.tokens} tokens ` +
      `in ${(ms / 1000).toFixed(1)} s`,
  ];
  if (s.packs > 0) out.push(`packed ${s.packedDocuments} small documents into ${s.packs} of those jobs`);
  if (s.repaired > 0) {
    out.push(`repaired ${s.repaired} documents: invalid UTF-8 or lone surrogates became U+FFFD`);
  }
  if (s.skipped > 0) {
    out.push(`skipped ${s.skipped} records:`);
    for (const [reason, n] of Object.entries(s.skippedByReason)) out.push(`  ${n} x ${reason}`);
    for (const r of s.skippedSamples.slice(0, 10)) out.push(`  e.g. ${sampleWhere(r)}: ${r.reason}`);
  }
  return out.join("\n") + "\n";
}
