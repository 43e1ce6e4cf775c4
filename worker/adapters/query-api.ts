/** The query API: embeddings for search queries from the worker's own model session, in the
 *  pipeline's query lane (see worker/core/query-lane.ts), so one GPU serves both the
 *  backfill and the searches. Routes:
 *  - `POST /v1/embeddings`: OpenAI-compatible (input string or array, model, encoding_format
 *    float|base64; dimensions other than the model's is refused).
 *  - `POST /embed/batch`: `{"texts": [...]}` with dense and, when asked, sparse (token id ->
 *    weight, optionally the token strings) and ColBERT vectors.
 *  - `GET /v1/models`.
 *  Every answer is JSON; errors are `{"error": <code>, "message": ...}`: 400 validation_error,
 *  401 unauthorized, 404 model_not_found / not_found, 405 (with Allow), 408 timeout, 413 payload_too_large,
 *  415 unsupported_media_type, 429 rate_limited (with Retry-After), 500 out_of_memory / inference_error,
 *  503 not_ready (starting or draining). Answers 503 until `attach` is called and while the worker drains.
 *  Checks run cheapest first (method, address limit, key, rate bucket, readiness, headers, body), and a
 *  request refused before its body was read loses its connection: the worker never reads a body it has
 *  refused. A client that leaves before its answer is counted as client_closed, not as a failure, and its
 *  texts leave the batcher. Logs name callers by key hash (never by key) and address, and never log texts. */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Config } from "../../shared/config.js";
