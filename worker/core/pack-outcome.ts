/** What a packed job (shared/pack.ts) comes to, decided from its documents' outcomes. Each
 *  document ran as its own pipeline job; a document that failed for a reason of its own (bad
 *  input, too long, a point that cannot be built, a sink rejection of its points: any error that is
 *  not retryable) is split off, to be re-enqueued as its own job, and its pack-mates complete.
 *  A retryable failure (Qdrant down, inference, timeout) is not the document's fault: the whole
 *  pack is retried as a single job would be (its points are idempotent), after the split-offs are
 *  added, so a retry finds them already queued (their job ids are deterministic). A shutdown hands
 *  the pack back to the queue. Performs no I/O. */
import { ShutdownError, type EmbedError } from "../errors.js";
import type { EmbedJobResult } from "../../shared/job.js";

/** One document of a pack after it ran (or failed before it could). */
export interface DocOutcome {
  index: number;
  docId: string | null;
  result?: EmbedJobResult;
  error?: EmbedError;
}

export type PackDecision =
  | { kind: "hand-back" }
  | { kind: "retry"; error: EmbedError; split: DocOutcome[] }
  | { kind: "complete"; result: EmbedJobResult; split: DocOutcome[] };

/** Longest reason kept per split-off document in the pack's result (stored in Redis). */
export const MAX_SPLIT_REASON_CHARS = 300;

export function splitReason(e: EmbedError): string {
  const r = `${e.kind}: ${e.message}`;
  return r.length > MAX_SPLIT_REASON_CHARS ? `${r.slice(0, MAX_SPLIT_REASON_CHARS - 3)}...` : r;
}

export function decidePack(outcomes: DocOutcome[]): PackDecision {
  const failed = outcomes.filter((o) => o.error !== undefined);
  if (failed.some((o) => o.error instanceof ShutdownError)) return { kind: "hand-back" };
  const split = failed.filter((o) => !o.error!.retryable);
  const transient = failed.find((o) => o.error!.retryable);
  if (transient) return { kind: "retry", error: transient.error!, split };
  const result: EmbedJobResult = { chunks: 0, tokens: 0, truncated: 0, points: 0, unchanged: 0 };
  for (const o of outcomes) {
    if (!o.result) continue;
    result.chunks += o.result.chunks;
    result.tokens += o.result.tokens;
    result.truncated += o.result.truncated;
    result.points += o.result.points;
    result.unchanged! += o.result.unchanged ?? 0;
  }
  result.documents = outcomes.length;
  return { kind: "complete", result, split };
}
