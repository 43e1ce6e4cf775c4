/** Turns a search plan and the query's vectors into one request for Qdrant's Query API
 *  (`POST /collections/{name}/points/query`). dense and sparse are one nearest-neighbour
 *  search on their named vector; hybrid runs both as prefetches and fuses their rankings
 *  with reciprocal rank fusion, which needs no score calibration between the two; a ColBERT
 *  rerank wraps whichever retrieval as the prefetch of a max_sim query on "colbert", so the
 *  costly multivector comparison only sees `prefetchLimit` candidates (the worker stores it
 *  without an HNSW index for that reason). The doc_id filter sits on every stage that
 *  searches the index; fusion and rerank only reorder what those stages found. Pure. */
import type { Schemas } from "@qdrant/js-client-rest";
import { PAYLOAD_FIELDS, VECTOR_NAMES, type QdrantVectors } from "../adapters/qdrant-schema.js";
import type { SearchPlan } from "./search-plan.js";

export type QueryRequest = Schemas["QueryRequest"];
type Prefetch = Schemas["Prefetch"];
type Filter = Schemas["Filter"];

export function docFilter(docId: string | undefined): Filter | undefined {
  return docId === undefined ? undefined : { must: [{ key: PAYLOAD_FIELDS.docId, match: { value: docId } }] };
}

function nearest(kind: "dense" | "sparse", v: QdrantVectors, limit: number, filter: Filter | undefined): Prefetch {
  const query = v[kind];
  if (!query) throw new Error(`no ${kind} query vector; checkQueryVectors should have refused this plan (a bug)`);
  return { query, using: VECTOR_NAMES[kind], limit, ...(filter ? { filter } : {}) };
}

/** The first stage: `limit` candidates by dense, sparse or their RRF fusion. */
function retrieval(plan: SearchPlan, v: QdrantVectors, limit: number): Prefetch {
  const filter = docFilter(plan.docId);
  if (plan.mode !== "hybrid") return nearest(plan.mode, v, limit, filter);
  return {
    prefetch: [nearest("dense", v, plan.prefetchLimit, filter), nearest("sparse", v, plan.prefetchLimit, filter)],
    query: { fusion: "rrf" },
    limit,
  };
}

function colbertRerank(plan: SearchPlan, v: QdrantVectors): Prefetch {
  const rows = v[VECTOR_NAMES.colbert];
  if (!rows) throw new Error("no colbert query vector; checkQueryVectors should have refused this plan (a bug)");
  return {
    prefetch: retrieval(plan, v, plan.prefetchLimit),
    query: rows,
    using: VECTOR_NAMES.colbert,
    limit: plan.limit,
  };
}

export function buildQueryRequest(plan: SearchPlan, v: QdrantVectors): QueryRequest {
  const stage = plan.rerank === "colbert" ? colbertRerank(plan, v) : retrieval(plan, v, plan.limit);
  return { ...stage, with_payload: true };
}
