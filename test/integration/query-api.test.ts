/** Contract tests of the query API with real parts (the generated model in its ONNX thread,
 *  real Redis, the Qdrant-compatible test server or a real Qdrant): both endpoints' shapes,
 *  every error they answer, base64 round trip, the `openai` client library against the local
 *  server, HTTP vectors equal to the queue path's, API keys, the rate limit, ports. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, test } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import { QdrantClient } from "@qdrant/js-client-rest";
import { Queue } from "bullmq";
import OpenAI from "openai";
import { ConfigError, OutOfMemoryError } from "../../worker/errors.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { pointId } from "../../shared/ids.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics, metricTotal } from "../../worker/metrics.js";
import { cosine } from "../../worker/core/heads.js";
import type { EmbeddingModel, ModelInfo } from "../../worker/core/ports.js";
import { QdrantSink } from "../../worker/adapters/qdrant-sink.js";
import { startWorker, type StartOptions } from "../../worker/app.js";
import { testConfig, uniqueQueue, waitFor, type QdrantTarget } from "../../kit/harness.js";
import { apiFixture, assertError, call } from "../support/query-api.js";
import type { RedisClient } from "../../shared/redis.js";

const KEY_A = "key-a-0123456789abcdef";
const KEY_B = "key-b-fedcba9876543210";
const MARKER = "zebra-marker-7731";
const fx = apiFixture();
let target: QdrantTarget;
let modelDir: string;
let connection: RedisClient;
let tokenizer: Tokenizer;

before(async () => {
  await fx.ready;
  ({ target, modelDir, connection } = fx);
  tokenizer = new Tokenizer(JSON.parse(readFileSync(path.join(modelDir, "tokenizer.json"), "utf8")), {});
});

const startApi = (env: Record<string, string> = {}, opts: Partial<StartOptions> = {}) => fx.start(env, opts);
const cleanups = { push: (fn: () => Promise<unknown>) => fx.cleanup(fn) };

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const tokensOf = (text: string) => tokenizer.encode(text).ids.length;

test("POST /v1/embeddings: OpenAI shape, usage, batched equals one by one, base64 round trip, dimensions", async () => {
  const { url, w } = await startApi({ QUERY_MAX_INPUTS: "4" });
  const dim = w.model.info.denseDim;
  const texts = [
    "How do I reset my password?",
    "quarterly revenue grew by twelve percent",
    "Wer hat das Protokoll geschrieben?",
  ];
  const one = await call(`${url}/v1/embeddings`, { input: texts[0], model: "BAAI/bge-m3" });
  assert.equal(one.status, 200);
  assert.equal(one.json.object, "list");
  assert.equal(one.json.model, "BAAI/bge-m3");
  assert.equal(one.json.data.length, 1);
  assert.deepEqual(Object.keys(one.json.data[0]).sort(), ["embedding", "index", "object"]);
  assert.equal(one.json.data[0].object, "embedding");
  assert.equal(one.json.data[0].embedding.length, dim);
  assert.ok(Math.abs(norm(one.json.data[0].embedding) - 1) < 1e-5, "dense vectors are unit length");
  assert.deepEqual(one.json.usage, { prompt_tokens: tokensOf(texts[0]), total_tokens: tokensOf(texts[0]) });

  const many = await call(`${url}/v1/embeddings`, { input: texts, model: "bge-m3" });
  assert.equal(many.status, 200);
  assert.deepEqual(
    many.json.data.map((d: { index: number }) => d.index),
    [0, 1, 2],
  );
  const total = texts.reduce((s, t) => s + tokensOf(t), 0);
  assert.deepEqual(many.json.usage, { prompt_tokens: total, total_tokens: total });
  for (let i = 0; i < texts.length; i++) {
    const alone = await call(`${url}/v1/embeddings`, { input: [texts[i]], model: "BAAI/bge-m3" });
    assert.ok(
      maxDiff(alone.json.data[0].embedding, many.json.data[i].embedding) < 1e-5,
      `text ${i}: batched differs from alone`,
    );
  }

  const b64 = await call(`${url}/v1/embeddings`, { input: texts[0], model: "BAAI/bge-m3", encoding_format: "base64" });
  assert.equal(b64.status, 200);
  assert.equal(typeof b64.json.data[0].embedding, "string");
  const bytes = Buffer.from(b64.json.data[0].embedding, "base64");
  assert.equal(bytes.length, dim * 4, "base64 holds float32 values");
  const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, dim);
  assert.deepEqual(
    Array.from(decoded),
    Array.from(Float32Array.from(one.json.data[0].embedding)),
    "base64 decodes to the float answer",
  );

  assert.equal(
    (await call(`${url}/v1/embeddings`, { input: "x y", model: "BAAI/bge-m3", dimensions: dim })).status,
    200,
    "the model's own size is accepted",
  );
  assertError(
    await call(`${url}/v1/embeddings`, { input: "x", model: "BAAI/bge-m3", dimensions: 8 }),
    400,
    "validation_error",
    new RegExp(`^dimensions: .*fixed size of ${dim}`),
  );

  const models = await call(`${url}/v1/models`);
  assert.equal(models.status, 200);
  assert.equal(models.json.object, "list");
  assert.equal(models.json.data[0].id, "BAAI/bge-m3");
  assert.equal(models.json.data[0].object, "model");
});

test("POST /v1/embeddings: every validation error names the field and index; 404 unknown model; 405", async () => {
  const { url } = await startApi({ QUERY_MAX_INPUTS: "4" });
  const e = `${url}/v1/embeddings`;
  assertError(
    await call(e, { input: ["fine", "  "], model: "bge-m3" }),
    400,
    "validation_error",
    /^input\[1\] is empty/,
  );
  assertError(await call(e, { input: "", model: "bge-m3" }), 400, "validation_error", /^input\[0\] is empty/);
  assertError(await call(e, { input: [], model: "bge-m3" }), 400, "validation_error", /^input is empty/);
  assertError(
    await call(e, { input: ["a", "b", "c", "d", "e"], model: "bge-m3" }),
    400,
    "validation_error",
    /5 texts, more than the 4 allowed.*QUERY_MAX_INPUTS/,
  );
  assertError(
    await call(e, { input: [[1, 2, 3]], model: "bge-m3" }),
    400,
    "validation_error",
    /^input: .*token-id arrays are not supported/,
  );
  assertError(await call(e, { input: "a" }), 400, "validation_error", /^model: is required/);
  assertError(
    await call(e, { input: "a", model: "bge-m3", encoding_format: "int8" }),
    400,
    "validation_error",
    /^encoding_format: must be "float" or "base64"/,
  );
  assertError(await call(e, undefined, { raw: "{not json" }), 400, "validation_error", /not valid JSON/);
  assertError(
    await call(e, { input: "a", model: "text-embedding-3-small" }),
    404,
    "model_not_found",
    /"text-embedding-3-small" is not served here.*BAAI\/bge-m3/,
  );
  assertError(await call(e, undefined, { method: "GET" }), 405, "method_not_allowed", /takes POST/);
});

test("POST /embed/batch: dense by default; sparse weights with token strings; ColBERT rows; timing and batch size; errors", async () => {
  const { url, w } = await startApi({ QUERY_MAX_INPUTS: "3" });
  const info = w.model.info;
  const texts = ["The council approved the budget.", "Sparse weights are per token."];
  const dense = await call(`${url}/embed/batch`, { texts });
  assert.equal(dense.status, 200);
  assert.equal(dense.json.batch_size, 2);
  assert.equal(typeof dense.json.processing_time_ms, "number");
  assert.ok(dense.json.processing_time_ms >= 0);
  assert.equal(dense.json.model, "BAAI/bge-m3");
  assert.deepEqual(Object.keys(dense.json.data[0]).sort(), ["dense", "index"]);
  assert.equal(dense.json.data[1].dense.length, info.denseDim);

  const full = await call(`${url}/embed/batch`, {
    texts,
    return_sparse: true,
    sparse_tokens: true,
    return_colbert: true,
  });
  assert.equal(full.status, 200);
  texts.forEach((text, i) => {
    const d = full.json.data[i];
    assert.ok(maxDiff(d.dense, dense.json.data[i].dense) < 1e-5);
    const { indices, values, tokens } = d.sparse;
    assert.ok(indices.length > 0 && indices.length === values.length && indices.length === tokens.length);
    assert.deepEqual(
      [...indices].sort((a: number, b: number) => a - b),
      indices,
      "sparse indices ascend",
    );
    assert.ok(
      indices.every((id: number) => id > 3),
      "special tokens are dropped",
    );
    assert.ok(values.every((v: number) => v > 0));
    indices.forEach((id: number, k: number) =>
      assert.equal(tokens[k], tokenizer.id_to_token(id), `token string of id ${id}`),
    );
    assert.equal(d.colbert.length, tokensOf(text) - 1, "one ColBERT row per token after <s>");
    assert.ok(d.colbert.every((row: number[]) => row.length === info.colbertDim && Math.abs(norm(row) - 1) < 1e-4));
  });
  const noTokens = await call(`${url}/embed/batch`, { texts, return_sparse: true, return_dense: false });
  assert.deepEqual(Object.keys(noTokens.json.data[0]).sort(), ["index", "sparse"]);
  assert.equal(noTokens.json.data[0].sparse.tokens, undefined);

  assertError(
    await call(`${url}/embed/batch`, { text: ["a"] }),
    400,
    "validation_error",
    /^texts: must be an array of strings/,
  );
  assertError(
    await call(`${url}/embed/batch`, { texts: ["a", "b", ""] }),
    400,
    "validation_error",
    /^texts\[2\] is empty/,
  );
  assertError(
    await call(`${url}/embed/batch`, { texts: ["a", "b", "c", "d"] }),
    400,
    "validation_error",
    /4 texts, more than the 3 allowed/,
  );
  assertError(await call(`${url}/embed/batch`, { texts: [] }), 400, "validation_error", /^texts is empty/);
  assertError(
    await call(`${url}/embed/batch`, { texts: ["a"], return_dense: false }),
    400,
    "validation_error",
    /ask for at least one/,
  );
  assertError(
    await call(`${url}/embed/batch`, { texts: ["a"], return_sparse: "yes" }),
    400,
    "validation_error",
    /^return_sparse: /,
  );
  assertError(
    await call(`${url}/embed/batch`, { texts: ["a", "a".repeat(200_001)] }),
    400,
    "validation_error",
    /^texts\[1\] has 200001 characters, more than MAX_CHUNK_CHARS=200000/,
  );

  const sparseOff = await startApi({ OUTPUTS: "dense" });
  assertError(
    await call(`${sparseOff.url}/embed/batch`, { texts: ["a"], return_colbert: true }),
    400,
    "validation_error",
    /^return_colbert: this worker does not produce colbert vectors \(OUTPUTS=dense\)/,
  );
  assertError(
    await call(`${sparseOff.url}/embed/batch`, { texts: ["a"], sparse_tokens: true }),
    400,
    "validation_error",
    /^return_sparse: .*OUTPUTS=dense/,
  );
});

test("413 for a body over QUERY_MAX_BODY_BYTES, declared or streamed; the server keeps answering", async () => {
  const { url } = await startApi({ QUERY_MAX_BODY_BYTES: "2048" });
  const big = JSON.stringify({ input: "word ".repeat(1000), model: "bge-m3" });
  assertError(
    await call(`${url}/v1/embeddings`, undefined, { raw: big }),
    413,
    "payload_too_large",
    /larger than QUERY_MAX_BODY_BYTES=2048/,
  );
  // No content-length: the limit is enforced while reading.
  const parts = [big.slice(0, 1500), big.slice(1500)];
  const stream = new ReadableStream({
    pull(c) {
      const p = parts.shift();
      if (p) c.enqueue(new TextEncoder().encode(p));
      else c.close();
    },
  });
  const res = await fetch(`${url}/v1/embeddings`, {
    method: "POST",
    body: stream,
    headers: { "content-type": "application/json" },
    duplex: "half",
  } as RequestInit);
  assert.equal(res.status, 413);
  assert.equal(((await res.json()) as { error: string }).error, "payload_too_large");
  assert.equal((await call(`${url}/v1/embeddings`, { input: "still here", model: "bge-m3" })).status, 200);
});

/** A real Qdrant sink whose init() waits, to hold the worker in its start-up phase. */
class HeldSink extends QdrantSink {
  release!: () => void;
  private readonly gate = new Promise<void>((r) => (this.release = r));
  override async init(info: ModelInfo): Promise<void> {
    await this.gate;
    await super.init(info);
  }
}

