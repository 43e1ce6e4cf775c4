/** What this project stores in Qdrant, in one place: the named vectors, the payload fields the
 *  worker writes and searches by, one chunk's vectors in Qdrant's JSON form, and the collection
 *  config the worker creates and checks. The sink writes by it and `worker/search/` reads by it,
 *  so a rename cannot drift between the two. Pure: performs no I/O. */
import { colbertRows, type ChunkEmbedding } from "../core/heads.js";
import type { ModelInfo } from "../core/ports.js";

export const VECTOR_NAMES = { dense: "dense", sparse: "sparse", colbert: "colbert" } as const;

/** Payload fields the worker writes and later filters or reads by. */
export const PAYLOAD_FIELDS = {
  docId: "doc_id",
  chunkIndex: "chunk_index",
  docVersion: "doc_version",
  chunkHash: "chunk_hash",
  model: "model",
  text: "text",
  metadata: "metadata",
} as const;

/** One chunk's vectors as Qdrant's JSON takes them, keyed by vector name. */
export interface QdrantVectors {
  [VECTOR_NAMES.dense]?: number[];
  [VECTOR_NAMES.sparse]?: { indices: number[]; values: number[] };
  /** One row per token. */
  [VECTOR_NAMES.colbert]?: number[][];
}

/** Also used for search queries, so a query vector has exactly the form of a stored one.
 *  An empty sparse or ColBERT vector is left out. */
export function toQdrantVectors(e: ChunkEmbedding): QdrantVectors {
  const vector: QdrantVectors = {};
  if (e.dense) vector[VECTOR_NAMES.dense] = Array.from(e.dense);
  if (e.sparse && e.sparse.indices.length > 0) {
    vector[VECTOR_NAMES.sparse] = { indices: Array.from(e.sparse.indices), values: Array.from(e.sparse.values) };
  }
  if (e.colbert && e.colbertDim && e.colbert.length > 0) vector[VECTOR_NAMES.colbert] = colbertRows(e);
  return vector;
}

/** The collection config the worker creates: cosine dense, a sparse vector, and ColBERT as a
 *  max_sim multivector stored as float16 with HNSW off (it is only used to rerank). */
export function expectedSchema(info: ModelInfo) {
  const vectors: Record<string, Record<string, unknown>> = {
    [VECTOR_NAMES.dense]: { size: info.denseDim, distance: "Cosine" },
  };
  if (info.outputs.includes("colbert") && info.colbertDim) {
    vectors[VECTOR_NAMES.colbert] = {
      size: info.colbertDim,
      distance: "Cosine",
      multivector_config: { comparator: "max_sim" },
      hnsw_config: { m: 0 },
      datatype: "float16",
    };
  }
  const sparse_vectors = info.outputs.includes("sparse") ? { [VECTOR_NAMES.sparse]: {} } : undefined;
  return { vectors, sparse_vectors };
}

type VectorParams = { size?: number; distance?: string; multivector_config?: unknown };

/** Differences that make the existing collection unusable for these vectors (empty = compatible). */
export function schemaProblems(params: { vectors?: unknown; sparse_vectors?: unknown }, info: ModelInfo): string[] {
  const problems: string[] = [];
  const vectors = (params.vectors ?? {}) as Record<string, VectorParams>;
  if (typeof (vectors as { size?: unknown }).size === "number") {
    return ["it has a single unnamed vector; this worker writes named vectors (dense, sparse, colbert)"];
  }
  const want = expectedSchema(info);
  for (const [name, spec] of Object.entries(want.vectors)) {
    const have = vectors[name];
    if (!have) problems.push(`it has no vector named "${name}"`);
    else {
      if (have.size !== spec.size) {
        problems.push(`vector "${name}" has size ${have.size}, the model produces ${String(spec.size)}`);
      }
      if (have.distance !== spec.distance) {
        problems.push(`vector "${name}" uses distance ${have.distance}, expected ${String(spec.distance)}`);
      }
      if (name === VECTOR_NAMES.colbert && !have.multivector_config) {
        problems.push(`vector "colbert" is not a multivector`);
      }
    }
  }
  const sparse = (params.sparse_vectors ?? {}) as Record<string, unknown>;
  if (want.sparse_vectors && !sparse[VECTOR_NAMES.sparse]) problems.push(`it has no sparse vector named "sparse"`);
  return problems;
}
