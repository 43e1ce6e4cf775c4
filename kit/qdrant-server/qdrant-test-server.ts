/**
 * Entry point: `startQdrantTestServer()` runs a strict, in-process,
 * Qdrant-compatible REST server on 127.0.0.1 for integration tests, with
 * introspection (points, write counts, request log) and fault injection.
 *
 * Request pipeline, in Qdrant's order: injected faults → api-key check
 * (plain-text 401) → routing (404) → body size limit and JSON decoding
 * (400) → hold for upserts → handler → `{result, status: "ok", time}`.
 * Trade-off: one process-local store, no persistence, no concurrency beyond
 * Node's event loop — each request is applied atomically.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CollectionStore } from "./collection-store.js";
import { FaultInjector, type Fault } from "./fault-injection.js";
import type { PointId, StoredPoint } from "./model.js";
import { QdrantHttpError, errorEnvelope, notSupported, unauthorized } from "./qdrant-errors.js";
import { matchRoute, type Route, type RouteOutput } from "./routes.js";

export type { Fault } from "./fault-injection.js";
export type { PointId, StoredPoint, VectorValue, SparseVector } from "./model.js";

/** Qdrant's default `service.max_request_size_mb` is 32. */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

export interface QdrantTestServerOptions {
  port?: number;
  apiKey?: string;
  version?: string;
}

export interface RequestLogEntry {
  method: string;
  /** Path without query string. */
  path: string;
  status: number;
  /** Date.now() when the response was finished. */
  at: number;
}

export interface QdrantTestServer {
  url: string;
  close(): Promise<void>;
  points(collection: string): Map<PointId, StoredPoint>;
  /** Ids only: cheap where `points()` would deep-copy a large collection. */
  pointIds(collection: string): Set<PointId>;
  writeCounts(collection: string): Map<PointId, number>;
  requests: RequestLogEntry[];
  reset(): void;
  setFault(f: Fault): void;
  holdUpserts(): () => void;
}

/** Paths Qdrant serves without an api key. */
function isAuthWhitelisted(path: string): boolean {
  return path === "/" || path === "/healthz" || path.startsWith("/readyz") || path.startsWith("/livez");
}

function checkApiKey(req: IncomingMessage, path: string, apiKey: string | undefined): void {
  if (apiKey === undefined || isAuthWhitelisted(path)) return;
  const header = req.headers["api-key"];
  const bearer = req.headers.authorization?.startsWith("Bearer ") ? req.headers.authorization.slice(7) : undefined;
  const given = typeof header === "string" ? header : bearer;
  if (given === undefined) throw unauthorized("Must provide an API key or an Authorization bearer token");
  if (given !== apiKey) throw unauthorized("Invalid API key or JWT");
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > MAX_REQUEST_BYTES) {
    return Promise.reject(
      new QdrantHttpError(
        400,
        `JSON payload (${declared} bytes) is larger than allowed (limit: ${MAX_REQUEST_BYTES} bytes).`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        reject(new QdrantHttpError(400, `JSON payload has exceeded limit (${MAX_REQUEST_BYTES} bytes).`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Mirrors actix's Json extractor: JSON content type required, then serde parsing. */
function decodeJson(req: IncomingMessage, raw: Buffer): unknown {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(type)) throw new QdrantHttpError(400, "Content type error");
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch (e) {
    throw new QdrantHttpError(400, `Format error in JSON body: ${(e as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function sendOutput(res: ServerResponse, out: RouteOutput, started: number): void {
  const time = (performance.now() - started) / 1000;
  if (out.kind === "text") send(res, 200, "text/plain; charset=utf-8", out.text);
  else if (out.kind === "raw") send(res, 200, "application/json", JSON.stringify(out.json));
  else send(res, 200, "application/json", JSON.stringify({ result: out.result, status: "ok", time }));
}

function sendError(res: ServerResponse, err: unknown, started: number): void {
  const time = (performance.now() - started) / 1000;
  if (err instanceof QdrantHttpError) {
    if (err.plainText) send(res, err.status, "text/plain; charset=utf-8", err.message);
    else send(res, err.status, "application/json", errorEnvelope(err.message, time));
    return;
  }
  const message = `Service internal error: test server bug: ${(err as Error)?.stack ?? String(err)}`;
  send(res, 500, "application/json", errorEnvelope(message, time));
}

interface ServerDeps {
  store: CollectionStore;
  faults: FaultInjector;
  apiKey: string | undefined;
  version: string;
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  // Qdrant wraps the app in NormalizePath::trim, so a trailing slash is ignored.
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
  try {
    const delay = deps.faults.delayMs();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const injected = deps.faults.takeStatus();
    if (injected !== null) throw new QdrantHttpError(injected, `Injected fault: HTTP ${injected}`);
    checkApiKey(req, path, deps.apiKey);
    const match = matchRoute(req.method ?? "GET", path);
    if (!match) {
      req.resume();
      send(res, 404, "text/plain; charset=utf-8", "");
      return;
    }
    const body = await readRouteBody(req, match.route);
    const rejected = match.route.isUpsert ? deps.faults.upsertStatus(body) : null;
    if (rejected !== null)
      throw new QdrantHttpError(rejected, `Injected fault: HTTP ${rejected} for a rejected point id`);
    const unsupported = deps.faults.unsupportedKey(body);
    if (unsupported !== null) throw notSupported(`\`${unsupported}\``);
    if (match.route.isUpsert) await deps.faults.waitForHolds();
    const out = match.route.handle({
      store: deps.store,
      params: match.params,
      query: url.searchParams,
      body,
      version: deps.version,
    });
    sendOutput(res, out, started);
  } catch (err) {
    sendError(res, err, started);
  }
}

async function readRouteBody(req: IncomingMessage, route: Route): Promise<unknown> {
  const raw = await readBody(req);
  return route.needsBody ? decodeJson(req, raw) : undefined;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startQdrantTestServer(opts: QdrantTestServerOptions = {}): Promise<QdrantTestServer> {
  const deps: ServerDeps = {
    store: new CollectionStore(),
    faults: new FaultInjector(),
    apiKey: opts.apiKey,
    version: opts.version ?? "1.19.0",
  };
  const requests: RequestLogEntry[] = [];
  const server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const path = (req.url ?? "/").split("?")[0];
    res.on("finish", () => requests.push({ method, path, status: res.statusCode, at: Date.now() }));
    void handle(deps, req, res);
  });
  server.on("connection", (socket) => deps.faults.track(socket));
  const port = await listen(server, opts.port ?? 0);
  let closed: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    points: (c) => deps.store.snapshotPoints(c),
    pointIds: (c) => new Set(deps.store.peek(c).points.keys()),
    writeCounts: (c) => deps.store.snapshotWriteCounts(c),
    reset: () => {
      deps.store.reset();
      deps.faults.reset();
      requests.length = 0;
    },
    setFault: (f) => {
      deps.faults.set(f);
      // `down`: stop listening (connects are refused); any other state listens again on the same port.
      if (deps.faults.down && server.listening) server.close();
      else if (!deps.faults.down && !server.listening && !closed) server.listen(port, "127.0.0.1");
    },
    holdUpserts: () => deps.faults.hold(),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        deps.faults.releaseAll();
        server.close(() => resolve());
        server.closeAllConnections();
        deps.faults.destroyAllSockets();
      });
      return closed;
    },
  };
}
