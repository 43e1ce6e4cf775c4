/**
 * Parses `PUT /collections/{name}` bodies into a CollectionSchema and renders
 * the `CollectionInfo` returned by `GET /collections/{name}`.
 *
 * Checks follow Qdrant's layering: a wrong JSON type or enum value is a 400
 * "Format error", an out-of-range vector size is a 422 validation error, and a
 * semantic conflict is a 400 "Wrong input". Trade-off: optional tuning blocks
 * (hnsw, quantization, optimizers, wal, strict mode) are only type-checked
 * shallowly and echoed; they have no effect on behaviour.
 */
import {
  isPlainObject,
  type CollectionSchema,
  type CollectionState,
  type DenseVectorConfig,
  type Distance,
  type SparseVectorConfig,
} from "./model.js";
import { describeJson } from "./point-ids.js";
import { formatError, validationError, wrongInput } from "./qdrant-errors.js";

const DISTANCES: readonly Distance[] = ["Cosine", "Euclid", "Dot", "Manhattan"];
const DATATYPES = ["float32", "uint8", "float16", "turbo4"];
const SPARSE_DATATYPES = ["float32", "float16", "uint8"];
const MAX_DENSE_SIZE = 65536;
const OPTIONAL_DENSE_KEYS = ["hnsw_config", "quantization_config", "on_disk", "datatype", "multivector_config"];

function enumValue(raw: unknown, allowed: readonly string[], path: string): string {
  if (typeof raw !== "string" || !allowed.includes(raw)) {
    const shown = typeof raw === "string" ? raw : describeJson(raw);
    const list = allowed.map((a) => `\`${a}\``).join(", ");
    throw formatError(`unknown variant \`${shown}\`, expected one of ${list}`, path);
  }
  return raw;
}

function optionalBool(raw: unknown, path: string): void {
  if (raw !== undefined && raw !== null && typeof raw !== "boolean") {
    throw formatError(`invalid type: ${describeJson(raw)}, expected a boolean`, path);
  }
}

function optionalUint(raw: unknown, path: string): void {
  if (raw === undefined || raw === null) return;
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0) {
    throw formatError(`invalid type: ${describeJson(raw)}, expected usize`, path);
  }
}

function optionalObject(raw: unknown, path: string): Record<string, unknown> | null {
  if (raw === undefined || raw === null) return null;
  if (!isPlainObject(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected a map`, path);
  return raw;
}

function parseHnsw(raw: unknown, path: string): void {
  const h = optionalObject(raw, path);
  if (!h) return;
  for (const k of ["m", "ef_construct", "full_scan_threshold", "max_indexing_threads", "payload_m"]) {
    optionalUint(h[k], `${path}.${k}`);
  }
  optionalBool(h.on_disk, `${path}.on_disk`);
  optionalBool(h.inline_storage, `${path}.inline_storage`);
}

function parseDense(raw: unknown, path: string): DenseVectorConfig {
  if (!isPlainObject(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected struct VectorParams`, path);
  if (raw.size === undefined) throw formatError("missing field `size`", path);
  if (raw.distance === undefined) throw formatError("missing field `distance`", path);
  const size = raw.size;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
    throw formatError(`invalid type: ${describeJson(size)}, expected u64`, `${path}.size`);
  }
  const distance = enumValue(raw.distance, DISTANCES, `${path}.distance`) as Distance;
  if (raw.datatype !== undefined && raw.datatype !== null) enumValue(raw.datatype, DATATYPES, `${path}.datatype`);
  optionalBool(raw.on_disk, `${path}.on_disk`);
  parseHnsw(raw.hnsw_config, `${path}.hnsw_config`);
  optionalObject(raw.quantization_config, `${path}.quantization_config`);
  const mv = optionalObject(raw.multivector_config, `${path}.multivector_config`);
  if (mv) enumValue(mv.comparator, ["max_sim"], `${path}.multivector_config.comparator`);
  if (size < 1 || size > MAX_DENSE_SIZE) {
    throw validationError([
      { path: `${path}.size`, message: `value ${size} invalid, must be from 1 to ${MAX_DENSE_SIZE}` },
    ]);
  }
  const echo: Record<string, unknown> = { size, distance };
  for (const k of OPTIONAL_DENSE_KEYS) if (raw[k] !== undefined && raw[k] !== null) echo[k] = raw[k];
  return { size, distance, multivector: mv !== null, echo };
}

