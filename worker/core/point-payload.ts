/** The point payload contract: what the worker stores with each chunk's vectors, the fields that
 *  skip-unchanged (`chunk_hash`, `model`), stale-point removal (`doc_id`, `chunk_index`,
 *  `doc_version`) and search read back. Acts once per embedded chunk, after its batch ran; a
 *  point that cannot be built fails only its own job. Performs no I/O. */
import type { Config } from "../../shared/config.js";
import { chunkHashOfJson, pointId, stableJson } from "../../shared/ids.js";
import type { JobChunk } from "../../shared/job.js";
import type { ChunkEmbedding } from "./heads.js";
import type { VectorPoint } from "./ports.js";

/** The job fields a point carries. */
export interface PointSource {
  docId: string;
  docHash: string;
  enqueuedAt: number;
  metadata: Record<string, unknown>;
}

/** `stableJson` of each job's metadata, written once per job rather than once per chunk (issue 15). */
const jobMetadataJson = new WeakMap<object, string>();

/** The `stableJson` of the merged metadata: the job's cached when the chunk adds nothing. */
function metadataJson(job: PointSource, chunk: JobChunk, metadata: Record<string, unknown>): string {
  if (chunk.metadata && Object.keys(chunk.metadata).length > 0) return stableJson(metadata);
  let json = jobMetadataJson.get(job.metadata);
  if (json === undefined) jobMetadataJson.set(job.metadata, (json = stableJson(job.metadata)));
  return json;
}

/** The point of `chunk` of `job`: deterministic id, vectors, and the payload. */
export function toPoint(
  job: PointSource,
  chunk: JobChunk,
  tokenized: { length: number; truncated: boolean },
  emb: ChunkEmbedding,
  cfg: Pick<Config, "MODEL_NAME" | "STORE_TEXT">,
): VectorPoint {
  const metadata = { ...job.metadata, ...chunk.metadata };
  const payload: Record<string, unknown> = {
    doc_id: job.docId,
    chunk_index: chunk.index,
    token_count: tokenized.length,
    truncated: tokenized.truncated,
    model: cfg.MODEL_NAME,
    doc_hash: job.docHash,
    doc_version: job.enqueuedAt,
    chunk_hash: chunk.hash ?? chunkHashOfJson(chunk.text, metadataJson(job, chunk, metadata)),
    metadata,
  };
  if (chunk.docChunks !== undefined) payload.doc_chunks = chunk.docChunks;
  if (cfg.STORE_TEXT) payload.text = chunk.text;
  const { dense, sparse, colbert, colbertDim, vectorJson } = emb;
  return { id: pointId(job.docId, chunk.index), dense, sparse, colbert, colbertDim, vectorJson, payload };
}
