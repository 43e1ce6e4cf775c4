/**
 * Validation of upsert bodies (`points` list form and `batch` form) in the
 * same three layers real Qdrant applies, so the first failing layer decides
 * the status code:
 *   1. deserialization (ids, number types, u32 sparse indices) → 400 format error;
 *   2. `validator` rules (sparse lengths/uniqueness, multivector shape) → 422;
 *   3. collection checks (vector names, dimensions, dense/sparse/multi kind) → 400.
 * A single bad point fails the whole request; nothing is stored.
 *
 * Trade-off: only vector shapes this project uses are accepted; inference
 * objects (`{text, model}` documents, images) are rejected as format errors,
 * which matches a Qdrant without an inference provider only in status code.
 */
import {
  isMulti,
  isPlainObject,
  isSparse,
  type CollectionSchema,
  type PointId,
  type SparseVector,
  type StoredPoint,
  type VectorValue,
} from "./model.js";
import { describeJson, parsePointId } from "./point-ids.js";
import { formatError, noVariant, validationError, wrongInput } from "./qdrant-errors.js";

const U32_MAX = 4294967295;

function isNumberArray(v: unknown[]): v is number[] {
  return v.every((x) => typeof x === "number");
}

function checkFinite(values: number[], path: string): void {
  values.forEach((x, i) => {
    if (!Number.isFinite(x)) throw formatError("number out of range for f32", `${path}[${i}]`);
  });
}

function parseSparse(raw: Record<string, unknown>, path: string): SparseVector {
  const { indices, values } = raw;
  if (!Array.isArray(indices)) throw noVariant("Vector", `${path}.indices`);
  if (!Array.isArray(values)) throw noVariant("Vector", `${path}.values`);
  indices.forEach((x, i) => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x > U32_MAX) {
      throw formatError(`invalid value: ${describeJson(x)}, expected u32`, `${path}.indices[${i}]`);
    }
  });
  values.forEach((x, i) => {
    if (typeof x !== "number")
      throw formatError(`invalid type: ${describeJson(x)}, expected f32`, `${path}.values[${i}]`);
  });
  checkFinite(values as number[], `${path}.values`);
  return { indices: [...(indices as number[])], values: [...(values as number[])] };
}

/** Layer 1: decode one vector of any kind from JSON. */
export function parseVector(raw: unknown, path: string): VectorValue {
  if (Array.isArray(raw)) {
    if (isNumberArray(raw)) {
      checkFinite(raw, path);
      return [...raw];
    }
    if (raw.every((x) => Array.isArray(x) && isNumberArray(x))) {
      const multi = raw as number[][];
      multi.forEach((row, i) => checkFinite(row, `${path}[${i}]`));
      return multi.map((row) => [...row]);
    }
    throw noVariant("Vector", path);
  }
  if (isPlainObject(raw) && "indices" in raw && "values" in raw) return parseSparse(raw, path);
  throw noVariant("Vector", path);
}

function parseVectorStruct(raw: unknown, path: string): Record<string, VectorValue> {
  if (Array.isArray(raw)) return { "": parseVector(raw, path) };
  if (isPlainObject(raw)) {
    const out: Record<string, VectorValue> = {};
    for (const [name, v] of Object.entries(raw)) out[name] = parseVector(v, `${path}.${name}`);
    return out;
  }
  throw noVariant("VectorStruct", path);
}

function parsePayload(raw: unknown, path: string): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected a map`, path);
  return structuredClone(raw);
}

function parsePointsList(raw: unknown): StoredPoint[] {
  if (!Array.isArray(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected a sequence`, "points");
  return raw.map((p, i) => {
    const path = `points[${i}]`;
    if (!isPlainObject(p)) throw formatError(`invalid type: ${describeJson(p)}, expected struct PointStruct`, path);
    if (p.id === undefined) throw formatError("missing field `id`", path);
    if (p.vector === undefined) throw formatError("missing field `vector`", path);
    const id = parsePointId(p.id, `${path}.id`);
    return {
      id,
      vector: parseVectorStruct(p.vector, `${path}.vector`),
      payload: parsePayload(p.payload, `${path}.payload`),
    };
  });
}

function batchLengthError(ids: number, other: number, what: string): Error {
  return validationError([{ path: "batch", message: `number of ids and ${what} must be equal (${ids} != ${other})` }]);
}

function parseBatchVectors(raw: unknown, count: number): Array<Record<string, VectorValue>> {
  const rows: Array<Record<string, VectorValue>> = Array.from({ length: count }, () => ({}));
  const named: Record<string, unknown> = Array.isArray(raw) ? { "": raw } : isPlainObject(raw) ? raw : {};
  if (!Array.isArray(raw) && !isPlainObject(raw)) throw noVariant("BatchVectorStruct", "batch.vectors");
  for (const [name, list] of Object.entries(named)) {
    const path = name === "" ? "batch.vectors" : `batch.vectors.${name}`;
    if (!Array.isArray(list)) throw noVariant("BatchVectorStruct", path);
    const parsed = list.map((v, i) => parseVector(v, `${path}[${i}]`));
    validateVectors(Object.fromEntries(parsed.map((v, i) => [String(i), v])), path);
    if (parsed.length !== count) throw batchLengthError(count, parsed.length, "vectors");
    parsed.forEach((v, i) => (rows[i][name] = v));
  }
  return rows;
}

