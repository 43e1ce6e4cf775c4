/**
 * How the test server scores one stored point against one query vector, as
 * Qdrant does: dense Cosine (vectors stored and queried normalised, so a dot
 * product) / Dot / Euclid / Manhattan; sparse dot product over shared indices
 * (IDF-weighted when the collection's sparse vector has `modifier: "idf"`);
 * and multivectors by `max_sim`.
 *
 * max_sim follows Qdrant's `score_max_similarity`: for each query row, the
 * best similarity over the stored rows, summed. Qdrant's similarity for
 * Euclid is minus the squared distance and for Manhattan minus the L1
 * distance, and the summed score is then post-processed like any Euclid or
 * Manhattan score (square root of its magnitude, or its magnitude). So a
 * Euclid multivector scores sqrt(sum of each row's smallest squared
 * distance), not a sum of distances. Pure; brute force.
 */
import {
  isMulti,
  isSparse,
  type CollectionState,
  type DenseVectorConfig,
  type Distance,
  type SparseVector,
  type StoredPoint,
  type VectorValue,
} from "./model.js";
import { checkVectorAgainstSchema, normalizeForStorage } from "./point-validation.js";

export type PointScorer = (p: StoredPoint) => number | null;

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function squaredEuclid(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

function manhattan(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s;
}

/** Qdrant's raw similarity: larger is always better before post-processing. */
function similarity(distance: Distance, a: number[], b: number[]): number {
  if (distance === "Cosine" || distance === "Dot") return dot(a, b);
  if (distance === "Euclid") return -squaredEuclid(a, b);
  return -manhattan(a, b);
}

/** Qdrant's `postprocess_score`: Euclid and Manhattan report distances. */
function postprocess(distance: Distance, score: number): number {
  if (distance === "Euclid") return Math.sqrt(Math.abs(score));
  if (distance === "Manhattan") return Math.abs(score);
  return score;
}

export function denseScore(distance: Distance, a: number[], b: number[]): number {
  return postprocess(distance, similarity(distance, a, b));
}

/** Euclid/Manhattan are distances: smaller is better. */
export function higherIsBetter(distance: Distance): boolean {
  return distance === "Cosine" || distance === "Dot";
}

/** Sum over query rows of the best similarity to any stored row, then post-processed. */
export function maxSim(distance: Distance, query: number[][], doc: number[][]): number {
  let sum = 0;
  for (const q of query) {
    let best = -Infinity;
    for (const d of doc) best = Math.max(best, similarity(distance, q, d));
    sum += best;
  }
  return postprocess(distance, sum);
}

function idfWeights(state: CollectionState, name: string, query: SparseVector): Map<number, number> {
  const total = [...state.points.values()].filter((p) => name in p.vector).length;
  const weights = new Map<number, number>();
  for (const index of query.indices) {
    let n = 0;
    for (const p of state.points.values()) {
      const v = p.vector[name];
      if (v && isSparse(v) && v.indices.includes(index)) n++;
    }
    weights.set(index, Math.log((total - n + 0.5) / (n + 0.5) + 1));
  }
  return weights;
}

/** Sparse dot product; null when no index overlaps (Qdrant does not return such points). */
export function sparseScore(query: SparseVector, doc: SparseVector, idf: Map<number, number> | null): number | null {
  const docValues = new Map(doc.indices.map((idx, i) => [idx, doc.values[i]]));
  let score = 0;
  let overlap = false;
  query.indices.forEach((idx, i) => {
    const d = docValues.get(idx);
    if (d === undefined) return;
    overlap = true;
    score += query.values[i] * d * (idf ? (idf.get(idx) ?? 1) : 1);
  });
  return overlap ? score : null;
}

/** A scorer for `query` on vector `using`; null for points without that vector. Checks the
 *  query against the collection schema first (throws Qdrant's "Wrong input" errors). */
export function vectorScorer(state: CollectionState, using: string, query: VectorValue): PointScorer {
  checkVectorAgainstSchema(using, query, state.schema);
  if (isSparse(query)) {
    const idf = state.schema.sparse.get(using)!.idf ? idfWeights(state, using, query) : null;
    return (p) => {
      const v = p.vector[using];
      return v && isSparse(v) ? sparseScore(query, v, idf) : null;
    };
  }
  const cfg = state.schema.dense.get(using) as DenseVectorConfig;
  const q = normalizeForStorage(using, query, state.schema) as number[] | number[][];
  return (p) => {
    const v = p.vector[using];
    if (!v || isSparse(v)) return null;
    if (isMulti(q)) return maxSim(cfg.distance, q, v as number[][]);
    return denseScore(cfg.distance, q, v as number[]);
  };
}

/** Whether larger scores are better for a query on `using` (sparse: always). */
export function higherIsBetterFor(state: CollectionState, using: string): boolean {
  const dense = state.schema.dense.get(using);
  return dense === undefined || higherIsBetter(dense.distance);
}