function parseSparse(raw: unknown, path: string): SparseVectorConfig {
  const s = optionalObject(raw, path) ?? {};
  let idf = false;
  if (s.modifier !== undefined && s.modifier !== null) {
    idf = enumValue(s.modifier, ["none", "idf"], `${path}.modifier`) === "idf";
  }
  const index = optionalObject(s.index, `${path}.index`);
  if (index) {
    optionalUint(index.full_scan_threshold, `${path}.index.full_scan_threshold`);
    optionalBool(index.on_disk, `${path}.index.on_disk`);
    if (index.datatype !== undefined && index.datatype !== null) {
      enumValue(index.datatype, SPARSE_DATATYPES, `${path}.index.datatype`);
    }
  }
  const echo: Record<string, unknown> = {};
  if (index) echo.index = index;
  if (s.modifier !== undefined && s.modifier !== null) echo.modifier = s.modifier;
  return { idf, echo };
}

function parseVectors(raw: unknown, schema: CollectionSchema): void {
  if (raw === undefined || raw === null) return;
  if (!isPlainObject(raw)) throw formatError(`invalid type: ${describeJson(raw)}, expected a map`, "vectors");
  // Qdrant's VectorsConfig is untagged: a `size` or `distance` key means the single unnamed form.
  if ("size" in raw || "distance" in raw) {
    schema.dense.set("", parseDense(raw, "vectors"));
    schema.singleUnnamed = true;
    return;
  }
  for (const [name, params] of Object.entries(raw)) {
    schema.dense.set(name, parseDense(params, `vectors.${name}`));
  }
}

/** Parse a create-collection body; throws QdrantHttpError on anything Qdrant rejects. */
export function parseCreateCollection(body: unknown): CollectionSchema {
  if (!isPlainObject(body)) {
    throw formatError(`invalid type: ${describeJson(body)}, expected struct CreateCollection`);
  }
  const schema: CollectionSchema = { dense: new Map(), sparse: new Map(), singleUnnamed: false, params: {} };
  parseVectors(body.vectors, schema);
  const sparse = optionalObject(body.sparse_vectors, "sparse_vectors");
  for (const [name, params] of Object.entries(sparse ?? {})) {
    schema.sparse.set(name, parseSparse(params, `sparse_vectors.${name}`));
  }
  for (const k of ["shard_number", "replication_factor", "write_consistency_factor"]) {
    optionalUint(body[k], k);
    if (body[k] === 0) throw validationError([{ path: k, message: "value 0 invalid, must be 1 or larger" }]);
  }
  optionalBool(body.on_disk_payload, "on_disk_payload");
  parseHnsw(body.hnsw_config, "hnsw_config");
  for (const k of ["optimizers_config", "wal_config", "quantization_config", "strict_mode_config", "metadata"]) {
    optionalObject(body[k], k);
  }
  for (const name of schema.sparse.keys()) {
    if (schema.dense.has(name)) {
      throw wrongInput(`Vector name \`${name}\` is used by both a dense and a sparse vector`);
    }
  }
  schema.params = {
    shard_number: body.shard_number ?? 1,
    replication_factor: body.replication_factor ?? 1,
    write_consistency_factor: body.write_consistency_factor ?? 1,
    on_disk_payload: body.on_disk_payload ?? true,
  };
  return schema;
}

function vectorsEcho(schema: CollectionSchema): Record<string, unknown> {
  if (schema.singleUnnamed) return { ...schema.dense.get("")!.echo };
  const out: Record<string, unknown> = {};
  for (const [name, cfg] of schema.dense) out[name] = { ...cfg.echo };
  return out;
}

function payloadSchema(state: CollectionState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, index] of state.payloadIndexes) {
    let points = 0;
    for (const p of state.points.values()) {
      const v = p.payload[field];
      if (v !== undefined && v !== null) points++;
    }
    out[field] = index.params
      ? { data_type: index.dataType, params: index.params, points }
      : { data_type: index.dataType, points };
  }
  return out;
}

/** Realistic `CollectionInfo` (values of tuning blocks are Qdrant's defaults). */
export function collectionInfo(state: CollectionState): Record<string, unknown> {
  const params: Record<string, unknown> = { vectors: vectorsEcho(state.schema), ...state.schema.params };
  if (state.schema.sparse.size > 0) {
    params.sparse_vectors = Object.fromEntries([...state.schema.sparse].map(([n, c]) => [n, { ...c.echo }]));
  }
  return {
    status: "green",
    optimizer_status: "ok",
    indexed_vectors_count: 0,
    points_count: state.points.size,
    segments_count: 1,
    config: {
      params,
      hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
      optimizer_config: {
        deleted_threshold: 0.2,
        vacuum_min_vector_number: 1000,
        default_segment_number: 0,
        max_segment_size: null,
        memmap_threshold: null,
        indexing_threshold: 10000,
        flush_interval_sec: 5,
        max_optimization_threads: null,
      },
      wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
      quantization_config: null,
      strict_mode_config: { enabled: false },
    },
    payload_schema: payloadSchema(state),
  };
}
