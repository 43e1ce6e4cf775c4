/** Property-based fuzzing of the query API (issue 13): seeded, bounded runs of random requests
 *  (random JSON, fields of the wrong type, strings with lone surrogates, huge numbers, deep nesting,
 *  random bytes, odd content types and encodings, random methods and paths) against a real worker
 *  process with QUERY_API=true on the generated model. Throughout, `/health/live` must answer within 200 ms;
 *  every answer must be a well-formed JSON error with a known code or a success of the documented
 *  shape; afterwards a valid request must still succeed. */
import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import fc from "fast-check";
import { Queue } from "bullmq";
import { freePort, uniqueQueue, waitFor } from "../../kit/harness.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import { apiFixture, call } from "../support/query-api.js";

/** The worker under test: its two ports and its dense size. */
interface Target {
  httpPort: number;
  queryPort: number;
  denseDim: number;
}

const SEED = 1306;
const RUNS = 300;
const LIVE_BUDGET_MS = 200;
const ERROR_CODES = new Set([
  "validation_error",
  "unauthorized",
  "model_not_found",
  "not_found",
  "method_not_allowed",
  "timeout",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "out_of_memory",
  "inference_error",
  "not_ready",
]);
const STATUS_OF: Record<string, number> = {
  validation_error: 400,
  unauthorized: 401,
  model_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  timeout: 408,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  out_of_memory: 500,
  inference_error: 500,
  not_ready: 503,
};

const fx = apiFixture();

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

/** Any UTF-16 code unit, so lone surrogates and NUL are common. */
const anyUnits = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const text = fc.oneof(
  fc.string({ maxLength: 60 }),
  anyUnits,
  fc.constantFrom("", " ", "\u0000", "\ud800", "a\udc00b", "\u{1F600}"),
);
const hugeNumber = fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, 1e-320, -0, 4096, 1024, 3.5);
const oddValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), hugeNumber, text, fc.constant(null));

const embeddingsBody = fc.record(
  {
    input: fc.oneof(text, fc.array(text, { maxLength: 6 }), oddValue),
    model: fc.oneof(fc.constantFrom("bge-m3", "BAAI/bge-m3", "BGE-M3", "text-embedding-3-small"), oddValue),
    encoding_format: fc.oneof(fc.constantFrom("float", "base64", "int8"), oddValue),
    dimensions: fc.oneof(hugeNumber, fc.integer(), oddValue),
    user: oddValue,
  },
  { requiredKeys: [] },
);

const batchBody = fc.record(
  {
    texts: fc.oneof(fc.array(text, { maxLength: 6 }), oddValue),
    return_dense: fc.oneof(fc.boolean(), oddValue),
    return_sparse: fc.oneof(fc.boolean(), oddValue),
    return_colbert: fc.oneof(fc.boolean(), oddValue),
    sparse_tokens: fc.oneof(fc.boolean(), oddValue),
  },
  { requiredKeys: [] },
);

