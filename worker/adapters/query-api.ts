/** The query API: embeddings for search queries from the worker's own model session, in the
 *  pipeline's priority lane (see BatchPool.takeInteractive), so one GPU serves both the
 *  backfill and the searches. Routes:
 *  - `POST /v1/embeddings`: OpenAI-compatible (input string or array, model, encoding_format
 *    float|base64; dimensions other than the model's is refused).
 *  - `POST /embed/batch`: `{"texts": [...]}` with dense and, when asked, sparse (token id ->
 *    weight, optionally the token strings) and ColBERT vectors.
 *  - `GET /v1/models`.
 *  Every answer is JSON; errors are `{"error": <code>, "message": ...}`: 400 validation_error,
 *  401 unauthorized, 404 model_not_found / not_found, 405, 408 timeout, 413 payload_too_large,
 *  429 rate_limited (with Retry-After), 500 out_of_memory / inference_error, 503 not_ready
 *  (starting or draining). Answers 503 until `attach` is called and while the worker drains.
 *  Logs name callers by key hash, never by key, and never log texts. */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import getRawBody from "raw-body";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { ChunkTooLongError, OutOfMemoryError, ShutdownError, TimeoutError } from "../../shared/errors.js";
import type { Metrics } from "../../shared/metrics.js";
import type { EmbeddingPipeline } from "../core/pipeline.js";
import type { ModelInfo } from "../core/ports.js";
import type { HealthState } from "./health.js";
import { QueryAuth } from "./query-auth.js";
import {
  batchResponse, openAiResponse, parseBatchRequest, parseOpenAiRequest, RequestError, type Limits,
} from "./query-requests.js";

type ApiConfig = Pick<Config, "QUERY_MAX_INPUTS" | "QUERY_MAX_BODY_BYTES" | "QUERY_TIMEOUT_MS" | "MAX_CHUNK_CHARS" | "MODEL_NAME" | "MAX_SEQ_LENGTH">;

const ROUTES: Record<string, { method: string; endpoint: string }> = {
  "/v1/embeddings": { method: "POST", endpoint: "embeddings" },
  "/embed/batch": { method: "POST", endpoint: "batch" },
  "/v1/models": { method: "GET", endpoint: "models" },
};