import { ChunkTooLongError, OutOfMemoryError, ShutdownError, TimeoutError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { EmbeddingPipeline } from "../core/pipeline.js";
import type { ModelInfo } from "../core/ports.js";
import { QUERY_LANE_LABEL } from "../core/query-lane.js";
import type { HealthState } from "./health.js";
import { QueryAuth } from "./query-auth.js";
import { checkContentHeaders, readJsonBody } from "./query-body.js";
import {
  batchResponse,
  ClientClosedError,
  openAiResponse,
  parseBatchRequest,
  parseOpenAiRequest,
  RequestError,
  type BatchRequest,
  type Limits,
  type OpenAiRequest,
} from "./query-requests.js";

type Route = { method: string; endpoint: string; path: string };
type Reply = { status: number; body: unknown; headers?: Record<string, string> };
interface RequestContext {
  requestId: string;
  /** performance.now() when the request's headers had arrived. */
  arrived: number;
  caller: string;
  address: string;
  texts: number;
}

type ApiConfig = Pick<
  Config,
  "QUERY_MAX_INPUTS" | "QUERY_MAX_BODY_BYTES" | "QUERY_TIMEOUT_MS" | "MAX_CHUNK_CHARS" | "MODEL_NAME" | "MAX_SEQ_LENGTH"
>;

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

  private async serve(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const { metrics } = this.deps;
    metrics.inflightQueries.inc();
    const ctx: RequestContext = {
      requestId: randomUUID(),
      arrived: performance.now(),
      caller: "anonymous",
      texts: 0,
      address: req.socket.remoteAddress ?? "unknown",
    };
    try {
      const { status, body, headers } = await this.process(req, res, route, ctx);
      if (gone(req, res)) this.abandoned(route, ctx);
      else this.answer(req, res, route, ctx, status, body, headers);
    } catch (err) {
      if (err instanceof ClientClosedError || gone(req, res)) {
        this.abandoned(route, ctx);
        return;
      }
      const e = toRequestError(err, this.cfg, route.endpoint === "batch" ? "texts" : "input");
      const headers: Record<string, string> = e.status === 401 ? { "www-authenticate": "Bearer" } : {};
      if (e.status === 405) headers.allow = route.method;
      if (e.retryAfterSeconds !== undefined) headers["retry-after"] = String(e.retryAfterSeconds);
      this.answer(req, res, route, ctx, e.status, { error: e.code, message: e.message }, headers);
    } finally {
      metrics.inflightQueries.dec();
    }
  }

  /** Runs the request's checks in order of cost, cheapest first; throws RequestError for a refusal. */
  private async process(req: IncomingMessage, res: ServerResponse, route: Route, ctx: RequestContext): Promise<Reply> {
    if (req.method !== route.method) {
      throw new RequestError(405, "method_not_allowed", `${route.path} takes ${route.method}`);
    }
    this.authenticate(req, ctx);
    const { pipeline, info } = this.ready();
    if (route.endpoint === "models") {
      const data = [{ id: info.name, object: "model", created: this.created, owned_by: "bge-m3-queue-worker" }];
      return { status: 200, body: { object: "list", data } };
    }
    checkContentHeaders(req);
    const body = await readJsonBody(req, {
      maxBytes: this.cfg.QUERY_MAX_BODY_BYTES,
      timeoutMs: this.left(ctx),
      timeoutSetting: `QUERY_TIMEOUT_MS=${this.cfg.QUERY_TIMEOUT_MS} ms`,
    });
    const limits: Limits = {
      maxInputs: this.cfg.QUERY_MAX_INPUTS,
      maxChars: this.cfg.MAX_CHUNK_CHARS,
      modelName: info.name,
      denseDim: info.denseDim,
      outputs: info.outputs,
    };
    let parsed: OpenAiRequest | BatchRequest;
    try {
      parsed = route.endpoint === "embeddings" ? parseOpenAiRequest(body, limits) : parseBatchRequest(body, limits);
    } catch (err) {
      this.auth.charge(ctx.caller);
      throw err;
    }
    ctx.texts = parsed.texts.length;
    const rate = this.auth.take(ctx.caller, ctx.texts);
    if (!rate.ok) {
      throw rate.retryAfterSeconds > 0
        ? new RequestError(429, "rate_limited", rate.reason, rate.retryAfterSeconds)
        : new RequestError(400, "validation_error", rate.reason);
    }
    const controller = new AbortController();
    const leave = () =>
      !res.writableEnded && controller.abort(new ClientClosedError("the client closed the connection"));
    if (gone(req, res)) leave();
    else res.once("close", leave);
    const left = this.left(ctx);
    if (left <= 0) throw new TimeoutError("deadline passed while reading the request");
    const result = await pipeline.embedQuery(parsed.texts, {
      id: ctx.requestId,
      timeoutMs: left,
      signal: controller.signal,
      withTokens: "sparseTokens" in parsed && parsed.sparseTokens,
    });
    const ms = performance.now() - ctx.arrived;
    const answer =
      "base64" in parsed ? openAiResponse(result, parsed, info.name) : batchResponse(result, parsed, info.name, ms);
    return { status: 200, body: answer };
  }

  /** Address limit for failed keys, then the key, then the caller's bucket: a caller whose bucket is
   *  empty is refused before its body is read. */
  private authenticate(req: IncomingMessage, ctx: RequestContext): void {
    const blocked = this.auth.checkAddress(ctx.address);
    if (!blocked.ok) throw new RequestError(429, "rate_limited", blocked.reason, blocked.retryAfterSeconds);
    const a = this.auth.authenticate(req.headers.authorization, ctx.address);
    if (!a.ok) {
      this.auth.failedFrom(ctx.address);
      throw new RequestError(401, "unauthorized", a.reason);
    }
    ctx.caller = a.caller;
    const admitted = this.auth.admit(ctx.caller);
    if (!admitted.ok) throw new RequestError(429, "rate_limited", admitted.reason, admitted.retryAfterSeconds);
  }

  private left(ctx: RequestContext): number {
    return this.cfg.QUERY_TIMEOUT_MS - (performance.now() - ctx.arrived);
  }

  /** Counts, logs and sends one answer. A request whose body was not read to the end gets
   *  `Connection: close` and its socket is destroyed once the answer is flushed: reading and
   *  discarding the rest would let a refused client stream without limit (issue 13). */
  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    ctx: RequestContext,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const { metrics, log } = this.deps;
    const outcome = status < 400 ? "ok" : (body as { error: string }).error;
    const seconds = (performance.now() - ctx.arrived) / 1000;
    metrics.queryRequests.inc({ endpoint: route.endpoint, outcome });
    metrics.queryLatency.observe({ endpoint: route.endpoint }, seconds);
    const line = this.logLine(route, ctx, seconds, status);
    if (status >= 500) log.warn({ ...line, err: (body as { message: string }).message }, "query request failed");
    else if (status >= 400) log.info({ ...line, error: outcome }, "query request refused");
    else log.debug(line, "query request answered");
    if (res.writableEnded || res.destroyed) return;
    const close = !req.complete;
    res.writeHead(status, {
      "content-type": "application/json",
      "cache-control": "no-store",
      ...headers,
      ...(close ? { connection: "close" } : {}),
    });
    if (close) res.once("finish", () => req.socket.destroy());
    res.end(JSON.stringify(body));
  }

  /** The client went away before its answer: counted as client_closed, not as a failure. */
  private abandoned(route: Route, ctx: RequestContext): void {
    const seconds = (performance.now() - ctx.arrived) / 1000;
    this.deps.metrics.queryRequests.inc({ endpoint: route.endpoint, outcome: "client_closed" });
    this.deps.log.info(this.logLine(route, ctx, seconds, 499), "query request abandoned by the client");
  }

  private logLine(route: Route, ctx: RequestContext, seconds: number, status: number) {
    return {
      requestId: ctx.requestId,
      lane: QUERY_LANE_LABEL,
      endpoint: route.endpoint,
      caller: ctx.caller,
      client: ctx.address,
      status,
      inputs: ctx.texts,
      ms: Math.round(seconds * 1000),
    };
  }

  private ready(): { pipeline: EmbeddingPipeline; info: ModelInfo } {
    const phase = this.deps.health.phase;
    if (!this.pipeline || !this.info || phase !== "running") {
      throw new RequestError(
        503,
        "not_ready",
        phase === "draining" || phase === "stopped"
          ? "the worker is shutting down"
          : "the worker is starting (model loading)",
      );
    }
    return { pipeline: this.pipeline, info: this.info };
  }
}

/** The client's connection closed before the answer was written. */
function gone(req: IncomingMessage, res: ServerResponse): boolean {
  return req.socket.destroyed && !res.writableEnded;
}

/** Maps a failure to the answer the caller gets. */
function toRequestError(err: unknown, cfg: ApiConfig, field: string): RequestError {
  if (err instanceof RequestError) return err;
  if (err instanceof ChunkTooLongError) {
    return new RequestError(
      400,
      "validation_error",
      `${field}[${err.chunkIndex}] has ${err.tokens} tokens, more than MAX_SEQ_LENGTH=${cfg.MAX_SEQ_LENGTH} ` +
        "(the worker runs with TRUNCATE=false)",
    );
  }
  if (err instanceof TimeoutError)
    return new RequestError(408, "timeout", `not answered within QUERY_TIMEOUT_MS=${cfg.QUERY_TIMEOUT_MS} ms`);
  if (err instanceof ShutdownError) return new RequestError(503, "not_ready", err.message);
  if (err instanceof OutOfMemoryError)
    return new RequestError(500, "out_of_memory", `${err.message}; send fewer or shorter texts`);
  return new RequestError(500, "inference_error", (err as Error).message);
}
