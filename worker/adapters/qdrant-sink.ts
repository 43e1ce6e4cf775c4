/** The VectorSink port over Qdrant's REST API (the official client). On start it creates
 *  the collection (the config of `qdrant-schema.ts`: named dense vector with cosine distance,
 *  named sparse vector, ColBERT multivector with max_sim when enabled, stored as float16 with
 *  HNSW off since it is only used to rerank) and a keyword index on `doc_id`; if the collection exists with a schema
 *  these vectors cannot be written to, it refuses to start and says what differs. Upserts
 *  use `wait=true`: a resolved upsert means Qdrant has applied the points. With
 *  QDRANT_UPSERT_BODY=prebuilt (the default) an upsert's body is spliced from the points' vector
 *  JSON, written in the model thread (qdrant-upsert-body.ts), and sent with Node's fetch
 *  (qdrant-upsert-request.ts), failing as the client does; with `client` the official client
 *  serialises it on the main thread. Everything else goes through the client. Stale points of a
 *  re-ingested document are deleted by filter (doc_id, chunk_index, doc_version) with
 *  `wait=true`, several documents in one request as a `should` of their filters (issue 15);
 *  skip-unchanged reads stored `chunk_hash` and `model` by point id. */
import { QdrantClient } from "@qdrant/js-client-rest";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { CollectionSchemaError, SinkError } from "../errors.js";
import type { ModelInfo, StaleSelector, StoredChunk, VectorPoint, VectorSink } from "../core/ports.js";
import { errorStatus, qdrantErrorDetail } from "./qdrant-error-detail.js";
import { expectedSchema, PAYLOAD_FIELDS, schemaProblems, toQdrantVectors } from "./qdrant-schema.js";
import { putUpsert } from "./qdrant-upsert-request.js";
import { upsertBody } from "./qdrant-upsert-body.js";

type SinkConfig = Pick<Config, "QDRANT_URL" | "QDRANT_API_KEY" | "COLLECTION" | "QDRANT_TIMEOUT_MS"> &
  Partial<Pick<Config, "QDRANT_UPSERT_BODY">>;

export function toSinkError(err: unknown, what: string): SinkError {
  const status = errorStatus(err);
  return new SinkError(`${what} failed${status ? ` (HTTP ${status})` : ""}: ${qdrantErrorDetail(err)}`, status, {
    cause: err,
  });
}

export function toQdrantPoint(p: VectorPoint) {
  return { id: p.id, vector: toQdrantVectors(p), payload: p.payload };
}

/** Points of `docId` at or beyond `fromChunk` whose `doc_version` is lower than `belowVersion`
 *  or missing (written before versions were stored). */
export function staleFilter(sel: StaleSelector) {
  return {
    must: [
      { key: PAYLOAD_FIELDS.docId, match: { value: sel.docId } },
      { key: PAYLOAD_FIELDS.chunkIndex, range: { gte: sel.fromChunk } },
      {
        should: [
          { key: PAYLOAD_FIELDS.docVersion, range: { lt: sel.belowVersion } },
          { is_empty: { key: PAYLOAD_FIELDS.docVersion } },
        ],
      },
    ],
  };
}

/** Points any of `sels` selects: one filter per document under `should` (Qdrant's "at least one
 *  of"), so one request removes several documents' stale points and nothing else. */
export function staleFilterMany(sels: StaleSelector[]) {
  return sels.length === 1 ? staleFilter(sels[0]) : { should: sels.map(staleFilter) };
}

/** `"a", "b", "c" and 9 more` for error messages. */
function docList(sels: StaleSelector[], shown = 3): string {
  const names = sels.slice(0, shown).map((s) => JSON.stringify(s.docId));
  return sels.length > shown ? `${names.join(", ")} and ${sels.length - shown} more` : names.join(", ");
}

export class QdrantSink implements VectorSink {
  private readonly client: QdrantClient;
  /** QDRANT_UPSERT_BODY=prebuilt (the default): batches of queued chunks come with vector JSON. */
  readonly usesVectorJson: boolean;

  constructor(
    private readonly cfg: SinkConfig,
    private readonly log?: Logger,
  ) {
    this.client = new QdrantClient({
      url: cfg.QDRANT_URL!,
      apiKey: cfg.QDRANT_API_KEY,
      timeout: cfg.QDRANT_TIMEOUT_MS,
      checkCompatibility: false,
    });
    this.usesVectorJson = (cfg.QDRANT_UPSERT_BODY ?? "prebuilt") === "prebuilt";
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
    if (!info2.payload_schema?.[PAYLOAD_FIELDS.docId]) {
      const index = { field_name: PAYLOAD_FIELDS.docId, field_schema: "keyword" as const, wait: true };
      await this.client.createPayloadIndex(name, index).catch((err) => {
        throw toSinkError(err, `creating the doc_id payload index on "${name}"`);
      });
    }
  }

  async upsert(points: VectorPoint[]): Promise<void> {
    try {
      if (this.usesVectorJson) await putUpsert(this.cfg, upsertBody(points));
      else await this.client.upsert(this.cfg.COLLECTION, { wait: true, points: points.map(toQdrantPoint) as never });
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
    await this.deleteStaleMany([sel]);
  }

  async deleteStaleMany(sels: StaleSelector[]): Promise<void> {
    try {
      await this.client.delete(this.cfg.COLLECTION, { wait: true, filter: staleFilterMany(sels) });
    } catch (err) {
      const what = sels.length === 1 ? `document "${sels[0].docId}"` : `${sels.length} documents (${docList(sels)})`;
      throw toSinkError(err, `deleting stale points of ${what} from "${this.cfg.COLLECTION}"`);
    }
  }

  async readStored(ids: string[]): Promise<Map<string, StoredChunk>> {
    let records;
    try {
      const with_payload = [PAYLOAD_FIELDS.chunkHash, PAYLOAD_FIELDS.model];
      records = await this.client.retrieve(this.cfg.COLLECTION, { ids, with_payload, with_vector: false });
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