/** JSON text the generator's objects cannot express: deep nesting, escapes of lone surrogates, huge literals. */
const rawJson = fc.oneof(
  fc.integer({ min: 1, max: 40_000 }).map((n) => `{"texts":${"[".repeat(n)}${"]".repeat(n)}}`),
  fc.integer({ min: 1, max: 20_000 }).map((n) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`),
  fc.constantFrom(
    '{"texts":["\\ud800"]}',
    '{"input":"\\udfff\\ud800","model":"bge-m3"}',
    '{"texts":["ok"],"return_dense":1e99999}',
    '{"input":"x","model":"bge-m3","dimensions":123456789012345678901234567890}',
    '{"__proto__":{"texts":["x"]}}',
    '{"texts":["a"],"constructor":{"prototype":{"polluted":true}}}',
    "",
    "null",
    "[]",
    '"texts"',
    "{",
    "\u0000",
  ),
);

/** Well-formed requests, so the success side is fuzzed too. */
const plain = fc.string({ unit: "grapheme", minLength: 1, maxLength: 80 });
const validBody = fc.oneof(
  fc.record(
    {
      input: fc.oneof(plain, fc.array(plain, { minLength: 1, maxLength: 4 })),
      model: fc.constant("bge-m3"),
      encoding_format: fc.constantFrom("float", "base64"),
    },
    { requiredKeys: ["input", "model"] },
  ),
  fc.record(
    {
      texts: fc.array(plain, { minLength: 1, maxLength: 4 }),
      return_sparse: fc.boolean(),
      sparse_tokens: fc.boolean(),
      return_colbert: fc.boolean(),
    },
    { requiredKeys: ["texts"] },
  ),
);

const body: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { weight: 4, arbitrary: validBody.map((b) => Buffer.from(JSON.stringify(b))) },
  { weight: 4, arbitrary: embeddingsBody.map((b) => Buffer.from(JSON.stringify(b))) },
  { weight: 4, arbitrary: batchBody.map((b) => Buffer.from(JSON.stringify(b))) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => Buffer.from(JSON.stringify(v) ?? "null")) },
  { weight: 2, arbitrary: rawJson.map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const contentType = fc.option(
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "APPLICATION/JSON",
        "application/jsonx",
        ";;;",
        'application/json;charset="utf-8"',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 30 }) },
  ),
  { freq: 8 },
);

const contentEncoding = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom("gzip", "deflate", "br", "identity", "GZIP", "x-nonsense", "") },
);

const pathArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      "/v1/embeddings",
      "/embed/batch",
      "/v1/models",
      "/v1/embeddings/",
      "/embed/batch?x=1",
      "/embed/batch//",
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "/",
      "/v1",
      "/v1/embeddings/../models",
      "/%2e%2e/metrics",
      "/v1/models?%ff",
      "/embed/%00",
    ),
  },
  { weight: 1, arbitrary: fc.webPath() },
);

const request: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constant("route's own") },
      { weight: 1, arbitrary: fc.constantFrom("POST", "GET") },
      { weight: 2, arbitrary: fc.constantFrom("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND", "PURGE") },
    ),
    path: pathArb,
    contentType,
    contentEncoding,
    authorization: fc.option(fc.oneof(fc.constant("Bearer x"), fc.string({ unit: "grapheme-ascii", maxLength: 40 })), {
      freq: 5,
    }),
    body,
  })
  .map((r) => {
    const headers: Record<string, string> = {};
    if (r.contentType !== null) headers["content-type"] = r.contentType;
    if (r.contentEncoding !== null) headers["content-encoding"] = r.contentEncoding;
    if (r.authorization !== null) headers.authorization = r.authorization;
    // Framed explicitly: Node's client sends a GET's body with no length at all, which is not HTTP.
    if (r.body !== undefined) headers["content-length"] = String(r.body.length);
    const method = r.method !== "route's own" ? r.method : r.path.startsWith("/v1/models") ? "GET" : "POST";
    return { method, path: r.path.startsWith("/") ? r.path : `/${r.path}`, headers, body: r.body };
  });

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function send(port: number, agent: http.Agent, r: FuzzRequest): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: r.method, path: r.path, headers: r.headers, agent, timeout: 15_000 },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer to ${r.method} ${r.path} within 15 s`)));
    req.on("error", reject);
    req.end(r.body);
  });
}

/** Throws unless `reply` is a documented success for its endpoint or a well-formed JSON error. */
function checkReply(api: Target, r: FuzzRequest, reply: Reply): void {
  const what = `${r.method} ${r.path} -> ${reply.status}: ${reply.text.slice(0, 200)}`;
  if (r.method === "HEAD") return void assert.ok(reply.status >= 200 && reply.status < 600, what);
  assert.match(String(reply.headers["content-type"]), /^application\/json/, what);
  const json = JSON.parse(reply.text) as Record<string, unknown>;
  if (reply.status === 200) {
    assert.ok(r.path.startsWith("/v1/models") || !sentLoneSurrogate(r), `ill-formed Unicode was embedded: ${what}`);
    return checkSuccess(api, r.path, json, what);
  }
  assert.deepEqual(Object.keys(json).sort(), ["error", "message"], what);
  assert.ok(ERROR_CODES.has(json.error as string), `unknown error code: ${what}`);
  assert.equal(reply.status, STATUS_OF[json.error as string], what);
  assert.ok(typeof json.message === "string" && json.message.length > 0 && json.message.length < 2000, what);
  if (reply.status === 405) assert.ok(reply.headers.allow, `405 without Allow: ${what}`);
  assert.ok(
    !["out_of_memory", "inference_error", "not_ready", "timeout"].includes(json.error as string),
    `a server-side failure: ${what}`,
  );
}

/** The request's texts hold a lone surrogate (the API must refuse them with 400). */
function sentLoneSurrogate(r: FuzzRequest): boolean {
  let body: { input?: unknown; texts?: unknown };
  try {
    body = JSON.parse(r.body?.toString("utf8") ?? "null") ?? {};
  } catch {
    return false;
  }
  const texts = [body.input, body.texts].flat().filter((t): t is string => typeof t === "string");
  return texts.some((t) => /\p{Cs}/u.test(t));
}

function checkSuccess(api: Target, pathname: string, json: Record<string, unknown>, what: string): void {
  const dim = api.denseDim;
  const data = json.data as Array<Record<string, unknown>>;
  assert.ok(Array.isArray(data), what);
  if (pathname.startsWith("/v1/models")) return void assert.equal(json.object, "list", what);
  const unit = (v: unknown) => Array.isArray(v) && v.length === dim && v.every(Number.isFinite);
  if (pathname.startsWith("/v1/embeddings")) {
    assert.equal(json.object, "list", what);
    for (const [i, d] of data.entries()) {
      assert.equal(d.index, i, what);
      assert.ok(
        unit(d.embedding) || (typeof d.embedding === "string" && Buffer.from(d.embedding, "base64").length === dim * 4),
        what,
      );
    }
    return;
  }
  assert.equal(json.batch_size, data.length, what);
  for (const [i, d] of data.entries()) {
    assert.equal(d.index, i, what);
    if (d.dense !== undefined) assert.ok(unit(d.dense), what);
    assert.ok(d.dense !== undefined || d.sparse !== undefined || d.colbert !== undefined, what);
  }
}

