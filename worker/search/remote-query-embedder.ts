/** A QueryEmbedder that asks a running worker's `POST /embed/batch` instead of loading the
 *  model: no model load per command and no model files on this machine, at the cost of a
 *  network round trip and a worker that must be up (QUERY_API=true). It asks only for the
 *  outputs the plan needs; one the answer lacks is reported, not guessed. */
import { z } from "zod";
import type { OutputKind } from "../../shared/config.js";
import type { QdrantVectors } from "../adapters/qdrant-schema.js";
import { EmbedServiceError } from "./search-errors.js";
import type { EmbeddedQuery, QueryEmbedder } from "./query-embedder.js";

const numbers = z.array(z.number());
const responseSchema = z.object({
  data: z
    .array(
      z.object({
        index: z.number().int(),
        dense: numbers.nullish(),
        sparse: z.object({ indices: z.array(z.number().int().nonnegative()), values: numbers }).nullish(),
        colbert: z.array(numbers).nullish(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number().int() }).optional(),
});

export interface RemoteEmbedderOptions {
  /** The worker's base URL (http://host:port) or the full /embed/batch URL. */
  url: string;
  /** Sent as `Authorization: Bearer <key>` when set (QUERY_API_KEY). */
  apiKey?: string;
  timeoutMs: number;
  /** Outputs the search needs; only these are asked for (ColBERT rows are large). */
  needs: readonly OutputKind[];
}

export function embedBatchUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, "");
  return trimmed.endsWith("/embed/batch") ? trimmed : `${trimmed}/embed/batch`;
}

/** The service's own message when its error body is JSON (`{"error": code, "message": ...}`),
 *  else the start of the body. */
function errorDetail(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown; message?: unknown };
    const code = typeof j.error === "string" ? j.error : undefined;
    if (typeof j.message === "string") return code ? `${j.message} (${code})` : j.message;
    if (code) return code;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.replace(/\s+/g, " ").trim().slice(0, 300) || "(empty body)";
}

export class RemoteQueryEmbedder implements QueryEmbedder {
  private readonly endpoint: string;

  constructor(private readonly o: RemoteEmbedderOptions) {
    this.endpoint = embedBatchUrl(o.url);
  }

  async embed(text: string): Promise<EmbeddedQuery> {
    // Only what the plan needs: the service refuses (400) an output its OUTPUTS leave off.
    const needs = (k: OutputKind) => this.o.needs.includes(k);
    const body = {
      texts: [text],
      return_dense: needs("dense"),
      return_sparse: needs("sparse"),
      return_colbert: needs("colbert"),
    };
    const res = await this.post(body);
    const raw = await res.text();
    if (!res.ok)
      throw new EmbedServiceError(`${this.endpoint} answered HTTP ${res.status}: ${errorDetail(raw)}`, res.status);
    return this.parse(raw);
  }

  async close(): Promise<void> {}

  private async post(body: unknown): Promise<Response> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.o.apiKey) headers.authorization = `Bearer ${this.o.apiKey}`;
    try {
      return await fetch(this.endpoint, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (err) {
      const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
      const reason =
        e.name === "TimeoutError"
          ? `no answer within ${this.o.timeoutMs} ms (--embed-timeout-ms)`
          : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
      throw new EmbedServiceError(`cannot reach the embedding service at ${this.endpoint}: ${reason}`, undefined, {
        cause: err,
      });
    }
  }

  private parse(raw: string): EmbeddedQuery {
    let parsed;
    try {
      parsed = responseSchema.safeParse(JSON.parse(raw));
    } catch (err) {
      throw new EmbedServiceError(`${this.endpoint} answered with invalid JSON: ${(err as Error).message}`, undefined, {
        cause: err,
      });
    }
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new EmbedServiceError(
        `${this.endpoint} answered in an unexpected shape: ${issue.path.join(".") || "body"}: ${issue.message}`,
        undefined,
      );
    }
    const item = parsed.data.data.find((d) => d.index === 0) ?? parsed.data.data[0];
    const vectors: QdrantVectors = {};
    if (item.dense) vectors.dense = item.dense;
    if (item.sparse && item.sparse.indices.length > 0) vectors.sparse = item.sparse;
    if (item.colbert && item.colbert.length > 0) vectors.colbert = item.colbert;
    // Absent means the worker does not produce it; present but empty is the query's own doing (checkQueryVectors says so).
    const missing = this.o.needs.filter((k) => item[k] === undefined || item[k] === null);
    if (missing.length > 0) {
      throw new EmbedServiceError(
        `${this.endpoint} returned no ${missing.join(", ")} vector for the query; the worker's OUTPUTS must include ${missing.join(", ")}`,
        undefined,
      );
    }
    // The answer does not say whether the worker cut the text (TRUNCATE=true) or not; no warning then.
    return { vectors, tokens: parsed.data.usage?.prompt_tokens, truncated: false };
  }
}
