/** Prints search hits: aligned text lines for a person (rank, score, document id, chunk index,
 *  the chunk text on one line cut to `width` characters), or one JSON document for scripts
 *  with the whole text and metadata. Scores are Qdrant's own: cosine for dense, a dot
 *  product for sparse, max_sim sums for a ColBERT rerank and rank-based RRF values for hybrid,
 *  so they are comparable only within one mode. Pure. */
import { PAYLOAD_FIELDS as F } from "../adapters/qdrant-schema.js";
import type { ScoredPoint } from "./qdrant-search.js";
import type { SearchPlan } from "./search-plan.js";

export interface SearchHit {
  rank: number;
  id: string | number;
  score: number;
  doc_id: string | null;
  chunk_index: number | null;
  /** null when the worker ran with STORE_TEXT=false. */
  text: string | null;
  metadata: unknown;
}

export function toHits(points: ScoredPoint[]): SearchHit[] {
  return points.map((p, i) => {
    const payload = (p.payload ?? {}) as Record<string, unknown>;
    const [docId, chunkIndex, text] = [payload[F.docId], payload[F.chunkIndex], payload[F.text]];
    return {
      rank: i + 1,
      id: p.id,
      score: p.score,
      doc_id: typeof docId === "string" ? docId : null,
      chunk_index: typeof chunkIndex === "number" ? chunkIndex : null,
      text: typeof text === "string" ? text : null,
      metadata: payload[F.metadata] ?? null,
    };
  });
}

/** What the plan sends to Qdrant, in a few words. */
export function describePlan(plan: SearchPlan): string {
  const retrieval =
    plan.mode === "hybrid" ? `hybrid (dense + sparse, ${plan.prefetchLimit} candidates each, RRF fusion)` : plan.mode;
  const rerank = plan.rerank ? `, reranked by ${plan.rerank} over ${plan.prefetchLimit} candidates,` : "";
  const filter = plan.docId !== undefined ? ` (doc_id "${plan.docId}")` : "";
  return `${retrieval}${rerank} search in "${plan.collection}"${filter}`;
}

/** Whitespace folded to single spaces; cut to `width` characters with an ellipsis (0 = no cut). */
export function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return width > 0 && flat.length > width ? `${flat.slice(0, Math.max(width - 1, 0))}…` : flat;
}

export function formatHitsText(plan: SearchPlan, hits: SearchHit[], width: number): string {
  const head = `${describePlan(plan)}: ${hits.length} hit${hits.length === 1 ? "" : "s"}\n`;
  const docWidth = Math.max(0, ...hits.map((h) => (h.doc_id ?? String(h.id)).length));
  const chunkWidth = Math.max(0, ...hits.map((h) => `#${h.chunk_index ?? "?"}`.length));
  const rankWidth = String(hits.length).length;
  const lines = hits.map((h) => {
    const text = h.text === null ? "(text not stored: STORE_TEXT=false)" : oneLine(h.text, width);
    const doc = (h.doc_id ?? String(h.id)).padEnd(docWidth);
    const chunk = `#${h.chunk_index ?? "?"}`.padEnd(chunkWidth);
    return `${String(h.rank).padStart(rankWidth)}  ${h.score.toFixed(4)}  ${doc}  ${chunk}  ${text}\n`;
  });
  return head + lines.join("");
}

export function formatHitsJson(plan: SearchPlan, query: string, hits: SearchHit[]): string {
  const out = {
    query,
    collection: plan.collection,
    mode: plan.mode,
    rerank: plan.rerank ?? null,
    limit: plan.limit,
    prefetch_limit: plan.mode === "hybrid" || plan.rerank ? plan.prefetchLimit : null,
    filter_doc: plan.docId ?? null,
    hits,
  };
  return JSON.stringify(out, null, 2) + "\n";
}
