/** Decides what a search will do before anything is embedded: the mode (hybrid by default
 *  when the collection has a sparse vector), the vectors that mode reads and the model
 *  outputs it needs. Every mismatch with the collection or the model's OUTPUTS is found
 *  here, so it fails in a second with a sentence rather than as a 400 after the model has
 *  loaded. Performs no I/O. */
import type { OutputKind } from "../../shared/config.js";
import { VECTOR_NAMES, type QdrantVectors } from "../adapters/qdrant-schema.js";
import { OutputDisabledError, SearchUsageError, VectorMismatchError } from "./search-errors.js";

export const SEARCH_MODES = ["dense", "sparse", "hybrid"] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];
export const RERANKERS = ["colbert"] as const;
export type Reranker = (typeof RERANKERS)[number];

/** The named vectors a collection holds, as far as search cares. */
export interface CollectionVectors {
  name: string;
  dense?: { size: number };
  sparse: boolean;
  colbert?: { size: number };
}

export interface SearchOptions {
  mode?: SearchMode;
  rerank?: Reranker;
  limit: number;
  /** Candidates each retrieval stage hands to fusion or reranking; default 4 x limit. */
  prefetchLimit?: number;
  /** Only chunks of this document. */
  docId?: string;
}

export interface SearchPlan {
  collection: string;
  mode: SearchMode;
  rerank?: Reranker;
  limit: number;
  prefetchLimit: number;
  docId?: string;
  /** The query vectors (= model outputs) this plan sends. */
  needs: OutputKind[];
}

const MODE_VECTORS: Record<SearchMode, OutputKind[]> = {
  dense: ["dense"],
  sparse: ["sparse"],
  hybrid: ["dense", "sparse"],
};

function defaultMode(c: CollectionVectors): SearchMode {
  if (c.sparse) return c.dense ? "hybrid" : "sparse";
  return "dense";
}

/** The option that makes a plan need `kind`, for messages. */
function neededBy(plan: Pick<SearchPlan, "mode" | "rerank">, kind: OutputKind): string {
  return kind === "colbert" && plan.rerank ? `--rerank ${plan.rerank}` : `--mode ${plan.mode}`;
}

function hasVector(c: CollectionVectors, kind: OutputKind): boolean {
  return kind === "sparse" ? c.sparse : c[kind] !== undefined;
}

export function planSearch(o: SearchOptions, c: CollectionVectors): SearchPlan {
  const mode = o.mode ?? defaultMode(c);
  const needs = [...MODE_VECTORS[mode], ...(o.rerank ? [o.rerank] : [])];
  const plan: SearchPlan = {
    collection: c.name,
    mode,
    rerank: o.rerank,
    limit: o.limit,
    prefetchLimit: o.prefetchLimit ?? 4 * o.limit,
    docId: o.docId,
    needs,
  };
  if ((mode === "hybrid" || o.rerank) && plan.prefetchLimit < plan.limit) {
    throw new SearchUsageError(
      `--prefetch-limit ${plan.prefetchLimit} is below --limit ${plan.limit}: ${neededBy(plan, o.rerank ?? "dense")} would return at most ${plan.prefetchLimit} hits`,
    );
  }
  for (const kind of needs) {
    if (!hasVector(c, kind)) {
      const hint = kind === "colbert" ? "; the worker writes it only when its OUTPUTS include colbert" : "";
      throw new VectorMismatchError(
        c.name,
        VECTOR_NAMES[kind],
        `${neededBy(plan, kind)} needs a vector named "${VECTOR_NAMES[kind]}", which this collection does not have${hint}`,
      );
    }
  }
  return plan;
}

/** Fails when the local model is configured without an output the plan needs. */
export function requireOutputs(plan: SearchPlan, outputs: readonly OutputKind[]): void {
  const missing = plan.needs.find((k) => !outputs.includes(k));
  if (missing) throw new OutputDisabledError(missing, neededBy(plan, missing), outputs);
}

/** Fails when the query's vectors cannot be compared with the stored ones: a different model
 *  (size), or a query with no sparse weight at all. */
export function checkQueryVectors(plan: SearchPlan, c: CollectionVectors, v: QdrantVectors): void {
  for (const kind of plan.needs) {
    if (!v[kind])
      throw new SearchUsageError(
        `the model gave this query no ${kind} vector (every token weighs 0); try another --mode`,
      );
  }
  const sizes: Array<[OutputKind, number | undefined, number | undefined]> = [
    ["dense", v.dense?.length, c.dense?.size],
    ["colbert", v.colbert?.[0]?.length, c.colbert?.size],
  ];
  for (const [kind, got, want] of sizes) {
    if (plan.needs.includes(kind) && got !== want) {
      throw new VectorMismatchError(
        c.name,
        VECTOR_NAMES[kind],
        `vector "${VECTOR_NAMES[kind]}" has size ${want}, but the query's has ${got}: is MODEL_DIR (or --embed-url) the model the worker used?`,
      );
    }
  }
}