test("503 not_ready while the worker starts and while it drains", async () => {
  const queueName = uniqueQueue("qapi");
  const cfg = testConfig({
    MODEL_DIR: modelDir,
    QUEUE_NAME: queueName,
    QDRANT_URL: target.url,
    QDRANT_API_KEY: target.apiKey,
    COLLECTION: `qapi_${queueName.replace(/-/g, "_")}`,
    HTTP_PORT: "9464",
    QUERY_API: "true",
    WARMUP: "false",
  });
  const sink = new HeldSink(cfg, createLogger({ level: "silent" }));
  const { freePort } = await import("../../kit/harness.js");
  const port = await freePort();
  const starting = startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
    sink,
    httpPort: port,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => (await fetch(`${url}/health/live`).catch(() => undefined))?.status === 200,
    20_000,
    "HTTP port up",
  );
  assertError(
    await call(`${url}/v1/embeddings`, { input: "too early", model: "bge-m3" }),
    503,
    "not_ready",
    /starting/,
  );
  sink.release();
  const w = await starting;
  cleanups.push(() => w.close());
  assert.equal((await call(`${url}/v1/embeddings`, { input: "now", model: "bge-m3" })).status, 200);
  if (!target.server) return; // holding writes needs the test server
  const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
  cleanups.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  const release = target.server.holdUpserts();
  const data: EmbedJobData = {
    v: JOB_SCHEMA_VERSION,
    docId: "held",
    part: 0,
    parts: 1,
    docHash: "h",
    enqueuedAt: Date.now(),
    metadata: {},
    chunks: [{ index: 0, text: "held while draining", metadata: {} }],
  };
  await queue.add(JOB_NAME, data, { jobId: "held" });
  await waitFor(async () => (await queue.getJobCounts("active")).active === 1, 10_000, "job active");
  const closing = w.close();
  assertError(await call(`${url}/embed/batch`, { texts: ["during drain"] }), 503, "not_ready", /shutting down/);
  release();
  await closing;
});

