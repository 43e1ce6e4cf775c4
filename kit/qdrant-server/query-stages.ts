/**
 * The Query API's request tree: a QueryRequest and its `prefetch` stages
 * (one object or a list, nested to any depth up to Qdrant's 64), each with
 * its own `query`, `using`, `filter`, `limit` (default 10) and
 * `score_threshold`. Parsed strictly into Stage objects; Qdrant's request
 * shapes (QueryRequest, Prefetch, FusionQuery `{"fusion": "rrf"}`, RrfQuery
 * `{"rrf": {"k": n}}`, NearestQuery, plain vectors) and its planner's
 * refusals (Qdrant 1.13+ wording): 400 "Wrong input: Validation failed:
 * cannot apply Fusion without prefetches" / "cannot have prefetches without
 * a query" / "prefetches depth N exceeds max depth 64"; 422 for a limit or
 * k below 1.
 *
 * Trade-off: DBSF fusion, RRF weights, recommend/discover/context, formula,
 * order_by, sample, MMR and query by point id answer 400 "not supported by
 * the test server"; search `params` (hnsw_ef, exact, quantization) are
 * accepted and have no effect, since every search here is exact.
 */
import { parseFilter, type Predicate } from "./filters.js";
import { isPlainObject, isSparse, type VectorValue } from "./model.js";
import { describeJson } from "./point-ids.js";
import { parseLimit } from "./point-reads.js";
import { parseVector } from "./point-validation.js";
import { formatError, noVariant, notSupported, validationError, wrongInput } from "./qdrant-errors.js";
import { DEFAULT_RRF_K } from "./score-fusion.js";

const MAX_PREFETCH_DEPTH = 64;
const UNSUPPORTED_QUERY_KINDS = ["recommend", "discover", "context", "formula", "order_by", "sample", "mmr"];

export type StageQuery = { kind: "nearest"; vector: VectorValue; using: string } | { kind: "rrf"; k: number };

export interface Stage {
  query: StageQuery | null;
  prefetch: Stage[];
  filter: Predicate;
  limit: number;
  threshold: number | null;
}

function parseRrf(raw: unknown, path: string): StageQuery {
  if (!isPlainObject(raw)) throw noVariant("QueryInterface", path);
  if (raw.weights !== undefined && raw.weights !== null) throw notSupported("`weights` in rrf");
  const k = raw.k;
  if (k === undefined || k === null) return { kind: "rrf", k: DEFAULT_RRF_K };
  if (typeof k !== "number" || !Number.isInteger(k) || k < 0) {
    throw formatError(`invalid type: ${describeJson(k)}, expected usize`, `${path}.k`);
  }
  if (k < 1) throw validationError([{ path: `${path}.k`, message: `value ${k} invalid, must be 1 or larger` }]);
  return { kind: "rrf", k };
}

function parseVectorInput(raw: unknown, path: string): VectorValue {
  if (typeof raw === "string" || typeof raw === "number") throw notSupported("query by point id");
  const vector = parseVector(raw, path);
  if (isSparse(vector) && vector.indices.length !== vector.values.length) {
    throw validationError([{ path: `${path}.values`, message: "must be the same length as indices" }]);
  }
  return vector;
}

/** `query` of a request or prefetch: a vector, `{nearest}`, `{fusion}` or `{rrf}`. */
function parseQuery(raw: unknown, using: string, path: string): StageQuery | null {
  if (raw === undefined || raw === null) return null;
  if (isPlainObject(raw)) {
    for (const k of UNSUPPORTED_QUERY_KINDS) if (k in raw) throw notSupported(`\`${k}\` query`);
    if ("nearest" in raw) return { kind: "nearest", vector: parseVectorInput(raw.nearest, `${path}.nearest`), using };
    if ("fusion" in raw) {
      if (raw.fusion === "dbsf") throw notSupported("`dbsf` fusion");
      if (raw.fusion !== "rrf") throw noVariant("QueryInterface", path);
      return { kind: "rrf", k: DEFAULT_RRF_K };
    }
    if ("rrf" in raw) return parseRrf(raw.rrf, `${path}.rrf`);
  }
  return { kind: "nearest", vector: parseVectorInput(raw, path), using };
}

function parseUsing(raw: unknown, path: string): string {
  if (raw === undefined || raw === null) return "";
  if (typeof raw !== "string") throw formatError(`invalid type: ${describeJson(raw)}, expected a string`, path);
  return raw;
}

function parseThreshold(raw: unknown, path: string): number | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "number") throw formatError(`invalid type: ${describeJson(raw)}, expected f32`, path);
  return raw;
}

function parsePrefetchList(raw: unknown, path: string): Stage[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) && !isPlainObject(raw)) throw noVariant("OneOrMany", path);
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((p, i) => {
    const at = Array.isArray(raw) ? `${path}[${i}]` : path;
    if (!isPlainObject(p)) throw formatError(`invalid type: ${describeJson(p)}, expected struct Prefetch`, at);
    if (p.lookup_from !== undefined && p.lookup_from !== null) throw notSupported("`lookup_from` in prefetch");
    return parseStage(p, `${at}.`);
  });
}

/** One stage (the request itself with prefix "", or a prefetch with prefix "prefetch[0]."). */
export function parseStage(raw: Record<string, unknown>, prefix = ""): Stage {
  const using = parseUsing(raw.using, `${prefix}using`);
  return {
    prefetch: parsePrefetchList(raw.prefetch, `${prefix}prefetch`),
    query: parseQuery(raw.query, using, `${prefix}query`),
    filter: parseFilter(raw.filter, `${prefix}filter`),
    limit: parseLimit(raw.limit, 10, `${prefix}limit`),
    threshold: parseThreshold(raw.score_threshold, `${prefix}score_threshold`),
  };
}

function depth(stage: Stage): number {
  return stage.prefetch.length === 0 ? 0 : 1 + Math.max(...stage.prefetch.map(depth));
}

/** Qdrant's planner (OperationError::ValidationError → 400 "Wrong input: Validation failed: ..."). */
function planError(description: string): Error {
  return wrongInput(`Validation failed: ${description}`);
}

/** A nested stage's prefetches are planned before its own query is looked at. */
function checkStage(stage: Stage): void {
  if (stage.prefetch.length === 0) {
    if (stage.query?.kind === "rrf") throw planError("cannot apply Fusion without prefetches");
    if (stage.query === null) throw notSupported("query without `query` (id-ordered listing)");
    return;
  }
  stage.prefetch.forEach(checkStage);
  if (stage.query === null) throw planError("cannot have prefetches without a query");
}

/** Qdrant's planning checks, in its order: depth, the root's query, then the prefetches. */
export function checkStages(root: Stage): void {
  const d = depth(root);
  if (d > MAX_PREFETCH_DEPTH) throw planError(`prefetches depth ${d} exceeds max depth ${MAX_PREFETCH_DEPTH}`);
  if (root.prefetch.length > 0 && root.query === null) throw planError("cannot have prefetches without a query");
  checkStage(root);
}
