/**
 * Read endpoints over stored points: retrieve by ids, scroll with filter and
 * id-ordered paging, count, plus the `with_payload` / `with_vector`
 * selectors shared with the query endpoint.
 *
 * Trade-off: scroll is a full sort of the collection on each call (fine for
 * test-sized data) and `order_by` is rejected rather than emulated.
 */
import { parseFilter } from "./filters.js";
import { isPlainObject, type CollectionState, type PointId, type StoredPoint, type VectorValue } from "./model.js";
import { comparePointIds, describeJson, parsePointId, parsePointIdList } from "./point-ids.js";
import { formatError, noVariant, notSupported, validationError } from "./qdrant-errors.js";
import { filterCandidates, type CollectionStore } from "./collection-store.js";

export type PayloadSelector = (payload: Record<string, unknown>) => Record<string, unknown> | null;
export type VectorSelector = (point: StoredPoint, state: CollectionState) => unknown;

function stringList(raw: unknown, path: string): string[] {
  if (!Array.isArray(raw) || !raw.every((x) => typeof x === "string")) throw noVariant("WithPayloadInterface", path);
  return raw as string[];
}

function pick(payload: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const parts = key.split(".");
    let src: unknown = payload;
    for (const part of parts) src = isPlainObject(src) ? src[part] : undefined;
    if (src === undefined) continue;
    let dst = out;
    parts.slice(0, -1).forEach((part) => {
      if (!isPlainObject(dst[part])) dst[part] = {};
      dst = dst[part] as Record<string, unknown>;
    });
    dst[parts[parts.length - 1]] = structuredClone(src);
  }
  return out;
}

function omit(payload: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out = structuredClone(payload);
  for (const key of keys) delete out[key];
  return out;
}

export function parseWithPayload(raw: unknown, defaultValue: boolean): PayloadSelector {
  if (raw === undefined || raw === null) raw = defaultValue;
  if (typeof raw === "boolean") return raw ? (p) => structuredClone(p) : () => null;
  if (Array.isArray(raw)) {
    const keys = stringList(raw, "with_payload");
    return (p) => pick(p, keys);
  }
  if (isPlainObject(raw) && "include" in raw) {
    const keys = stringList(raw.include, "with_payload.include");
    return (p) => pick(p, keys);
  }
  if (isPlainObject(raw) && "exclude" in raw) {
    const keys = stringList(raw.exclude, "with_payload.exclude");
    return (p) => omit(p, keys);
  }
  throw noVariant("WithPayloadInterface", "with_payload");
}

function renderVectors(point: StoredPoint, state: CollectionState, names: string[] | null): unknown {
  // A collection with a single unnamed vector returns the bare vector, not a map.
  if (state.schema.singleUnnamed && names === null) return structuredClone(point.vector[""] ?? null);
  const out: Record<string, VectorValue> = {};
  for (const [name, v] of Object.entries(point.vector)) {
    if (names === null || names.includes(name)) out[name] = structuredClone(v);
  }
  return out;
}

export function parseWithVector(raw: unknown): VectorSelector {
  if (raw === undefined || raw === null || raw === false) return () => null;
  if (raw === true) return (p, s) => renderVectors(p, s, null);
  if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) {
    const names = raw as string[];
    return (p, s) => renderVectors(p, s, names);
  }
  throw noVariant("WithVector", "with_vector");
}

export function renderRecord(
  p: StoredPoint,
  s: CollectionState,
  payload: PayloadSelector,
  vector: VectorSelector,
): Record<string, unknown> {
  return { id: p.id, payload: payload(p.payload), vector: vector(p, s) };
}

function requireObject(body: unknown, structName: string): Record<string, unknown> {
  if (!isPlainObject(body)) throw formatError(`invalid type: ${describeJson(body)}, expected struct ${structName}`);
  return body;
}

function parseLimit(raw: unknown, fallback: number, path = "limit"): number {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0) {
    throw formatError(`invalid type: ${describeJson(raw)}, expected usize`, path);
  }
  if (raw < 1) throw validationError([{ path, message: `value ${raw} invalid, must be 1 or larger` }]);
  return raw;
}

export function retrievePoints(store: CollectionStore, name: string, body: unknown): unknown[] {
  const req = requireObject(body, "PointRequest");
  if (req.ids === undefined) throw formatError("missing field `ids`");
  const ids = parsePointIdList(req.ids, "ids");
  const payload = parseWithPayload(req.with_payload, true);
  const vector = parseWithVector(req.with_vector);
  const state = store.get(name);
  const seen = new Set<PointId>();
  const out: unknown[] = [];
  for (const id of ids) {
    const p = state.points.get(id);
    if (!p || seen.has(id)) continue;
    seen.add(id);
    out.push(renderRecord(p, state, payload, vector));
  }
  return out;
}

export function scrollPoints(store: CollectionStore, name: string, body: unknown): Record<string, unknown> {
  const req = requireObject(body ?? {}, "ScrollRequest");
  if (req.order_by !== undefined && req.order_by !== null) throw notSupported("`order_by` in scroll");
  const limit = parseLimit(req.limit, 10);
  const offset = req.offset === undefined || req.offset === null ? null : parsePointId(req.offset, "offset");
  const predicate = parseFilter(req.filter);
  const payload = parseWithPayload(req.with_payload, true);
  const vector = parseWithVector(req.with_vector);
  const state = store.get(name);
  const matching = [...filterCandidates(state, req.filter)]
    .filter((p) => offset === null || comparePointIds(p.id, offset) >= 0)
    .filter(predicate)
    .sort((a, b) => comparePointIds(a.id, b.id));
  const page = matching.slice(0, limit);
  const next = matching.length > limit ? matching[limit].id : null;
  return { points: page.map((p) => renderRecord(p, state, payload, vector)), next_page_offset: next };
}

export function countPoints(store: CollectionStore, name: string, body: unknown): { count: number } {
  const req = requireObject(body ?? {}, "CountRequest");
  if (req.exact !== undefined && req.exact !== null && typeof req.exact !== "boolean") {
    throw formatError(`invalid type: ${describeJson(req.exact)}, expected a boolean`, "exact");
  }
  const predicate = parseFilter(req.filter);
  const state = store.get(name);
  return { count: [...filterCandidates(state, req.filter)].filter(predicate).length };
}

export { parseLimit, requireObject };
