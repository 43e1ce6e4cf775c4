/**
 * Route table of the test server: maps method + path (as sent by
 * `@qdrant/js-client-rest`) to handlers over the CollectionStore.
 *
 * Trade-off: only the endpoints this project uses exist; anything else is a
 * 404 with an empty body, which is what actix answers for unknown routes.
 * Wrong methods on known paths are also 404 (actix falls through to the
 * default service when no method guard matches).
 */
import type { CollectionStore } from "./collection-store.js";
import { countPoints, retrievePoints, scrollPoints } from "./point-reads.js";
import { QdrantHttpError } from "./qdrant-errors.js";
import { queryPoints } from "./vector-query.js";

export type RouteOutput =
  { kind: "envelope"; result: unknown } | { kind: "raw"; json: unknown } | { kind: "text"; text: string };

export interface RouteContext {
  store: CollectionStore;
  params: string[];
  query: URLSearchParams;
  body: unknown;
  version: string;
}

export interface Route {
  method: string;
  pattern: RegExp;
  /** Whether the handler consumes a JSON body (decides body parsing errors). */
  needsBody: boolean;
  /** Upserts can be held by `holdUpserts()`. */
  isUpsert?: boolean;
  handle(ctx: RouteContext): RouteOutput;
}

const NAME = "([^/]+)";

/** `wait` is a bool query param; anything else fails like actix's query extractor. */
export function waitParam(query: URLSearchParams): boolean {
  const raw = query.get("wait");
  if (raw === null) return false;
  if (raw === "true" || raw === "false") return raw === "true";
  throw new QdrantHttpError(
    400,
    `Deserialize error in query parameters: wait: provided string was not \`true\` or \`false\``,
  );
}

function timeoutParam(query: URLSearchParams): void {
  const raw = query.get("timeout");
  if (raw !== null && !/^\d+$/.test(raw)) {
    throw new QdrantHttpError(400, `Deserialize error in query parameters: timeout: invalid digit found in string`);
  }
}

const envelope = (result: unknown): RouteOutput => ({ kind: "envelope", result });

function route(method: string, path: string, needsBody: boolean, handle: Route["handle"], isUpsert = false): Route {
  return { method, pattern: new RegExp(`^${path}$`), needsBody, handle, isUpsert };
}

export const ROUTES: Route[] = [
  route("GET", "/", false, (c) => ({
    kind: "raw",
    json: {
      title: "qdrant - vector search engine",
      version: c.version,
      commit: "0000000000000000000000000000000000000000",
    },
  })),
  route("GET", "/healthz", false, () => ({ kind: "text", text: "healthz check passed" })),
  route("GET", "/livez", false, () => ({ kind: "text", text: "healthz check passed" })),
  route("GET", "/readyz", false, () => ({ kind: "text", text: "all shards are ready" })),
  route("GET", "/collections", false, (c) => envelope({ collections: c.store.names().map((name) => ({ name })) })),
  route("GET", `/collections/${NAME}`, false, (c) => envelope(c.store.info(c.params[0]))),
  route("PUT", `/collections/${NAME}`, true, (c) => {
    timeoutParam(c.query);
    return envelope(c.store.create(c.params[0], c.body));
  }),
  route("DELETE", `/collections/${NAME}`, false, (c) => {
    timeoutParam(c.query);
    return envelope(c.store.drop(c.params[0]));
  }),
  route("GET", `/collections/${NAME}/exists`, false, (c) => envelope({ exists: c.store.exists(c.params[0]) })),
  route("PUT", `/collections/${NAME}/index`, true, (c) =>
    envelope(c.store.createPayloadIndex(c.params[0], c.body, waitParam(c.query))),
  ),
  route(
    "PUT",
    `/collections/${NAME}/points`,
    true,
    (c) => {
      timeoutParam(c.query);
      return envelope(c.store.upsert(c.params[0], c.body, waitParam(c.query)));
    },
    true,
  ),
  route("POST", `/collections/${NAME}/points`, true, (c) => envelope(retrievePoints(c.store, c.params[0], c.body))),
  route("POST", `/collections/${NAME}/points/scroll`, true, (c) =>
    envelope(scrollPoints(c.store, c.params[0], c.body)),
  ),
  route("POST", `/collections/${NAME}/points/count`, true, (c) => envelope(countPoints(c.store, c.params[0], c.body))),
  route("POST", `/collections/${NAME}/points/delete`, true, (c) =>
    envelope(c.store.deletePoints(c.params[0], c.body, waitParam(c.query))),
  ),
  route("POST", `/collections/${NAME}/points/query`, true, (c) => envelope(queryPoints(c.store, c.params[0], c.body))),
];

/** Find the route for a request; path segments are URL-decoded into `params`. */
export function matchRoute(method: string, path: string): { route: Route; params: string[] } | null {
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    const m = r.pattern.exec(path);
    if (m) return { route: r, params: m.slice(1).map((s) => decodeURIComponent(s)) };
  }
  return null;
}