test("408 past QUERY_TIMEOUT_MS, 500 out_of_memory for a text the device cannot hold (batch-mates answered), 400 for too many tokens with TRUNCATE=false", async () => {
  let slowMs = 0;
  const wrapModel = (inner: EmbeddingModel): EmbeddingModel => ({
    info: inner.info,
    close: () => inner.close(),
    async embed(batch) {
      if (batch.queryLane && slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
      // Simulated device limit: any sequence over 40 tokens does not fit.
      if (batch.queryLane && batch.sequences.some((s) => s.length > 40))
        throw new OutOfMemoryError("out of memory: simulated (CUDA failure 2)");
      return inner.embed(batch);
    },
  });
  const { url, w } = await startApi(
    { QUERY_TIMEOUT_MS: "300", TRUNCATE: "false", MAX_SEQ_LENGTH: "64", CHUNK_TOKENS: "64", CHUNK_OVERLAP_TOKENS: "8" },
    { wrapModel },
  );
  const long = "word ".repeat(30).trim(); // over 40 tokens, under 64
  const [oom, ok] = await Promise.all([
    call(`${url}/embed/batch`, { texts: ["short one", long] }),
    call(`${url}/embed/batch`, { texts: ["a batch-mate that fits"] }),
  ]);
  assertError(oom, 500, "out_of_memory", /out of memory: simulated.*send fewer or shorter texts/);
  assert.equal(ok.status, 200, "the other request is answered");
  assert.ok((await metricTotal(w.metrics, "embed_errors_total")) > 0);
  assertError(
    await call(`${url}/v1/embeddings`, { input: ["fine", "word ".repeat(80)], model: "bge-m3" }),
    400,
    "validation_error",
    /^input\[1\] has \d+ tokens, more than MAX_SEQ_LENGTH=64/,
  );
  slowMs = 600;
  assertError(
    await call(`${url}/v1/embeddings`, { input: "slow", model: "bge-m3" }),
    408,
    "timeout",
    /QUERY_TIMEOUT_MS=300/,
  );
  // A client that goes away cancels its request: it leaves the pipeline before its batch is back.
  const ac = new AbortController();
  const gone = fetch(`${url}/v1/embeddings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: "abandoned", model: "bge-m3" }),
    signal: ac.signal,
  }).catch((e: Error) => e);
  await waitFor(() => w.pipeline.inFlightQueries === 1, 2000, "the request in flight");
  ac.abort();
  assert.ok((await gone) instanceof Error);
  await waitFor(
    () => w.pipeline.inFlightQueries === 0,
    100,
    "the abandoned request to leave the pipeline (well before QUERY_TIMEOUT_MS=300)",
  );
  slowMs = 0;
  assert.equal((await call(`${url}/v1/embeddings`, { input: "fast again", model: "bge-m3" })).status, 200);
  const text = await w.metrics.registry.metrics();
  assert.match(text, /embed_query_requests_total\{endpoint="batch",outcome="out_of_memory"\} 1/);
  assert.match(text, /embed_query_requests_total\{endpoint="embeddings",outcome="timeout"\} 1/);
  assert.match(text, /embed_errors_total\{type="oom"\} [1-9]/);
});

test("API keys: 401 without or with a wrong key, keys from env and file; keys and texts never logged", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "qapi-keys-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "keys");
  writeFileSync(file, `# query API keys\n${KEY_B}  # team b\n\n`);
  const { url, w, lines } = await startApi({ QUERY_API_KEYS: KEY_A, QUERY_API_KEYS_FILE: file });
  const none = await call(`${url}/v1/embeddings`, { input: MARKER, model: "bge-m3" });
  assertError(none, 401, "unauthorized", /missing API key/);
  assert.equal(none.headers.get("www-authenticate"), "Bearer");
  assertError(
    await call(`${url}/v1/embeddings`, { input: MARKER, model: "bge-m3" }, { key: "key-c-not-a-real-key-000" }),
    401,
    "unauthorized",
    /unknown API key/,
  );
  assertError(await call(`${url}/v1/models`, undefined, { key: "nope" }), 401, "unauthorized", /unknown API key/);
  assert.equal((await call(`${url}/v1/embeddings`, { input: MARKER, model: "bge-m3" }, { key: KEY_A })).status, 200);
  assert.equal((await call(`${url}/embed/batch`, { texts: [MARKER] }, { key: KEY_B })).status, 200);
  assert.equal((await call(`${url}/embed/batch`, { texts: [""] }, { key: KEY_B })).status, 400);
  const answered = lines.filter((l) => l.includes('"lane":"interactive"'));
  assert.ok(answered.length >= 5, "every request is logged with its lane");
  assert.ok(
    answered.some((l) => /"caller":"key:[0-9a-f]{8}"/.test(l)),
    "callers are named by key hash",
  );
  const everything = lines.join("\n") + (await w.metrics.registry.metrics());
  for (const secret of [KEY_A, KEY_B, "key-c-not-a-real-key-000", MARKER])
    assert.ok(!everything.includes(secret), `${secret.slice(0, 6)}... leaked into logs or metrics`);

  await assert.rejects(startApi({ QUERY_API_KEYS: "short" }), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /QUERY_API_KEYS entry 1: a key is shorter than 16 characters/);
    assert.ok(!err.message.includes('short"'), "the key itself is not printed");
    return true;
  });
  await assert.rejects(
    startApi({ QUERY_API_KEYS_FILE: path.join(dir, "missing") }),
    /QUERY_API_KEYS_FILE: cannot read .*ENOENT/,
  );
});

