/** The short interfaces the pure core talks through. Adapters implement them over
 *  worker threads (tokenizer, ONNX Runtime), Qdrant or a JSONL file; tests implement them
 *  with fakes. */
import type { OutputKind } from "../../shared/config.js";
import type { ChunkEmbedding, SparseVector } from "./heads.js";

export interface TokenizedChunk {
  /** Token ids including <s> and </s>, already truncated to the model's max length. */
  ids: Int32Array;
  /** Length before truncation (including specials). */
  fullLength: number;
  truncated: boolean;
  /** Token strings (only when asked for). */
  tokens?: string[];
}

export interface ChunkTokenizer {
  encode(texts: string[], opts?: { tokens?: boolean }): Promise<TokenizedChunk[]>;
  close(): Promise<void>;
}

export interface ModelBatch {
  /** One id sequence per chunk; the model pads them to `paddedLength` with its pad id. */
  sequences: Int32Array[];
  paddedLength: number;
  /** Carries query texts (the query lane): runs before queued batches already waiting for the model. */
  queryLane?: boolean;
  /** Also return each chunk's vectors as the sink's JSON (`ChunkEmbedding.vectorJson`), built
   *  beside the model instead of on the main thread; a model may ignore it. */
  encodeVectors?: boolean;
}

export interface ModelInfo {
  name: string;
  provider: "cpu" | "cuda";
  device: string;
  /** Outputs the model file can produce. */
  available: OutputKind[];
  /** Outputs this worker produces (configured ∩ available). */
  outputs: OutputKind[];
  denseDim: number;
  colbertDim?: number;
  /** Raw ONNX output names, for the start-up log. */
  onnxOutputs: string[];
  /** How each vector is read from the outputs (layout, names, element types, CLS handling). */
  layout?: Record<string, string>;
  /** The inputs fed, with their element types. */
  feeds?: string[];
  maxSeqLength: number;
}

export interface EmbeddingModel {
  readonly info: ModelInfo;
  embed(batch: ModelBatch): Promise<ChunkEmbedding[]>;
  close(): Promise<void>;
}

export interface VectorPoint {
  id: string;
  dense?: Float32Array;
  sparse?: SparseVector;
  colbert?: Float32Array;
  colbertDim?: number;
  /** The vectors above as the sink's JSON, when the model built it (see ModelBatch.encodeVectors). */
  vectorJson?: Uint8Array;
  payload: Record<string, unknown>;
}

/** Points one document's older versions left beyond its current length. */
export interface StaleSelector {
  docId: string;
  /** Points at `chunk_index >= fromChunk` ... */
  fromChunk: number;
  /** ... written by a lower `doc_version`, or by none, are stale. */
  belowVersion: number;
}

/** What skip-unchanged needs to know about a stored point. */
export interface StoredChunk {
  chunkHash?: string;
  model?: string;
}

export interface VectorSink {
  /** Takes points' pre-built `vectorJson` (optional capability): batches of queued chunks then ask
   *  the model for it. */
  readonly usesVectorJson?: boolean;
  /** Creates or checks the destination for this model's vectors; throws on an incompatible schema. */
  init(info: ModelInfo): Promise<void>;
  /** Resolves only once the points are durably stored (Qdrant `wait=true`, file written). */
  upsert(points: VectorPoint[]): Promise<void>;
  describe(): string;
  /** Resolves when the destination answers (readiness); absent = always reachable. */
  ping?(): Promise<void>;
  close(): Promise<void>;
  /** Deletes the points `sel` selects; resolves once applied. Absent = stale points stay. */
  deleteStale?(sel: StaleSelector): Promise<void>;
  /** Deletes the points any of `sels` selects in one request; resolves once applied. Absent = the
   *  stale remover calls `deleteStale` once per document. */
  deleteStaleMany?(sels: StaleSelector[]): Promise<void>;
  /** Hash and model of the stored points among `ids` (absent ids are not stored). Absent = nothing is skipped. */
  readStored?(ids: string[]): Promise<Map<string, StoredChunk>>;
}

/** Rough JSON size of a point, for sizing upsert requests by bytes: the real length of its
 *  pre-built vector JSON when it has one. */
export function estimatePointBytes(p: VectorPoint): number {
  const text = typeof p.payload.text === "string" ? p.payload.text.length * 1.2 : 0;
  const payload = text + JSON.stringify({ ...p.payload, text: undefined }).length;
  if (p.vectorJson) return 100 + p.vectorJson.byteLength + payload;
  const floats = (p.dense?.length ?? 0) + (p.sparse ? p.sparse.values.length * 2 : 0) + (p.colbert?.length ?? 0);
  return 200 + floats * 12 + payload;
}
