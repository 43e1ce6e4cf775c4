/** The VectorSink port over Qdrant's REST API (the official client). On start it creates
 *  the collection (named dense vector with cosine distance, named sparse vector, ColBERT
 *  multivector with max_sim when enabled, stored as float16 with HNSW off since it is only
 *  used to rerank) and a keyword index on `doc_id`; if the collection exists with a schema
 *  these vectors cannot be written to, it refuses to start and says what differs. Upserts
 *  use `wait=true`: a resolved upsert means Qdrant has applied the points. Stale points of a
 *  re-ingested document are deleted by filter (doc_id, chunk_index, doc_version) with
 *  `wait=true`; skip-unchanged reads stored `chunk_hash` and `model` by point id. */
import { QdrantClient } from "@qdrant/js-client-rest";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { CollectionSchemaError, SinkError } from "../errors.js";
import { colbertRows, type ChunkEmbedding } from "../core/heads.js";
import type { ModelInfo, StaleSelector, StoredChunk, VectorPoint, VectorSink } from "../core/ports.js";

export const VECTOR_NAMES = { dense: "dense", sparse: "sparse", colbert: "colbert" } as const;

type SinkConfig = Pick<Config, "QDRANT_URL" | "QDRANT_API_KEY" | "COLLECTION" | "QDRANT_TIMEOUT_MS">;

export function errorStatus(err: unknown): number | undefined {
  const e = err as { status?: unknown; message?: string };
  if (typeof e?.status === "number") return e.status;
  const m = /Unexpected Response: (\d{3})/.exec(e?.message ?? "");
  return m ? Number(m[1]) : undefined;
}

/** Qdrant's own message (`status.error` of its JSON envelope) when it sent one, else the
 *  client's, on one line. */
export function qdrantErrorDetail(err: unknown): string {
  const data = (err as { data?: { status?: { error?: string } } })?.data;
  const detail = data?.status?.error ?? (err as Error)?.message ?? String(err);
  return detail.split("\n").slice(0, 3).join(" ");
}

export function toSinkError(err: unknown, what: string): SinkError {
  const status = errorStatus(err);
  return new SinkError(`${what} failed${status ? ` (HTTP ${status})` : ""}: ${qdrantErrorDetail(err)}`, status, { cause: err });
}

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

export function toQdrantPoint(p: VectorPoint) {
  return { id: p.id, vector: toQdrantVectors(p), payload: p.payload };
}

export function expectedSchema(info: ModelInfo) {
  const vectors: Record<string, Record<string, unknown>> = {
    [VECTOR_NAMES.dense]: { size: info.denseDim, distance: "Cosine" },
  };
  if (info.outputs.includes("colbert") && info.colbertDim) {
    vectors[VECTOR_NAMES.colbert] = {
      size: info.colbertDim, distance: "Cosine", multivector_config: { comparator: "max_sim" },
      hnsw_config: { m: 0 }, datatype: "float16",
    };
  }
  const sparse_vectors = info.outputs.includes("sparse") ? { [VECTOR_NAMES.sparse]: {} } : undefined;
  return { vectors, sparse_vectors };
}

/** Differences that make the existing collection unusable for these vectors (empty = compatible). */
export function schemaProblems(params: { vectors?: unknown; sparse_vectors?: unknown }, info: ModelInfo): string[] {
  const problems: string[] = [];
  const vectors = (params.vectors ?? {}) as Record<string, { size?: number; distance?: string; multivector_config?: unknown }>;
  if (typeof (vectors as { size?: unknown }).size === "number") {
    return ["it has a single unnamed vector; this worker writes named vectors (dense, sparse, colbert)"];
  }
  const want = expectedSchema(info);
  for (const [name, spec] of Object.entries(want.vectors)) {
    const have = vectors[name];
    if (!have) problems.push(`it has no vector named "${name}"`);
    else {
      if (have.size !== spec.size) problems.push(`vector "${name}" has size ${have.size}, the model produces ${String(spec.size)}`);
      if (have.distance !== spec.distance) problems.push(`vector "${name}" uses distance ${have.distance}, expected ${String(spec.distance)}`);
      if (name === VECTOR_NAMES.colbert && !have.multivector_config) problems.push(`vector "colbert" is not a multivector`);
    }
  }
  const sparse = (params.sparse_vectors ?? {}) as Record<string, unknown>;
  if (want.sparse_vectors && !sparse[VECTOR_NAMES.sparse]) problems.push(`it has no sparse vector named "sparse"`);
  return problems;
}