export class QueryApi {
  private pipeline: EmbeddingPipeline | undefined;
  private info: ModelInfo | undefined;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly cfg: ApiConfig,
    private readonly auth: QueryAuth,
    private readonly deps: { metrics: Metrics; log: Logger; health: HealthState },
  ) {}

  /** The model is loaded and the pipeline runs: start answering. */
  attach(pipeline: EmbeddingPipeline, info: ModelInfo): void {
    this.pipeline = pipeline;
    this.info = info;
  }

  /** Handles the request if it is one of the API's paths; returns false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0].replace(/\/+$/, "");
    const route = ROUTES[path];
    if (!route) return false;
    void this.serve(req, res, { ...route, path });
    return true;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, route: { method: string; endpoint: string; path: string }): Promise<void> {
    const arrived = performance.now();
    const requestId = randomUUID();
    const { metrics, log } = this.deps;
    metrics.inflightQueries.inc();
    let caller = "anonymous";
    let texts = 0;
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const outcome = status < 400 ? "ok" : (body as { error: string }).error;
      const seconds = (performance.now() - arrived) / 1000;
      metrics.queryRequests.inc({ endpoint: route.endpoint, outcome });
      metrics.queryLatency.observe({ endpoint: route.endpoint }, seconds);
      const line = { requestId, lane: "interactive", endpoint: route.endpoint, caller, status, inputs: texts, ms: Math.round(seconds * 1000) };
      if (status >= 500) log.warn({ ...line, err: (body as { message: string }).message }, "query request failed");
      else if (status >= 400) log.info({ ...line, error: outcome }, "query request refused");
      else log.debug(line, "query request answered");
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method !== route.method) {
        throw new RequestError(405, "method_not_allowed", `${route.path} takes ${route.method}`);
      }
      const a = this.auth.authenticate(req.headers.authorization, req.socket.remoteAddress ?? "unknown");
      if (!a.ok) throw new RequestError(401, "unauthorized", a.reason);
      caller = a.caller;
      const { pipeline, info } = this.ready();
      if (route.endpoint === "models") {
        await drain(req);
        return answer(200, { object: "list", data: [{ id: info.name, object: "model", created: this.created, owned_by: "bge-m3-queue-worker" }] });
      }
      const body = await this.readJson(req);
      const limits: Limits = { maxInputs: this.cfg.QUERY_MAX_INPUTS, maxChars: this.cfg.MAX_CHUNK_CHARS, modelName: info.name, denseDim: info.denseDim, outputs: info.outputs };
      const parsed = route.endpoint === "embeddings" ? parseOpenAiRequest(body, limits) : parseBatchRequest(body, limits);
      texts = parsed.texts.length;
      const rate = this.auth.take(caller, texts);
      if (!rate.ok) {
        return rate.retryAfterSeconds > 0
          ? answer(429, { error: "rate_limited", message: rate.reason }, { "retry-after": String(rate.retryAfterSeconds) })
          : answer(400, { error: "validation_error", message: rate.reason });
      }
      const controller = new AbortController();
      res.once("close", () => !res.writableEnded && controller.abort());
      const left = this.cfg.QUERY_TIMEOUT_MS - (performance.now() - arrived);
      if (left <= 0) throw new TimeoutError("deadline passed while reading the request");
      const result = await pipeline.embedInteractive(parsed.texts, {
        id: requestId, timeoutMs: left, signal: controller.signal, withTokens: "sparseTokens" in parsed && parsed.sparseTokens,
      });
      const ms = performance.now() - arrived;
      answer(200, "base64" in parsed ? openAiResponse(result, parsed, info.name) : batchResponse(result, parsed, info.name, ms));
    } catch (err) {
      const e = toRequestError(err, this.cfg, route.endpoint === "batch" ? "texts" : "input");
      answer(e.status, { error: e.code, message: e.message }, e.status === 401 ? { "www-authenticate": "Bearer" } : {});
    } finally {
      metrics.inflightQueries.dec();
    }
  }

  private ready(): { pipeline: EmbeddingPipeline; info: ModelInfo } {
    const phase = this.deps.health.phase;
    if (!this.pipeline || !this.info || phase !== "running") {
      throw new RequestError(503, "not_ready", phase === "draining" || phase === "stopped" ? "the worker is shutting down" : "the worker is starting (model loading)");
    }
    return { pipeline: this.pipeline, info: this.info };
  }

  private async readJson(req: IncomingMessage): Promise<unknown> {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > this.cfg.QUERY_MAX_BODY_BYTES) {
      req.resume();
      throw tooLarge(this.cfg.QUERY_MAX_BODY_BYTES);
    }
    let text: string;
    try {
      text = await getRawBody(req, { limit: this.cfg.QUERY_MAX_BODY_BYTES, encoding: "utf-8" });
    } catch (err) {
      if ((err as { type?: string }).type === "entity.too.large") throw tooLarge(this.cfg.QUERY_MAX_BODY_BYTES);
      throw new RequestError(400, "validation_error", `cannot read the request body: ${(err as Error).message}`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new RequestError(400, "validation_error", `the body is not valid JSON: ${(err as Error).message}`);
    }
  }
}

function tooLarge(limit: number): RequestError {
  return new RequestError(413, "payload_too_large", `the body is larger than QUERY_MAX_BODY_BYTES=${limit} bytes; send fewer or shorter texts`);
}

async function drain(req: IncomingMessage): Promise<void> {
  req.resume();
  if (!req.complete) await new Promise((r) => req.once("end", r));
}

/** Maps a failure to the answer the caller gets. */
function toRequestError(err: unknown, cfg: ApiConfig, field: string): RequestError {
  if (err instanceof RequestError) return err;
  if (err instanceof ChunkTooLongError) {
    return new RequestError(400, "validation_error", `${field}[${err.chunkIndex}] has ${err.tokens} tokens, more than MAX_SEQ_LENGTH=${cfg.MAX_SEQ_LENGTH} (the worker runs with TRUNCATE=false)`);
  }
  if (err instanceof TimeoutError) return new RequestError(408, "timeout", `not answered within QUERY_TIMEOUT_MS=${cfg.QUERY_TIMEOUT_MS} ms`);
  if (err instanceof ShutdownError) return new RequestError(503, "not_ready", err.message);
  if (err instanceof OutOfMemoryError) return new RequestError(500, "out_of_memory", `${err.message}; send fewer or shorter texts`);
  return new RequestError(500, "inference_error", (err as Error).message);
}
