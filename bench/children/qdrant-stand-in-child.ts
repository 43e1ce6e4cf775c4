/** Child process for the ceiling bench: a minimal Qdrant stand-in, in its own process so its
 *  work never lands on the measured worker's threads. It answers the few REST calls the
 *  worker's sink makes (collection exists / create / get, payload index, upsert with
 *  wait=true, delete by filter), parses every upsert body as JSON (so the worker's request is real and complete)
 *  and keeps only the point ids, per collection, to count them: no vectors are stored or
 *  checked (the strict test server in kit/ does that, at a cost this bench must not pay).
 *  Protocol: ready {url} -> count {collection} -> counted {points, upserts, params (as created)} -> close. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { childPort } from "../lib/child-process.js";

interface Collection {
  params: unknown;
  ids: Set<string | number>;
  upserts: number;
}

const collections = new Map<string, Collection>();
const started = performance.now();

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(
    status < 300
      ? { result: body, status: "ok", time: 0 }
      : { status: { error: String(body) }, time: (performance.now() - started) / 1e6 },
  );
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  const raw = Buffer.concat(parts).toString("utf8");
  return raw ? JSON.parse(raw) : undefined;
}

const completed = { operation_id: 0, status: "completed" };

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://stand-in");
  const m = /^\/collections\/([^/]+)(\/.*)?$/.exec(url.pathname);
  const body = await readJson(req);
  if (!m)
    return reply(res, url.pathname === "/" ? 200 : 404, url.pathname === "/" ? { title: "stand-in" } : "no route");
  const name = decodeURIComponent(m[1]);
  const rest = m[2] ?? "";
  const c = collections.get(name);
  if (req.method === "GET" && rest === "/exists") return reply(res, 200, { exists: Boolean(c) });
  if (req.method === "PUT" && rest === "") {
    collections.set(name, { params: body, ids: new Set(), upserts: 0 });
    return reply(res, 200, true);
  }
  if (!c) return reply(res, 404, `Not found: Collection \`${name}\` doesn't exist!`);
  if (req.method === "GET" && rest === "") {
    return reply(res, 200, { status: "green", config: { params: c.params }, payload_schema: {} });
  }
  if (req.method === "PUT" && rest === "/index") return reply(res, 200, completed);
  if (req.method === "PUT" && rest === "/points") {
    const points = (body as { points?: Array<{ id: string | number }> })?.points;
    if (!Array.isArray(points)) return reply(res, 400, "upsert body has no points array");
    for (const p of points) c.ids.add(p.id);
    c.upserts++;
    return reply(res, 200, completed);
  }
  // Re-ingest cleanup (deleteStale): every job asks once; nothing stale is ever here.
  if (req.method === "POST" && rest === "/points/delete") return reply(res, 200, completed);
  return reply(res, 404, `the stand-in does not serve ${req.method} ${url.pathname}`);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err: Error) => reply(res, 400, `bad request: ${err.message}`));
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = childPort();
port.send({ type: "ready", url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, pid: process.pid });
port.on((m) => {
  if (m.type === "count") {
    const c = collections.get(String(m.collection));
    port.send({ type: "counted", points: c?.ids.size ?? 0, upserts: c?.upserts ?? 0, params: c?.params ?? null });
  } else if (m.type === "drop") {
    collections.delete(String(m.collection));
    port.send({ type: "dropped" });
  } else if (m.type === "close") {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
