/** Sends a ready upsert body to Qdrant (`PUT /collections/{name}/points?wait=true`) with
 *  `node:http`/`node:https`, for QDRANT_UPSERT_BODY=prebuilt (issue 15). It reaches the address the
 *  official client reaches for QDRANT_URL (the URL's path is ignored and a missing port is 6333,
 *  as in `@qdrant/js-client-rest` 1.x), sends the same `api-key` header, aborts after
 *  QDRANT_TIMEOUT_MS, and fails the way the client fails (an error carrying `status` and Qdrant's
 *  parsed answer in `data`, or the client's timeout message), so `toSinkError` words both paths
 *  alike and the upsert grouper retries and splits them alike. */
import http from "node:http";
import https from "node:https";
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

/** One keep-alive agent per protocol for every sink in the process, as fetch keeps one pool. */
const agents = {
  "http:": new http.Agent({ keepAlive: true }),
  "https:": new https.Agent({ keepAlive: true }),
};

/** What fetch says on a refused or reset connection, so both paths word it alike (the client
 *  uses fetch); the socket error stays in `cause`. */
function networkError(err: unknown): TypeError {
  return new TypeError("fetch failed", { cause: err });
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** PUTs `body`; resolves once Qdrant answered 200 or 201 (with `wait=true`: applied). Sent with
 *  `node:http(s).request` over a keep-alive agent, with Content-Length known up front and the parts
 *  written as they are (issue 15): fetch's web-stream body path (request cloning, stream pulls)
 *  was a main-thread hot spot in the ceiling bench's profile. */
export function putUpsert(cfg: RequestConfig, body: UpsertBody): Promise<void> {
  const url = new URL(upsertUrl(cfg));
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
  };
  if (cfg.QDRANT_API_KEY) headers["api-key"] = cfg.QDRANT_API_KEY;
  const send = url.protocol === "https:" ? https.request : http.request;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const req = send(url, { method: "PUT", headers, agent: agents[url.protocol as "http:" | "https:"] }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", (err) => done(networkError(err)));
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        const statusText = res.statusMessage ?? "";
        if (status === 200 || status === 201) return done();
        const data = parse(Buffer.concat(chunks).toString("utf8"));
        if (status < 200 || status > 299) return done(new QdrantHttpError(status, statusText, data));
        // The client refuses any other 2xx the same way.
        done(new Error(`Unexpected Response: ${status} (${statusText || "Unrecognized Status Code"})`));
      });
    });
    // fetch's AbortSignal message, which the client's timeout carries too.
    const timer = setTimeout(() => {
      done(new QdrantTimeoutError("This operation was aborted"));
      req.destroy();
    }, cfg.QDRANT_TIMEOUT_MS);
    req.on("error", (err) => done(networkError(err)));
    req.cork();
    for (const part of body.parts) req.write(part);
    req.uncork();
    req.end();
  });
}
