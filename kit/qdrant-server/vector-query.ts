/**
 * `POST /collections/{name}/points/query`: nearest-neighbour search on one
 * named vector (dense, sparse or multivector max_sim, see vector-scoring.ts),
 * and the Query API's prefetch pipeline (query-stages.ts): leaves search the
 * collection under every filter from the root down to them, a stage with a
 * vector query rescores the union of its prefetches' results on its own
 * `using` vector, and a fusion stage merges their rankings by RRF
 * (score-fusion.ts). Each stage keeps its `limit` and `score_threshold`;
 * the request keeps `limit + offset` and skips `offset` at the end (Qdrant
 * 1.13+ no longer adds the offset to prefetch limits).
 *
 * Trade-off: brute force over all points; what query-stages.ts does not
 * parse answers 400 "not supported by the test server" rather than returning
 * something that merely looks plausible.
 */
import type { Predicate } from "./filters.js";
import type { CollectionState, PointId, StoredPoint } from "./model.js";
import { comparePointIds, describeJson } from "./point-ids.js";
import { parseWithPayload, parseWithVector, requireObject } from "./point-reads.js";
import { formatError, notSupported, wrongInput } from "./qdrant-errors.js";
import { checkStages, parseStage, type Stage } from "./query-stages.js";
import { rrfFuse } from "./score-fusion.js";
import { higherIsBetterFor, vectorScorer } from "./vector-scoring.js";
import type { CollectionStore } from "./collection-store.js";

const UNSUPPORTED_KEYS = ["lookup_from", "shard_key"];

interface Scored {
  p: StoredPoint;
  s: number;
}

function parseOffset(raw: unknown): number {
  if (raw === undefined || raw === null) return 0;
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0) {
    throw formatError(`invalid type: ${describeJson(raw)}, expected usize`, "offset");
  }
  return raw;
}

/** Scores `candidates` with the stage's vector query; points without that vector drop out. */
function rescore(state: CollectionState, stage: Stage, candidates: Iterable<StoredPoint>): Scored[] {
  const q = stage.query;
  if (q?.kind !== "nearest") throw new Error("rescore without a vector query; checkStages should have refused it");
  if (!state.schema.dense.has(q.using) && !state.schema.sparse.has(q.using)) {
    throw wrongInput(`Not existing vector name error: ${q.using}`);
  }
  const score = vectorScorer(state, q.using, q.vector);
  const out: Scored[] = [];
  for (const p of candidates) {
    const s = score(p);
    if (s !== null) out.push({ p, s });
  }
  return out;
}

function keepBest(scored: Scored[], higher: boolean, threshold: number | null, limit: number): Scored[] {
  return scored
    .filter((x) => threshold === null || (higher ? x.s >= threshold : x.s <= threshold))
    .sort((a, b) => (higher ? b.s - a.s : a.s - b.s) || comparePointIds(a.p.id, b.p.id))
    .slice(0, limit);
}

/** Runs one stage, keeping `limit`; `filters` are those of every stage above it (applied at the leaves). */
function runStage(state: CollectionState, stage: Stage, filters: Predicate[], limit: number): Scored[] {
  const own = [...filters, stage.filter];
  if (stage.prefetch.length === 0) {
    const matching = [...state.points.values()].filter((p) => own.every((f) => f(p)));
    const using = stage.query?.kind === "nearest" ? stage.query.using : "";
    return keepBest(rescore(state, stage, matching), higherIsBetterFor(state, using), stage.threshold, limit);
  }
  const sources = stage.prefetch.map((child) => runStage(state, child, own, child.limit));
  if (stage.query?.kind === "rrf") {
    const fused = rrfFuse(
      sources.map((list) => list.map((x) => ({ id: x.p.id, item: x.p }))),
      stage.query.k,
    );
    return keepBest(
      fused.map((f) => ({ p: f.item, s: f.score })),
      true,
      stage.threshold,
      limit,
    );
  }
  const union = new Map<PointId, StoredPoint>();
  for (const list of sources) for (const x of list) union.set(x.p.id, x.p);
  const using = stage.query?.kind === "nearest" ? stage.query.using : "";
  return keepBest(rescore(state, stage, union.values()), higherIsBetterFor(state, using), stage.threshold, limit);
}

export function queryPoints(store: CollectionStore, name: string, body: unknown): { points: unknown[] } {
  const req = requireObject(body ?? {}, "QueryRequestInternal");
  for (const k of UNSUPPORTED_KEYS)
    if (req[k] !== undefined && req[k] !== null) throw notSupported(`\`${k}\` in query`);
  const root = parseStage(req);
  const offset = parseOffset(req.offset);
  const payload = parseWithPayload(req.with_payload, false);
  const vector = parseWithVector(req.with_vector);
  const state = store.get(name);
  checkStages(root);
  const points = runStage(state, root, [], root.limit + offset)
    .slice(offset)
    .map(({ p, s }) => ({
      id: p.id,
      version: state.versions.get(p.id) ?? 0,
      score: s,
      payload: payload(p.payload),
      vector: vector(p, state),
    }));
  return { points };
}
