/**
 * Shared data model of the in-process Qdrant test server: point ids, vectors,
 * stored points and the per-collection vector schema.
 *
 * Trade-off: vectors are kept as plain JS number arrays (float64) rather than
 * float32 buffers, so values read back may differ from real Qdrant in the
 * last float32 digit; tests should compare vectors with a tolerance.
 */

import type { KeywordIndex } from "./keyword-index.js";

/** Unsigned integer id or a UUID in canonical lowercase hyphenated form. */
export type PointId = number | string;

export interface SparseVector {
  indices: number[];
  values: number[];
}

/** Dense (`number[]`), multi-dense (`number[][]`) or sparse vector. */
export type VectorValue = number[] | number[][] | SparseVector;

/** What tests see through `points(collection)`. */
export interface StoredPoint {
  id: PointId;
  /** Vectors by name; the unnamed default vector uses the key "". */
  vector: Record<string, VectorValue>;
  payload: Record<string, unknown>;
}

export type Distance = "Cosine" | "Dot" | "Euclid" | "Manhattan";

export interface DenseVectorConfig {
  size: number;
  distance: Distance;
  /** True when the collection declared `multivector_config`. */
  multivector: boolean;
  /** Parameters as given at creation, echoed back in collection info. */
  echo: Record<string, unknown>;
}

export interface SparseVectorConfig {
  idf: boolean;
  echo: Record<string, unknown>;
}

export interface CollectionSchema {
  dense: Map<string, DenseVectorConfig>;
  sparse: Map<string, SparseVectorConfig>;
  /** True when `vectors` was a single `{size, distance}` (unnamed vector ""). */
  singleUnnamed: boolean;
  /** Other creation parameters echoed in `config.params`. */
  params: Record<string, unknown>;
}

export interface PayloadIndex {
  dataType: string;
  params: Record<string, unknown> | null;
}

/** Internal mutable state of one collection. */
export interface CollectionState {
  name: string;
  schema: CollectionSchema;
  points: Map<PointId, StoredPoint>;
  versions: Map<PointId, number>;
  writeCounts: Map<PointId, number>;
  payloadIndexes: Map<string, PayloadIndex>;
  /** Ids by value of keyword-indexed fields (see keyword-index.ts). */
  keywordIndex: KeywordIndex;
  nextOperationId: number;
}

export function isSparse(v: VectorValue): v is SparseVector {
  return !Array.isArray(v);
}

export function isMulti(v: VectorValue): v is number[][] {
  return Array.isArray(v) && v.length > 0 && Array.isArray(v[0]);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