function parseBatch(raw: unknown): StoredPoint[] {
  if (!isPlainObject(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected struct Batch`, "batch");
  if (!Array.isArray(raw.ids)) throw formatError("missing field `ids`", "batch");
  const ids: PointId[] = raw.ids.map((id, i) => parsePointId(id, `batch.ids[${i}]`));
  if (raw.vectors === undefined) throw formatError("missing field `vectors`", "batch");
  const vectors = parseBatchVectors(raw.vectors, ids.length);
  let payloads: Array<Record<string, unknown>> = ids.map(() => ({}));
  if (raw.payloads !== undefined && raw.payloads !== null) {
    if (!Array.isArray(raw.payloads)) throw formatError("invalid type, expected a sequence", "batch.payloads");
    payloads = raw.payloads.map((p, i) => parsePayload(p, `batch.payloads[${i}]`));
    if (payloads.length !== ids.length) throw batchLengthError(ids.length, payloads.length, "payloads");
  }
  return ids.map((id, i) => ({ id, vector: vectors[i], payload: payloads[i] }));
}

/** Layer 2 for a set of vectors: sparse and multivector rules Qdrant enforces with 422. */
function validateVectors(vectors: Record<string, VectorValue>, basePath: string): void {
  const issues: Array<{ path: string; message: string }> = [];
  for (const [name, v] of Object.entries(vectors)) {
    const path = name === "" ? basePath : `${basePath}.${name}`;
    if (isSparse(v)) {
      if (v.indices.length !== v.values.length)
        issues.push({ path: `${path}.values`, message: "must be the same length as indices" });
      if (new Set(v.indices).size !== v.indices.length)
        issues.push({ path: `${path}.indices`, message: "must be unique" });
    } else if (isMulti(v)) {
      if (v.some((row) => row.length === 0))
        issues.push({ path: `${path}.data`, message: "all vectors must be non-empty" });
      else {
        const bad = v.find((row) => row.length !== v[0].length);
        if (bad)
          issues.push({
            path: `${path}.data`,
            message: `all vectors must have the same dimension, found vector with dimension ${bad.length}`,
          });
      }
    }
  }
  if (issues.length > 0) throw validationError(issues);
}

/** Layer 3: check one named vector against the collection schema. */
export function checkVectorAgainstSchema(name: string, v: VectorValue, schema: CollectionSchema): void {
  const dense = schema.dense.get(name);
  const sparse = schema.sparse.get(name);
  if (!dense && !sparse) throw wrongInput(`Not existing vector name error: ${name}`);
  if (sparse) {
    if (!isSparse(v)) throw wrongInput("Conversion between sparse and regular vectors failed");
    return;
  }
  if (isSparse(v)) throw wrongInput("Conversion between sparse and regular vectors failed");
  const cfg = dense!;
  if (isMulti(v)) {
    if (!cfg.multivector) throw wrongInput("Conversion between multi and regular vectors failed");
    if (v[0].length !== cfg.size)
      throw wrongInput(`Vector dimension error: expected dim: ${cfg.size}, got ${v[0].length}`);
    return;
  }
  // An empty array deserializes as a dense vector, so it reports a dimension error even for multivectors.
  if (cfg.multivector && v.length > 0) throw wrongInput("Conversion between multi and regular vectors failed");
  if (v.length !== cfg.size) throw wrongInput(`Vector dimension error: expected dim: ${cfg.size}, got ${v.length}`);
}

/** Layers 1 and 2: turn an upsert body into points without looking at the collection. */
export function parseUpsertBody(body: unknown): StoredPoint[] {
  if (!isPlainObject(body)) throw formatError("Invalid PointInsertOperations format");
  const hasPoints = body.points !== undefined;
  const hasBatch = body.batch !== undefined;
  if (hasPoints === hasBatch) throw formatError("Invalid PointInsertOperations format");
  for (const k of ["update_filter", "update_mode", "shard_key"]) {
    if (body[k] !== undefined && body[k] !== null) throw formatError(`\`${k}\` is not supported by the test server`);
  }
  if (hasBatch) return parseBatch(body.batch);
  const points = parsePointsList(body.points);
  points.forEach((p, i) => validateVectors(p.vector, `points[${i}].vector`));
  return points;
}

/** Layer 3 for every point, then normalisation the way Qdrant stores vectors. */
export function checkAndNormalize(points: StoredPoint[], schema: CollectionSchema): StoredPoint[] {
  for (const p of points) {
    for (const [name, v] of Object.entries(p.vector)) checkVectorAgainstSchema(name, v, schema);
  }
  return points.map((p) => {
    const vector: Record<string, VectorValue> = {};
    for (const [name, v] of Object.entries(p.vector)) vector[name] = normalizeForStorage(name, v, schema);
    return { id: p.id, vector, payload: p.payload };
  });
}

function unit(v: number[]): number[] {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return norm === 0 ? [...v] : v.map((x) => x / norm);
}

/** Cosine vectors are stored normalised and sparse vectors sorted by index, as in Qdrant. */
export function normalizeForStorage(name: string, v: VectorValue, schema: CollectionSchema): VectorValue {
  if (isSparse(v)) {
    const order = v.indices.map((_, i) => i).sort((a, b) => v.indices[a] - v.indices[b]);
    return { indices: order.map((i) => v.indices[i]), values: order.map((i) => v.values[i]) };
  }
  if (schema.dense.get(name)?.distance !== "Cosine") return v;
  return isMulti(v) ? v.map(unit) : unit(v);
}
