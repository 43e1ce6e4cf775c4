/** The worker's HTTP port: Prometheus metrics and health probes. Liveness answers while the
 *  process runs; readiness only once the model is loaded and the worker takes jobs, and not
 *  while it drains on shutdown. Exposes no secrets and no chunk text. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthSource {
  ready(): boolean;
  details(): Record<string, unknown>;
}

export async function startHttpServer(port: number, registry: Registry, health: HealthSource): Promise<{ port: number; close(): Promise<void> }> {
  const started = Date.now();
  const server = http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET") return send(405, "method not allowed\n");
    if (url === "/metrics") {
      registry.metrics().then((text) => send(200, text, registry.contentType), (err: Error) => send(500, `metrics failed: ${err.message}\n`));
      return;
    }
    if (url === "/health/live") return send(200, "ok\n");
    if (url === "/health/ready" || url === "/health/startup") return health.ready() ? send(200, "ready\n") : send(503, "not ready\n");
    if (url === "/health") {
      const body = { status: health.ready() ? "ready" : "not_ready", uptimeSeconds: Math.round((Date.now() - started) / 1000), ...health.details() };
      return send(health.ready() ? 200 : 503, JSON.stringify(body), "application/json");
    }
    send(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
