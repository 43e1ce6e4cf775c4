/**
 * Point id parsing and ordering, mirroring Qdrant's `ExtendedPointId`:
 * an unsigned 64-bit integer or a UUID string (simple, hyphenated, braced or
 * urn form, any case) that is stored and returned in canonical lowercase
 * hyphenated form. Scroll order is: all integer ids ascending, then UUIDs
 * ascending by their 128-bit value (equivalently by canonical hex string).
 *
 * Trade-off: integers above Number.MAX_SAFE_INTEGER are rejected with a
 * test-server error instead of being accepted as Qdrant would, because
 * JSON.parse has already lost their exact value and silently storing a
 * different id would make exactly-once assertions lie.
 */
import type { PointId } from "./model.js";
import { formatError, notSupported } from "./qdrant-errors.js";

const HEX32 = /^[0-9a-fA-F]{32}$/;
const HYPHENATED = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Canonical UUID or null when the string is not a UUID Qdrant would accept. */
export function canonicalUuid(raw: string): string | null {
  let s = raw;
  if (s.toLowerCase().startsWith("urn:uuid:")) s = s.slice("urn:uuid:".length);
  else if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
  let hex: string;
  if (HYPHENATED.test(s)) hex = s.replace(/-/g, "");
  else if (HEX32.test(s)) hex = s;
  else return null;
  hex = hex.toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function invalidId(raw: unknown, path: string): Error {
  const shown = typeof raw === "string" ? raw : JSON.stringify(raw);
  return formatError(
    `value ${shown} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
    path,
  );
}

/** Parse one id from a request body; throws a 400 format error when invalid. */
export function parsePointId(raw: unknown, path: string): PointId {
  if (typeof raw === "number") {
    if (!Number.isInteger(raw) || raw < 0) throw invalidId(raw, path);
    if (!Number.isSafeInteger(raw)) {
      throw notSupported(`integer point id ${raw} above 2^53-1 (${path})`);
    }
    return raw;
  }
  if (typeof raw === "string") {
    const uuid = canonicalUuid(raw);
    if (uuid === null) throw invalidId(raw, path);
    return uuid;
  }
  throw invalidId(raw, path);
}

export function parsePointIdList(raw: unknown, path: string): PointId[] {
  if (!Array.isArray(raw)) {
    throw formatError(`invalid type: ${describeJson(raw)}, expected a sequence`, path);
  }
  return raw.map((id, i) => parsePointId(id, `${path}[${i}]`));
}

/** Qdrant's id order: integers first (numeric), then UUIDs (lexicographic hex). */
export function comparePointIds(a: PointId, b: PointId): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** serde-style description of a JSON value's type, for format errors. */
export function describeJson(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "sequence";
  if (typeof v === "object") return "map";
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `boolean \`${String(v)}\``;
  if (typeof v === "number") {
    return Number.isInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
  }
  return typeof v;
}
