/**
 * Qdrant payload filters: parsing (strict, unknown shapes → 400) and
 * evaluation against stored points.
 *
 * Supported: `must` / `should` / `must_not` (array or single condition),
 * nested filters as conditions, field conditions with `match`
 * (`value`, `any`, `except`, `text`), numeric `range`, `is_empty`, `is_null`,
 * `has_id`, `has_vector`. Keys may be dotted paths with `[]` array markers;
 * arrays anywhere on the path are flattened as Qdrant does.
 *
 * Trade-off: geo, datetime ranges, values_count, `nested`, `min_should` and
 * slices answer 400 "not supported by the test server" instead of being
 * silently ignored, so a test can never pass on a filter this server skipped.
 */
import { isPlainObject, type PointId, type StoredPoint } from "./model.js";
import { describeJson, parsePointIdList } from "./point-ids.js";
import { formatError, noVariant, notSupported } from "./qdrant-errors.js";

export type Predicate = (point: StoredPoint) => boolean;

const UNSUPPORTED_FIELD_KEYS = ["geo_bounding_box", "geo_radius", "geo_polygon", "values_count"];
const UNSUPPORTED_CONDITIONS = ["nested", "slice"];

/** All values at a payload path, with arrays flattened (Qdrant's multi-value semantics). */
export function valuesAtPath(payload: Record<string, unknown>, key: string): unknown[] {
  let current: unknown[] = [payload];
  for (const rawSegment of key.split(".")) {
    const segment = rawSegment.endsWith("[]") ? rawSegment.slice(0, -2) : rawSegment;
    const next: unknown[] = [];
    for (const v of current.flatMap((x) => (Array.isArray(x) ? x : [x]))) {
      if (isPlainObject(v) && segment in v) next.push(v[segment]);
    }
    current = next;
  }
  return current.flatMap((x) => (Array.isArray(x) ? x : [x]));
}

function isScalarKey(v: unknown): v is string | number | boolean {
  return typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isInteger(v));
}

function scalarList(raw: unknown, path: string): Array<string | number> {
  if (
    !Array.isArray(raw) ||
    !raw.every((x) => typeof x === "string" || (typeof x === "number" && Number.isInteger(x)))
  ) {
    throw noVariant("Match", path);
  }
  return raw as Array<string | number>;
}

function parseMatch(raw: unknown, key: string, path: string): Predicate {
  if (!isPlainObject(raw)) throw noVariant("Match", path);
  const values = (p: StoredPoint) => valuesAtPath(p.payload, key);
  if ("value" in raw) {
    const want = raw.value;
    if (!isScalarKey(want)) throw noVariant("Match", `${path}.value`);
    return (p) => values(p).some((v) => v === want);
  }
  if ("any" in raw) {
    const set = new Set(scalarList(raw.any, `${path}.any`));
    return (p) => values(p).some((v) => set.has(v as string | number));
  }
  if ("except" in raw) {
    const set = new Set(scalarList(raw.except, `${path}.except`));
    // Qdrant treats `except` as "not any of": a point without the key matches.
    return (p) => !values(p).some((v) => set.has(v as string | number));
  }
  if ("text" in raw && typeof raw.text === "string") {
    const needle = raw.text;
    return (p) => values(p).some((v) => typeof v === "string" && v.includes(needle));
  }
  if ("text_any" in raw || "phrase" in raw || "prefix" in raw) throw notSupported(`match form in ${path}`);
  throw noVariant("Match", path);
}

function parseRange(raw: unknown, key: string, path: string): Predicate {
  if (!isPlainObject(raw)) throw noVariant("RangeInterface", path);
  const bounds: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!["gt", "gte", "lt", "lte"].includes(k)) throw formatError(`unknown field \`${k}\``, path);
    if (v === null) continue;
    if (typeof v === "string") throw notSupported(`datetime range in ${path}`);
    if (typeof v !== "number") throw noVariant("RangeInterface", `${path}.${k}`);
    bounds[k] = v;
  }
  const inRange = (x: number) =>
    (bounds.gt === undefined || x > bounds.gt) &&
    (bounds.gte === undefined || x >= bounds.gte) &&
    (bounds.lt === undefined || x < bounds.lt) &&
    (bounds.lte === undefined || x <= bounds.lte);
  return (p) => valuesAtPath(p.payload, key).some((v) => typeof v === "number" && inRange(v));
}