test("rate limit: a token bucket per key, counted in texts; 429 with Retry-After; a request over the burst is refused", async () => {
  const { url, w } = await startApi({
    QUERY_API_KEYS: `${KEY_A},${KEY_B}`,
    QUERY_RATE_LIMIT: "2",
    QUERY_RATE_BURST: "3",
  });
  const embed = (key: string, n = 1) =>
    call(`${url}/embed/batch`, { texts: Array.from({ length: n }, (_, i) => `text ${i}`) }, { key });
  assert.equal((await embed(KEY_A, 2)).status, 200);
  assert.equal((await embed(KEY_A)).status, 200);
  const limited = await embed(KEY_A);
  assertError(limited, 429, "rate_limited", /rate limit of 2 texts per second exceeded/);
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  assert.equal((await embed(KEY_B)).status, 200, "another key has its own bucket");
  assertError(await embed(KEY_B, 4), 400, "validation_error", /4 texts, more than QUERY_RATE_BURST=3/);
  await new Promise((r) => setTimeout(r, 700)); // 2 texts/s refill one text in 0.5 s
  assert.equal((await embed(KEY_A)).status, 200, "the bucket refills");
  assert.match(
    await w.metrics.registry.metrics(),
    /embed_query_requests_total\{endpoint="batch",outcome="rate_limited"\} 1/,
  );
});

