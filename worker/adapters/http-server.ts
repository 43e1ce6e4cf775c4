/** The worker's HTTP port: Prometheus metrics and health probes.
 *  - `/health/live`: 200 while the process serves HTTP (the event loop is not stuck).
 *  - `/health/startup`: 200 once the model is loaded and warmed up and the worker takes jobs.
 *  - `/health/ready`: 200 while running and Redis and the sink answer; 503 while starting,
 *    draining, or when a dependency does not answer.
 *  - `/health`: the same as JSON, with model, provider, device, outputs, uptime, GPU memory.
 *  - `/metrics`: Prometheus text format.
 *  - the query API's routes, when one is given (see query-api.ts).
 *  Exposes no secrets and no chunk text: URLs are shown redacted and only counts are reported.
 *  These paths need no key even beside the keyed query API: bind them with HTTP_HOST, or serve the
 *  API on its own port. Headers must arrive within `headersTimeoutMs` and a whole request within
 *  `requestTimeoutMs` (Node's defaults are 60 s and 300 s), so a slow client holds a connection briefly. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { HealthState } from "./health.js";

export interface HealthSource {
  state: HealthState;
  /** Static and cheap facts for `/health` (must contain no secrets). */
  details(): Promise<Record<string, unknown>> | Record<string, unknown>;
}

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

/** Where and how long to listen. */
export interface ListenOptions {
  /** Bind address; empty or unset = every interface. */
  host?: string;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** Routes a request; returns false when the path is not its own. */
export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

export async function startHttpServer(
  port: number,
  registry: Registry,
  health: HealthSource,
  extra?: RequestHandler,
  net: ListenOptions = {},
): Promise<HttpServer> {
  const started = Date.now();
  const server = http.createServer(serverOptions(net), (req, res) => {
    if (extra?.(req, res)) return;
    const url = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, {
        "content-type": type,
        "cache-control": "no-store",
        ...(status === 405 ? { allow: "GET, HEAD" } : {}),
      });
      res.end(body);
    };
    const fail = (err: Error) => send(500, `${err.message}\n`);
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n");
    switch (url) {
      case "/metrics":
        registry.metrics().then((text) => send(200, text, registry.contentType), fail);
        return;
      case "/health/live":
        return send(200, "ok\n");
      case "/health/startup":
        return health.state.started ? send(200, "started\n") : send(503, `${health.state.phase}\n`);
      case "/health/ready":
        health.state.report().then((r) => {
          if (r.ready) return send(200, "ready\n");
          const failed = Object.entries(r.checks)
            .filter(([, c]) => !c.ok)
            .map(([n, c]) => `${n}: ${c.error}`);
          send(503, `not ready: ${[r.phase, ...failed].join("; ")}\n`);
        }, fail);
        return;
      case "/health":
        Promise.all([health.state.report(), health.details()]).then(([r, details]) => {
          const body = {
            status: r.ready ? "ready" : r.phase === "running" ? "degraded" : r.phase,
            phase: r.phase,
            checks: r.checks,
            uptimeSeconds: Math.round((Date.now() - started) / 1000),
            ...details,
          };
          send(r.ready ? 200 : 503, JSON.stringify(body), "application/json");
        }, fail);
        return;
      default:
        send(404, "not found\n");
    }
  });
  return listen(server, port, net);
}

/** A server with only `handler`'s routes (the query API on its own port). */
export function startRouteServer(port: number, handler: RequestHandler, net: ListenOptions = {}): Promise<HttpServer> {
  const server = http.createServer(serverOptions(net), (req, res) => {
    if (handler(req, res)) return;
    res.writeHead(404, { "content-type": "application/json" });
    res.end(
      JSON.stringify({ error: "not_found", message: `no route ${req.method} ${(req.url ?? "/").split("?")[0]}` }),
    );
  });
  return listen(server, port, net);
}

/** Node checks the timeouts every `connectionsCheckingInterval` (30 s by default): check often
 *  enough that a short timeout means what it says. */
function serverOptions(net: ListenOptions): http.ServerOptions {
  const shortest = Math.min(net.headersTimeoutMs ?? Infinity, net.requestTimeoutMs ?? Infinity);
  if (!Number.isFinite(shortest)) return {};
  const requestTimeout = net.requestTimeoutMs ?? 300_000;
  return {
    requestTimeout,
    headersTimeout: Math.min(net.headersTimeoutMs ?? 60_000, requestTimeout),
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(shortest / 4))),
  };
}

async function listen(server: http.Server, port: number, net: ListenOptions): Promise<HttpServer> {
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (net.host) server.listen(port, net.host, resolve);
    else server.listen(port, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