function isEmptyAt(p: StoredPoint, key: string): boolean {
  return valuesAtPath(p.payload, key).every((v) => v === null);
}

function parseFieldCondition(raw: Record<string, unknown>, path: string): Predicate {
  const key = raw.key;
  if (typeof key !== "string")
    throw formatError(`invalid type: ${describeJson(key)}, expected a string`, `${path}.key`);
  for (const k of UNSUPPORTED_FIELD_KEYS)
    if (raw[k] !== undefined && raw[k] !== null) throw notSupported(`\`${k}\` condition`);
  const parts: Predicate[] = [];
  if (raw.match !== undefined && raw.match !== null) parts.push(parseMatch(raw.match, key, `${path}.match`));
  if (raw.range !== undefined && raw.range !== null) parts.push(parseRange(raw.range, key, `${path}.range`));
  if (raw.is_empty === true) parts.push((p) => isEmptyAt(p, key));
  if (raw.is_null === true) parts.push((p) => valuesAtPath(p.payload, key).some((v) => v === null));
  if (parts.length === 0) throw noVariant("Condition", path);
  return (p) => parts.every((f) => f(p));
}

function keyOf(raw: unknown, path: string): string {
  if (isPlainObject(raw) && typeof raw.key === "string") return raw.key;
  throw noVariant("Condition", path);
}

function parseCondition(raw: unknown, path: string): Predicate {
  if (!isPlainObject(raw)) throw noVariant("Condition", path);
  for (const k of UNSUPPORTED_CONDITIONS) if (k in raw) throw notSupported(`\`${k}\` condition`);
  if ("key" in raw) return parseFieldCondition(raw, path);
  if ("has_id" in raw) {
    const ids = new Set<PointId>(parsePointIdList(raw.has_id, `${path}.has_id`));
    return (p) => ids.has(p.id);
  }
  if ("has_vector" in raw) {
    const name = raw.has_vector;
    if (typeof name !== "string") throw noVariant("Condition", `${path}.has_vector`);
    return (p) => name in p.vector;
  }
  if ("is_empty" in raw) {
    const key = keyOf(raw.is_empty, `${path}.is_empty`);
    return (p) => isEmptyAt(p, key);
  }
  if ("is_null" in raw) {
    const key = keyOf(raw.is_null, `${path}.is_null`);
    return (p) => valuesAtPath(p.payload, key).some((v) => v === null);
  }
  if ("must" in raw || "should" in raw || "must_not" in raw || "min_should" in raw) return parseFilter(raw, path);
  throw noVariant("Condition", path);
}

function conditionList(raw: unknown, path: string): Predicate[] | null {
  if (raw === undefined || raw === null) return null;
  if (Array.isArray(raw)) return raw.map((c, i) => parseCondition(c, `${path}[${i}]`));
  return [parseCondition(raw, path)];
}

/** Parse a Filter object into a predicate; `undefined`/`null` means "all points". */
export function parseFilter(raw: unknown, path = "filter"): Predicate {
  if (raw === undefined || raw === null) return () => true;
  if (!isPlainObject(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected struct Filter`, path);
  for (const k of Object.keys(raw)) {
    if (k === "min_should") throw notSupported("`min_should`");
    if (!["must", "should", "must_not"].includes(k)) {
      throw formatError(
        `unknown field \`${k}\`, expected one of \`should\`, \`min_should\`, \`must\`, \`must_not\``,
        path,
      );
    }
  }
  const must = conditionList(raw.must, `${path}.must`);
  const should = conditionList(raw.should, `${path}.should`);
  const mustNot = conditionList(raw.must_not, `${path}.must_not`);
  return (p) =>
    (must === null || must.every((f) => f(p))) &&
    (should === null || should.length === 0 || should.some((f) => f(p))) &&
    (mustNot === null || !mustNot.some((f) => f(p)));
}
