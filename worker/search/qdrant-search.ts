/** The read side of Qdrant for the search command (the official client): which named vectors
 *  a collection holds, and one Query API request. Each failure becomes one QdrantRequestError
 *  sentence carrying Qdrant's own message (a 4xx explains what it rejected), or saying that
 *  Qdrant could not be reached; a missing collection is its own error. No retries: a person
 *  is waiting and can run it again. */
import { QdrantClient, type Schemas } from "@qdrant/js-client-rest";
import type { Config } from "../../shared/config.js";
import { errorStatus, qdrantErrorDetail } from "../adapters/qdrant-error-detail.js";
import { VECTOR_NAMES } from "../adapters/qdrant-schema.js";
import { CollectionNotFoundError, QdrantRequestError } from "./search-errors.js";
import type { CollectionVectors } from "./search-plan.js";
import type { QueryRequest } from "./search-query.js";

type SearchConfig = Pick<Config, "QDRANT_API_KEY" | "QDRANT_TIMEOUT_MS"> & { QDRANT_URL: string };
export type ScoredPoint = Schemas["ScoredPoint"];

/** Reads the vector names and sizes out of a collection's `config.params`. */
export function collectionVectors(
  name: string,
  params: { vectors?: unknown; sparse_vectors?: unknown },
): CollectionVectors {
  const all = (params.vectors ?? {}) as Record<string, unknown>;
  // A single unnamed vector ({size, distance}) has none of the names the worker writes.
  const named = typeof all.size === "number" ? {} : (all as Record<string, { size?: number } | undefined>);
  const sized = (n: string) => (typeof named[n]?.size === "number" ? { size: named[n]!.size! } : undefined);
  const sparse = (params.sparse_vectors ?? {}) as Record<string, unknown>;
  return {
    name,
    dense: sized(VECTOR_NAMES.dense),
    sparse: VECTOR_NAMES.sparse in sparse,
    colbert: sized(VECTOR_NAMES.colbert),
  };
}

export class QdrantSearch {
  private readonly client: QdrantClient;

  constructor(private readonly cfg: SearchConfig) {
    this.client = new QdrantClient({
      url: cfg.QDRANT_URL,
      apiKey: cfg.QDRANT_API_KEY,
      timeout: cfg.QDRANT_TIMEOUT_MS,
      checkCompatibility: false,
    });
  }

  async vectors(collection: string): Promise<CollectionVectors> {
    try {
      const info = await this.client.getCollection(collection);
      return collectionVectors(collection, info.config.params as { vectors?: unknown; sparse_vectors?: unknown });
    } catch (err) {
      if (errorStatus(err) === 404) throw new CollectionNotFoundError(collection, this.cfg.QDRANT_URL);
      throw this.failure(err, `reading collection "${collection}"`);
    }
  }

  async query(collection: string, request: QueryRequest): Promise<ScoredPoint[]> {
    try {
      return (await this.client.query(collection, request)).points;
    } catch (err) {
      throw this.failure(err, `the query on "${collection}"`);
    }
  }

  private failure(err: unknown, what: string): QdrantRequestError {
    const status = errorStatus(err);
    if (status !== undefined) {
      const hint = status === 401 || status === 403 ? " (check QDRANT_API_KEY)" : "";
      return new QdrantRequestError(
        `Qdrant refused ${what} (HTTP ${status})${hint}: ${qdrantErrorDetail(err)}`,
        status,
        { cause: err },
      );
    }
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const reason =
      e?.name === "QdrantClientTimeoutError"
        ? `no answer within ${this.cfg.QDRANT_TIMEOUT_MS} ms (QDRANT_TIMEOUT_MS)`
        : (e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err));
    return new QdrantRequestError(`cannot reach Qdrant at ${this.cfg.QDRANT_URL} for ${what}: ${reason}`, undefined, {
      cause: err,
    });
  }
}