test("ports: QUERY_API_PORT serves the API on its own port; QUERY_API is off by default", async () => {
  const own = await startApi({}, { queryPort: 0 });
  assert.notEqual(own.w.queryPort, own.w.httpPort);
  assert.equal((await call(`${own.url}/v1/models`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${own.w.httpPort}/v1/models`)).status, 404, "not on the metrics port");
  assert.equal((await fetch(`http://127.0.0.1:${own.w.httpPort}/metrics`)).status, 200);
  assertError(await call(`${own.url}/nope`), 404, "not_found", /no route GET \/nope/);
  const off = await startApi({ QUERY_API: "false" });
  assert.equal(off.w.queryPort, 0);
  const res = await fetch(`http://127.0.0.1:${off.w.httpPort}/v1/embeddings`, { method: "POST", body: "{}" });
  assert.notEqual(res.status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${off.w.httpPort}/v1/models`)).status, 404);
});

test("the openai client library works against the local server (offline): float, base64 default, errors", async () => {
  const { url } = await startApi({ QUERY_API_KEYS: KEY_A });
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${url}/v1`, maxRetries: 0 });
  const texts = ["client library check", "second input"];
  const viaClient = await client.embeddings.create({ model: "BAAI/bge-m3", input: texts }); // the client asks for base64 and decodes it
  const viaFloat = await client.embeddings.create({ model: "BAAI/bge-m3", input: texts, encoding_format: "float" });
  const direct = await call(`${url}/v1/embeddings`, { input: texts, model: "BAAI/bge-m3" }, { key: KEY_A });
  for (let i = 0; i < texts.length; i++) {
    assert.ok(maxDiff(viaClient.data[i].embedding, direct.json.data[i].embedding) < 1e-6);
    assert.ok(maxDiff(viaFloat.data[i].embedding, direct.json.data[i].embedding) < 1e-6);
  }
  assert.equal(
    viaClient.usage.prompt_tokens,
    texts.reduce((s, t) => s + tokensOf(t), 0),
  );
  assert.deepEqual(
    (await client.models.list()).data.map((m) => m.id),
    ["BAAI/bge-m3"],
  );
  await assert.rejects(
    client.embeddings.create({ model: "BAAI/bge-m3", input: "x", dimensions: 7 }),
    (err: Error) => err instanceof OpenAI.BadRequestError && err.status === 400,
  );
  const stranger = new OpenAI({ apiKey: "wrong-key-000000000000", baseURL: `${url}/v1`, maxRetries: 0 });
  await assert.rejects(
    stranger.embeddings.create({ model: "BAAI/bge-m3", input: "x" }),
    (err: Error) => err instanceof OpenAI.AuthenticationError,
  );
});

test("HTTP vectors equal the queue path's stored vectors for the same texts", async () => {
  const { url, queue, cfg } = await startApi();
  const texts = [
    "The committee met on Tuesday.",
    "Minutes were approved without changes.",
    "Sparse and dense vectors agree.",
    "Ein deutscher Satz zum Vergleich.",
    "short",
  ];
  const data: EmbedJobData = {
    v: JOB_SCHEMA_VERSION,
    docId: "same-text",
    part: 0,
    parts: 1,
    docHash: "h",
    enqueuedAt: Date.now(),
    metadata: {},
    chunks: texts.map((text, index) => ({ index, text, metadata: {} })),
  };
  await queue.add(JOB_NAME, data, { jobId: "same-text" });
  await waitFor(async () => (await queue.getJobCounts("completed")).completed === 1, 20_000, "job completed");
  const client = new QdrantClient({ url: target.url, apiKey: target.apiKey, checkCompatibility: false });
  const stored = await client.retrieve(cfg.COLLECTION, {
    ids: texts.map((_, i) => pointId("same-text", i)),
    with_vector: true,
    with_payload: true,
  });
  const byIndex = new Map(
    stored.map((p) => [
      (p.payload as { chunk_index: number }).chunk_index,
      p.vector as { dense: number[]; sparse: { indices: number[]; values: number[] } },
    ]),
  );
  const http = await call(`${url}/embed/batch`, { texts, return_sparse: true });
  assert.equal(http.status, 200);
  texts.forEach((_, i) => {
    const q = byIndex.get(i)!;
    const h = http.json.data[i];
    assert.ok(cosine(Float32Array.from(q.dense), Float32Array.from(h.dense)) > 0.99999, `text ${i}: dense differs`);
    const order = q.sparse.indices.map((id, k) => [id, q.sparse.values[k]] as const).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(
      order.map((x) => x[0]),
      h.sparse.indices,
      `text ${i}: sparse indices differ`,
    );
    assert.ok(
      maxDiff(
        order.map((x) => x[1]),
        h.sparse.values,
      ) < 1e-4,
      `text ${i}: sparse weights differ`,
    );
  });
});