/** Points of `docId` at or beyond `fromChunk` whose `doc_version` is lower than `belowVersion`
 *  or missing (written before versions were stored). */
export function staleFilter(sel: StaleSelector) {
  return {
    must: [
      { key: "doc_id", match: { value: sel.docId } },
      { key: "chunk_index", range: { gte: sel.fromChunk } },
      { should: [{ key: "doc_version", range: { lt: sel.belowVersion } }, { is_empty: { key: "doc_version" } }] },
    ],
  };
}

export class QdrantSink implements VectorSink {
  private readonly client: QdrantClient;

  constructor(private readonly cfg: SinkConfig, private readonly log?: Logger) {
    this.client = new QdrantClient({ url: cfg.QDRANT_URL!, apiKey: cfg.QDRANT_API_KEY, timeout: cfg.QDRANT_TIMEOUT_MS, checkCompatibility: false });
  }

  describe(): string {
    return `Qdrant collection "${this.cfg.COLLECTION}"`;
  }

  async init(info: ModelInfo): Promise<void> {
    const name = this.cfg.COLLECTION;
    let exists: boolean;
    try {
      exists = (await this.client.collectionExists(name)).exists;
    } catch (err) {
      throw toSinkError(err, `checking Qdrant collection "${name}" at ${this.cfg.QDRANT_URL}`);
    }
    if (!exists) {
      const schema = expectedSchema(info);
      try {
        await this.client.createCollection(name, schema as never);
        this.log?.info({ collection: name, schema }, "created Qdrant collection");
      } catch (err) {
        // Another worker may have created it first; the check below decides.
        this.log?.debug({ err: (err as Error).message }, "create collection failed; re-reading it");
      }
    }
    const info2 = await this.client.getCollection(name).catch((err) => {
      throw toSinkError(err, `reading Qdrant collection "${name}"`);
    });
    const problems = schemaProblems(info2.config.params as never, info);
    if (problems.length > 0) {
      throw new CollectionSchemaError(
        `Qdrant collection "${name}" cannot hold this model's vectors: ${problems.join("; ")}. ` +
          "Use another COLLECTION or recreate this one (re-ingesting is idempotent).",
      );
    }
    if (!info2.payload_schema?.doc_id) {
      await this.client.createPayloadIndex(name, { field_name: "doc_id", field_schema: "keyword", wait: true }).catch((err) => {
        throw toSinkError(err, `creating the doc_id payload index on "${name}"`);
      });
    }
  }

  async upsert(points: VectorPoint[]): Promise<void> {
    try {
      await this.client.upsert(this.cfg.COLLECTION, { wait: true, points: points.map(toQdrantPoint) as never });
    } catch (err) {
      throw toSinkError(err, `upsert of ${points.length} points to "${this.cfg.COLLECTION}"`);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.client.collectionExists(this.cfg.COLLECTION);
    } catch (err) {
      throw toSinkError(err, `reaching Qdrant at ${this.cfg.QDRANT_URL}`);
    }
  }

  async deleteStale(sel: StaleSelector): Promise<void> {
    try {
      await this.client.delete(this.cfg.COLLECTION, { wait: true, filter: staleFilter(sel) });
    } catch (err) {
      throw toSinkError(err, `deleting stale points of document "${sel.docId}" from "${this.cfg.COLLECTION}"`);
    }
  }

  async readStored(ids: string[]): Promise<Map<string, StoredChunk>> {
    let records;
    try {
      records = await this.client.retrieve(this.cfg.COLLECTION, { ids, with_payload: ["chunk_hash", "model"], with_vector: false });
    } catch (err) {
      throw toSinkError(err, `reading ${ids.length} points from "${this.cfg.COLLECTION}"`);
    }
    const out = new Map<string, StoredChunk>();
    for (const r of records) {
      const p = (r.payload ?? {}) as { chunk_hash?: unknown; model?: unknown };
      out.set(String(r.id), {
        chunkHash: typeof p.chunk_hash === "string" ? p.chunk_hash : undefined,
        model: typeof p.model === "string" ? p.model : undefined,
      });
    }
    return out;
  }

  async close(): Promise<void> {}
}
