/** Reads a query request's body, refusing what it cannot trust before spending on it: a media type
 *  other than JSON (415), a compressed body (415: decompressing would let a small request grow past
 *  the size cap in memory), a declared or streamed size over the cap (413), a body that does not
 *  finish arriving before the request's deadline (408), bytes that are not UTF-8 or text that is
 *  not JSON (400). Trades leniency for bounded work: nothing past the cap or the deadline is read.
 *  A client that goes away while its body arrives ends the read with ClientClosedError.
 *  When the read stops early the caller must close the connection (see query-connection.ts). */
import type { IncomingMessage } from "node:http";
import getRawBody from "raw-body";
import { ClientClosedError, RequestError } from "./query-requests.js";

export interface BodyLimits {
  maxBytes: number;
  /** Milliseconds left before the request's deadline. */
  timeoutMs: number;
  timeoutSetting: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** 415 unless the request says `Content-Type: application/json` (charset, if given, utf-8) and no compression. */
export function checkContentHeaders(req: IncomingMessage): void {
  const type = req.headers["content-type"];
  const [media, ...params] = (type ?? "").split(";").map((s) => s.trim().toLowerCase());
  if (media !== "application/json") {
    const got = type === undefined ? "no Content-Type" : `Content-Type ${JSON.stringify(type.slice(0, 100))}`;
    throw new RequestError(
      415,
      "unsupported_media_type",
      `the body must be JSON: send Content-Type: application/json (got ${got})`,
    );
  }
  const charset = params
    .find((p) => p.startsWith("charset="))
    ?.slice("charset=".length)
    .replace(/"/g, "");
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new RequestError(
      415,
      "unsupported_media_type",
      `the body must be UTF-8 JSON (got charset=${charset.slice(0, 40)})`,
    );
  }
  const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "") {
    throw new RequestError(
      415,
      "unsupported_media_type",
      `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported: send the body uncompressed`,
    );
  }
}

/** The body as parsed JSON, within `limits`. */
export async function readJsonBody(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limits.maxBytes) throw tooLarge(limits.maxBytes);
  const bytes = await readWithin(req, limits);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new RequestError(400, "validation_error", "the body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RequestError(400, "validation_error", `the body is not valid JSON: ${(err as Error).message}`);
  }
}

async function readWithin(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  if (limits.timeoutMs <= 0) throw timedOut(limits);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut(limits)), limits.timeoutMs);
  });
  const reading = getRawBody(req, { limit: limits.maxBytes }).catch((err: { type?: string; message: string }) => {
    if (err.type === "entity.too.large") throw tooLarge(limits.maxBytes);
    if (err.type === "request.aborted" || req.socket.destroyed)
      throw new ClientClosedError("the client closed the connection while sending the body");
    throw new RequestError(400, "validation_error", `cannot read the request body: ${err.message}`);
  });
  try {
    return await Promise.race([reading, deadline]);
  } finally {
    clearTimeout(timer);
    reading.catch(() => undefined); // settles when the connection is closed after a timeout
  }
}

export function tooLarge(limit: number): RequestError {
  return new RequestError(
    413,
    "payload_too_large",
    `the body is larger than QUERY_MAX_BODY_BYTES=${limit} bytes; send fewer or shorter texts`,
  );
}

function timedOut(limits: BodyLimits): RequestError {
  return new RequestError(408, "timeout", `the body did not arrive within ${limits.timeoutSetting}`);
}
