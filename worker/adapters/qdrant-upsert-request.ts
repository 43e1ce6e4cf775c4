/** Sends a ready upsert body to Qdrant (`PUT /collections/{name}/points?wait=true`) with Node's
 *  built-in fetch, for QDRANT_UPSERT_BODY=prebuilt (issue 15). It reaches the address the
 *  official client reaches for QDRANT_URL (the URL's path is ignored and a missing port is 6333,
 *  as in `@qdrant/js-client-rest` 1.x), sends the same `api-key` header, aborts after
 *  QDRANT_TIMEOUT_MS, and fails the way the client fails (an error carrying `status` and Qdrant's
 *  parsed answer in `data`, or the client's timeout message), so `toSinkError` words both paths
 *  alike and the upsert grouper retries and splits them alike. */
import type { Config } from "../../shared/config.js";
import type { UpsertBody } from "./qdrant-upsert-body.js";

type RequestConfig = Pick<Config, "QDRANT_URL" | "QDRANT_API_KEY" | "COLLECTION" | "QDRANT_TIMEOUT_MS">;

/** A non-2xx answer, shaped like the client's `ApiError` (status, statusText, data). */
export class QdrantHttpError extends Error {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly data: unknown,
  ) {
    super(statusText);
    this.name = "QdrantHttpError";
  }
}

/** The request timed out (the client says the same in its QdrantClientTimeoutError). */
export class QdrantTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QdrantTimeoutError";
  }
}

/** The upsert URL the official client would use for `cfg.QDRANT_URL`. */
export function upsertUrl(cfg: Pick<Config, "QDRANT_URL" | "COLLECTION">): string {
  const u = new URL(cfg.QDRANT_URL!);
  const port = u.port || "6333";
  return `${u.protocol}//${u.hostname}:${port}/collections/${encodeURIComponent(cfg.COLLECTION)}/points?wait=true`;
}

async function responseData(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The body as fetch takes it: one part as is (with its Content-Length); several as a stream of
 *  those parts, sent without copying them together (chunked transfer encoding, which Qdrant reads
 *  like any other body). */
function fetchBody(body: UpsertBody): { body: Uint8Array | AsyncIterable<Uint8Array>; duplex?: "half" } {
  if (body.parts.length === 1) return { body: body.parts[0] };
  const parts = body.parts;
  return {
    body: (async function* () {
      yield* parts;
    })(),
    duplex: "half",
  };
}

/** PUTs `body`; resolves once Qdrant answered 200 or 201 (with `wait=true`: applied). */
export async function putUpsert(cfg: RequestConfig, body: UpsertBody): Promise<void> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (cfg.QDRANT_API_KEY) headers["api-key"] = cfg.QDRANT_API_KEY;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), cfg.QDRANT_TIMEOUT_MS);
  try {
    const init = { method: "PUT", headers, signal: controller.signal, ...fetchBody(body) };
    const res = await fetch(upsertUrl(cfg), init as RequestInit);
    const data = await responseData(res);
    if (res.status === 200 || res.status === 201) return;
    if (!res.ok) throw new QdrantHttpError(res.status, res.statusText, data);
    // The client refuses any other 2xx the same way.
    throw new Error(`Unexpected Response: ${res.status} (${res.statusText || "Unrecognized Status Code"})`);
  } catch (err) {
    if ((err as Error)?.name === "AbortError") throw new QdrantTimeoutError((err as Error).message, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
