/**
 * `POST /collections/{name}/points/query` for plain nearest-neighbour search:
 * dense (Cosine/Dot/Euclid/Manhattan), multivector max_sim, and sparse dot
 * product over shared indices (with IDF weighting when the collection's
 * sparse vector has `modifier: "idf"`). Brute force over all points.
 *
 * Trade-off: prefetch, fusion (RRF/DBSF), recommend/discover/context,
 * formula, order_by, sample, query-by-id and lookup_from answer 400
 * "not supported by the test server" rather than returning something that
 * merely looks plausible.
 */
import { parseFilter } from "./filters.js";
import {
  isMulti, isPlainObject, isSparse,
  type CollectionState, type DenseVectorConfig, type Distance, type SparseVector, type StoredPoint, type VectorValue,
} from "./model.js";
import { comparePointIds, describeJson } from "./point-ids.js";
import { parseLimit, parseWithPayload, parseWithVector, requireObject } from "./point-reads.js";
import { checkVectorAgainstSchema, normalizeForStorage, parseVector } from "./point-validation.js";
import { formatError, notSupported, validationError, wrongInput } from "./qdrant-errors.js";
import type { CollectionStore } from "./collection-store.js";

const UNSUPPORTED_KEYS = ["prefetch", "lookup_from", "shard_key"];
const UNSUPPORTED_QUERY_KINDS = ["recommend", "discover", "context", "fusion", "rrf", "formula", "order_by", "sample", "mmr"];

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function denseScore(distance: Distance, a: number[], b: number[]): number {
  if (distance === "Cosine" || distance === "Dot") return dot(a, b);
  if (distance === "Euclid") return Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
  return a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0);
}

/** Euclid/Manhattan are distances: smaller is better. */
function higherIsBetter(distance: Distance): boolean {
  return distance === "Cosine" || distance === "Dot";
}

function maxSim(distance: Distance, query: number[][], doc: number[][]): number {
  const better = higherIsBetter(distance) ? Math.max : Math.min;
  return query.reduce((sum, q) => sum + better(...doc.map((d) => denseScore(distance, q, d))), 0);
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
function sparseScore(query: SparseVector, doc: SparseVector, idf: Map<number, number> | null): number | null {
  const docValues = new Map(doc.indices.map((idx, i) => [idx, doc.values[i]]));
  let score = 0;
  let overlap = false;
  query.indices.forEach((idx, i) => {
    const d = docValues.get(idx);
    if (d === undefined) return;
    overlap = true;
    score += query.values[i] * d * (idf ? idf.get(idx) ?? 1 : 1);
  });
  return overlap ? score : null;
}

function parseQueryVector(raw: unknown): VectorValue {
  if (isPlainObject(raw) && "nearest" in raw) return parseQueryVector(raw.nearest);
  if (isPlainObject(raw)) {
    for (const k of UNSUPPORTED_QUERY_KINDS) if (k in raw) throw notSupported(`\`${k}\` query`);
  }
  if (typeof raw === "string" || typeof raw === "number") throw notSupported("query by point id");
  return parseVector(raw, "query");
}

function scorer(state: CollectionState, using: string, query: VectorValue): (p: StoredPoint) => number | null {
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

function parseOffset(raw: unknown): number {
  if (raw === undefined || raw === null) return 0;
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0) {
    throw formatError(`invalid type: ${describeJson(raw)}, expected usize`, "offset");
  }
  return raw;
}

export function queryPoints(store: CollectionStore, name: string, body: unknown): { points: unknown[] } {
  const req = requireObject(body ?? {}, "QueryRequestInternal");
  for (const k of UNSUPPORTED_KEYS) if (req[k] !== undefined && req[k] !== null) throw notSupported(`\`${k}\` in query`);
  if (req.query === undefined || req.query === null) throw notSupported("query without `query` (id-ordered listing)");
  const query = parseQueryVector(req.query);
  if (isSparse(query) && query.indices.length !== query.values.length) {
    throw validationError([{ path: "query.values", message: "must be the same length as indices" }]);
  }
  const using = req.using === undefined || req.using === null ? "" : req.using;
  if (typeof using !== "string") throw formatError(`invalid type: ${describeJson(using)}, expected a string`, "using");
  const limit = parseLimit(req.limit, 10);
  const offset = parseOffset(req.offset);
  const threshold = req.score_threshold;
  if (threshold !== undefined && threshold !== null && typeof threshold !== "number") {
    throw formatError(`invalid type: ${describeJson(threshold)}, expected f32`, "score_threshold");
  }
  const predicate = parseFilter(req.filter);
  const payload = parseWithPayload(req.with_payload, false);
  const vector = parseWithVector(req.with_vector);
  const state = store.get(name);
  if (!state.schema.dense.has(using) && !state.schema.sparse.has(using)) {
    throw wrongInput(`Not existing vector name error: ${using}`);
  }
  const score = scorer(state, using, query);
  const higher = isSparse(query) || higherIsBetter(state.schema.dense.get(using)!.distance);
  const scored = [...state.points.values()]
    .filter(predicate)
    .map((p) => ({ p, s: score(p) }))
    .filter((x): x is { p: StoredPoint; s: number } => x.s !== null)
    .filter((x) => typeof threshold !== "number" || (higher ? x.s >= threshold : x.s <= threshold))
    .sort((a, b) => (higher ? b.s - a.s : a.s - b.s) || comparePointIds(a.p.id, b.p.id));
  const points = scored.slice(offset, offset + limit).map(({ p, s }) => ({
    id: p.id,
    version: state.versions.get(p.id) ?? 0,
    score: s,
    payload: payload(p.payload),
    vector: vector(p, state),
  }));
  return { points };
}
