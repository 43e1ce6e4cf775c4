/** Document metadata from library callers must survive the trip through Redis as JSON and
 *  pass the worker's job schema. Values JSON would silently mangle are converted by a fixed
 *  rule or refused with the path of the offending value, so a document is never enqueued with
 *  metadata other than what its caller meant. */
import type { JsonValue } from "./document.js";

const MAX_DEPTH = 32;

/** Converts `value` to plain JSON: Date → ISO string, bigint → decimal string, Map → object,
 *  Set → array, non-finite numbers → null, undefined object fields dropped (as JSON.stringify
 *  does). Throws naming the path for functions, symbols, class instances, cycles and depth
 *  over 32. */
export function toJsonMetadata(value: unknown, path = "metadata", seen = new Set<object>(), depth = 0): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "bigint") return value.toString();
  if (value === undefined) throw new TypeError(`${path} is undefined`);
  if (typeof value === "function" || typeof value === "symbol") throw new TypeError(`${path} is a ${typeof value}`);
  if (depth >= MAX_DEPTH) throw new TypeError(`${path} is nested deeper than ${MAX_DEPTH} levels`);
  const obj = value as object;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError(`${path} is an invalid Date`);
    return value.toISOString();
  }
  if (seen.has(obj)) throw new TypeError(`${path} refers back to itself (a cycle)`);
  seen.add(obj);
  try {
    if (Array.isArray(value) || value instanceof Set) {
      return [...(value as Iterable<unknown>)].map((v, i) =>
        toJsonMetadata(v === undefined ? null : v, `${path}[${i}]`, seen, depth + 1),
      );
    }
    const entries =
      value instanceof Map ? [...value.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
    const proto = Object.getPrototypeOf(value);
    if (!(value instanceof Map) && proto !== Object.prototype && proto !== null) {
      throw new TypeError(
        `${path} is a ${proto?.constructor?.name ?? "non-plain"} object; pass plain objects, arrays, strings, numbers, booleans or null`,
      );
    }
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of entries) if (v !== undefined) out[k] = toJsonMetadata(v, `${path}.${k}`, seen, depth + 1);
    return out;
  } finally {
    seen.delete(obj);
  }
}