/** Polls `/health/live` until stopped; returns the slowest answer in milliseconds. */
function watchLiveness(port: number): { stop(): Promise<{ slowest: number; probes: number; failed: string[] }> } {
  let running = true;
  let slowest = 0;
  let probes = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(2000) }).catch(
        (e: Error) => e,
      );
      const ms = performance.now() - t;
      probes++;
      slowest = Math.max(slowest, ms);
      if (res instanceof Error || res.status !== 200)
        failed.push(res instanceof Error ? res.message : String(res.status));
      else await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { stop: async () => ((running = false), await loop, { slowest, probes, failed }) };
}

/** A worker process of its own, so its liveness is measured apart from the fuzzing client. */
async function spawnApiWorker(): Promise<{ child: ChildWorker; api: Target }> {
  const [httpPort, queryPort] = [await freePort(), await freePort()];
  const queueName = uniqueQueue("qfuzz");
  const child = await spawnWorker({
    MODEL_DIR: fx.modelDir,
    QUEUE_NAME: queueName,
    QDRANT_URL: fx.target.url,
    QDRANT_API_KEY: fx.target.apiKey,
    COLLECTION: `qfuzz_${queueName.replace(/-/g, "_")}`,
    HTTP_PORT: String(httpPort),
    QUERY_API: "true",
    QUERY_API_PORT: String(queryPort),
    WARMUP: "false",
    OUTPUTS: "dense,sparse,colbert",
    QUERY_MAX_INPUTS: "4",
    QUERY_MAX_BODY_BYTES: "65536",
    QUERY_TIMEOUT_MS: "5000",
    MAX_CHUNK_CHARS: "2000",
    MAX_SEQ_LENGTH: "128",
    CHUNK_TOKENS: "128",
    CHUNK_OVERLAP_TOKENS: "16",
    LOG_LEVEL: "warn",
  });
  fx.cleanup(async () => {
    await child.stop();
    const queue = new Queue(queueName, { connection: fx.connection });
    await queue.obliterate({ force: true });
    await queue.close();
  });
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${queryPort}/v1/models`).catch(() => undefined))?.status === 200,
    60_000,
    "the worker's query API",
  );
  const probe = await call(`http://127.0.0.1:${queryPort}/embed/batch`, { texts: ["size probe"] });
  return { child, api: { httpPort, queryPort, denseDim: probe.json.data[0].dense.length } };
}

test("fuzzed requests: the worker stays up and live; every answer is JSON of a documented shape", async (t) => {
  const { child, api } = await spawnApiWorker();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  fx.cleanup(async () => agent.destroy());
  const live = watchLiveness(api.httpPort);
  const seen = new Map<number, number>();
  const fuzzed = await fc
    .assert(
      fc.asyncProperty(request, async (r) => {
        const reply = await send(api.queryPort, agent, r);
        seen.set(reply.status, (seen.get(reply.status) ?? 0) + 1);
        checkReply(api, r, reply);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
    )
    .catch((err: Error) => err);
  const { slowest, probes, failed } = await live.stop();
  if (fuzzed instanceof Error) throw fuzzed;
  assert.equal(child.proc.exitCode, null, `the worker exited: ${child.output().slice(-2000)}`);
  assert.deepEqual(failed, [], "/health/live failed during the fuzzing");
  assert.ok(probes > 10, `only ${probes} liveness probes`);
  t.diagnostic(
    `statuses: ${JSON.stringify(Object.fromEntries(seen))}; /health/live slowest ${slowest.toFixed(0)} ms of ${probes}`,
  );
  assert.ok(slowest < LIVE_BUDGET_MS, `/health/live took ${slowest.toFixed(0)} ms (budget ${LIVE_BUDGET_MS} ms)`);
  // The run exercised both sides: successes and refusals.
  assert.ok(
    (seen.get(200) ?? 0) > 0 && (seen.get(400) ?? 0) > 0 && (seen.get(415) ?? 0) > 0,
    `statuses: ${JSON.stringify([...seen])}`,
  );
  const after = await call(`http://127.0.0.1:${api.queryPort}/embed/batch`, {
    texts: ["a valid request after the fuzzing"],
    return_sparse: true,
  });
  assert.equal(after.status, 200);
  assert.equal(after.json.data[0].dense.length, api.denseDim);
  assert.equal(child.proc.exitCode, null, "the worker is still up");
});
