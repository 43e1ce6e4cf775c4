/** The query API against hostile and careless clients (issue 13), one test per finding, with real
 *  parts (the generated model in its thread, real Redis, the Qdrant-compatible test server):
 *  a refused client cannot stream without limit, a body or headers that never finish are cut at
 *  QUERY_TIMEOUT_MS, empty or malformed key lists refuse to start, an abandoned request is counted
 *  as client_closed and its texts leave the batcher, failed keys and refused bodies are
 *  rate-limited and logged with the address, non-JSON media types and compressed bodies get 415,
 *  405 carries Allow, lone surrogates get 400, and the ports bind where HTTP_HOST says. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import { ConfigError } from "../../worker/errors.js";
import type { EmbeddingModel } from "../../worker/core/ports.js";
import { loadApiKeys } from "../../worker/adapters/query-auth.js";
import { waitFor } from "../../kit/harness.js";
import { apiFixture, assertError, call } from "../support/query-api.js";

const KEY = "key-a-0123456789abcdef";
const fx = apiFixture();

interface Exchange {
  /** What the server sent back. */
  received: string;
  /** Bytes the client managed to hand to its socket. */
  written: number;
  /** Milliseconds from the first byte sent until the server closed the connection (undefined: not within `waitMs`). */
  closedAfterMs?: number;
}

/** Sends `head`, then (with `flood`) body bytes as fast as the socket takes them, for at most `waitMs`. */
function exchange(
  port: number,
  head: string,
  opts: { flood?: boolean; waitMs: number; host?: string },
): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const s = net.connect(port, opts.host ?? "127.0.0.1");
    const result: Exchange = { received: "", written: 0 };
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(result);
    };
    const timer = setTimeout(finish, opts.waitMs);
    const pump = () => {
      while (!done && !s.destroyed) {
        result.written += chunk.length;
        if (!s.write(chunk)) return void s.once("drain", pump);
      }
    };
    s.on("data", (d) => (result.received += d.toString("latin1")));
    s.on("error", () => undefined);
    s.on("close", () => {
      result.closedAfterMs ??= performance.now() - started;
      finish();
    });
    s.on("end", () => (result.closedAfterMs ??= performance.now() - started));
    s.write(head, () => opts.flood && pump());
  });
}

const post = (pathname: string, headers: Record<string, string | number>) =>
  `POST ${pathname} HTTP/1.1\r\nhost: t\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;

test("a refused request (401, 413 by Content-Length) is answered, then its connection is closed", async () => {
  const { w } = await fx.start({ QUERY_API_KEYS: KEY, QUERY_MAX_BODY_BYTES: "4096" });
  const huge = 100 * 1024 ** 3;
  const cases = [
    {
      name: "401 without a key",
      head: post("/v1/embeddings", { "content-type": "application/json", "content-length": huge }),
      status: 401,
    },
    {
      name: "413 by Content-Length",
      head: post("/embed/batch", {
        "content-type": "application/json",
        "content-length": huge,
        authorization: `Bearer ${KEY}`,
      }),
      status: 413,
    },
  ];
  for (const c of cases) {
    const x = await exchange(w.queryPort, c.head, { flood: true, waitMs: 4000 });
    assert.match(x.received, new RegExp(`^HTTP/1.1 ${c.status} `), `${c.name}: answered`);
    assert.match(x.received, /connection: close/i, `${c.name}: says it closes`);
    assert.ok(
      x.closedAfterMs !== undefined && x.closedAfterMs < 3000,
      `${c.name}: the server kept the connection open`,
    );
    // Kernel buffers take a few MiB; before the fix the server read gigabytes in the same time.
    assert.ok(
      x.written < 64 * 1024 ** 2,
      `${c.name}: the server took ${(x.written / 1024 ** 2).toFixed(0)} MiB of a refused body`,
    );
  }
  assert.equal(
    (await call(`http://127.0.0.1:${w.queryPort}/embed/batch`, { texts: ["still answering"] }, { key: KEY })).status,
    200,
  );
});

test("a body that never completes gets 408 at QUERY_TIMEOUT_MS, then is closed; so are slow headers", async () => {
  const { w } = await fx.start({ QUERY_TIMEOUT_MS: "500" });
  const head = post("/v1/embeddings", { "content-type": "application/json", "content-length": 100 });
  const body = await exchange(w.queryPort, `${head}{"input":`, { waitMs: 5000 });
  assert.match(body.received, /^HTTP\/1.1 408 /, "a JSON 408");
  assert.match(body.received, /"error":"timeout".*QUERY_TIMEOUT_MS=500/);
  assert.ok(
    body.closedAfterMs !== undefined && body.closedAfterMs >= 450 && body.closedAfterMs < 2000,
    `closed after ${body.closedAfterMs} ms`,
  );
  const headers = await exchange(w.queryPort, "POST /v1/embeddings HTTP/1.1\r\nhost: t\r\nx-slow: 1", { waitMs: 5000 });
  assert.ok(
    headers.closedAfterMs !== undefined && headers.closedAfterMs < 2500,
    `headers held the connection ${headers.closedAfterMs} ms`,
  );
  assert.equal((await call(`http://127.0.0.1:${w.queryPort}/v1/models`)).status, 200);
});

test("an empty key list refuses to start; keys with a space or # are refused by line number", async () => {
  for (const keys of [",,,", " ", " , "]) {
    assert.throws(
      () => loadApiKeys({ QUERY_API_KEYS: keys, QUERY_API_KEYS_FILE: undefined }),
      /QUERY_API_KEYS is set but holds no key/,
    );
  }
  await assert.rejects(
    fx.start({ QUERY_API_KEYS: ",,," }),
    (err: Error) => err instanceof ConfigError && /holds no key/.test(err.message),
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), "qapi-keys-"));
  fx.cleanup(async () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "keys");
  const hashKey = "abcdefgh#ijklmnopqrstu";
  const spaceKey = "abcdefghij klmnopqrstu";
  writeFileSync(file, `# keys\n${KEY}   # team a, trailing comment\n${hashKey}\n${spaceKey}\n`);
  assert.throws(
    () => loadApiKeys({ QUERY_API_KEYS: undefined, QUERY_API_KEYS_FILE: file }),
    (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /QUERY_API_KEYS_FILE line 3: a key holds a #/);
      assert.match(err.message, /QUERY_API_KEYS_FILE line 4: a key holds a space/);
      assert.ok(!err.message.includes("abcdefgh"), "the key is not printed");
      return true;
    },
  );
  writeFileSync(file, `# keys\n${KEY}   # team a, trailing comment\n\n  # indented comment\n`);
  assert.deepEqual(loadApiKeys({ QUERY_API_KEYS: undefined, QUERY_API_KEYS_FILE: file }), [KEY]);
});

test("a client that goes away counts as client_closed, logs at info, and its texts leave the batcher", async () => {
  let rows = 0;
  const wrapModel = (inner: EmbeddingModel): EmbeddingModel => ({
    info: inner.info,
    close: () => inner.close(),
    async embed(batch) {
      if (batch.queryLane) {
        rows += batch.sequences.length;
        await new Promise((r) => setTimeout(r, 300));
      }
      return inner.embed(batch);
    },
  });
  const { w, url, lines } = await fx.start({ QUERY_TIMEOUT_MS: "20000" }, { wrapModel });
  const requests = Array.from({ length: 10 }, (_, r) => {
    const ac = new AbortController();
    const body = JSON.stringify({
      texts: Array.from({ length: 32 }, (_, i) => `request ${r} text ${i} about the budget`),
    });
    const sent = fetch(`${url}/embed/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: ac.signal,
    });
    return { ac, sent: sent.catch((e: Error) => e) };
  });
  await waitFor(() => w.pipeline.inFlightQueries === 10, 10_000, "all ten requests in the pipeline");
  for (const r of requests) r.ac.abort();
  for (const r of requests) assert.ok((await r.sent) instanceof Error);
  await waitFor(() => w.pipeline.inFlightQueries === 0, 2000, "the abandoned requests to leave the pipeline");
  await new Promise((r) => setTimeout(r, 1000)); // batches already handed to the model finish
  // The batch already in the model thread runs (32 texts, or 64 if two requests were cut together);
  // before the fix up to eight batches were handed over and ran (128 here) though nobody waited.
  assert.ok(rows <= 64, `${rows} texts of abandoned requests were embedded`);
  const metrics = await w.metrics.registry.metrics();
  assert.match(metrics, /embed_query_requests_total\{endpoint="batch",outcome="client_closed"\} 10/);
  assert.doesNotMatch(metrics, /outcome="not_ready"/);
  const abandoned = lines.filter((l) => l.includes("abandoned by the client"));
  assert.equal(abandoned.length, 10);
  assert.ok(
    abandoned.every((l) => JSON.parse(l).level === "info"),
    "logged at info, not as a failure",
  );
  assert.ok(!lines.some((l) => l.includes("query request failed")));
  assert.equal((await call(`${url}/embed/batch`, { texts: ["after the abandoned ones"] })).status, 200);
});

test("failed keys are limited per address; refused bodies cost the caller; refusals log the address", async () => {
  const { url, lines } = await fx.start({
    QUERY_API_KEYS: KEY,
    QUERY_AUTH_FAILURES_PER_MINUTE: "3",
    QUERY_RATE_LIMIT: "1",
    QUERY_RATE_BURST: "3",
  });
  for (let i = 0; i < 3; i++) {
    assertError(
      await call(`${url}/v1/embeddings`, { input: "x", model: "bge-m3" }, { key: `wrong-key-${i}-000000000000` }),
      401,
      "unauthorized",
      /unknown API key/,
    );
  }
  const blocked = await call(`${url}/v1/embeddings`, { input: "x", model: "bge-m3" }, { key: KEY });
  assertError(blocked, 429, "rate_limited", /too many failed authentications.*QUERY_AUTH_FAILURES_PER_MINUTE=3/);
  assert.ok(Number(blocked.headers.get("retry-after")) >= 1);
  const refused = lines.filter((l) => l.includes("query request refused"));
  assert.ok(
    refused.length >= 4 && refused.every((l) => /"client":"(::ffff:)?127\.0\.0\.1"/.test(l)),
    "refusals name the client address",
  );

  const other = await fx.start({ QUERY_API_KEYS: KEY, QUERY_RATE_LIMIT: "1", QUERY_RATE_BURST: "3" });
  for (let i = 0; i < 3; i++)
    assertError(
      await call(`${other.url}/embed/batch`, { texts: "not an array" }, { key: KEY }),
      400,
      "validation_error",
      /^texts: /,
    );
  assertError(
    await call(`${other.url}/embed/batch`, { texts: ["fine"] }, { key: KEY }),
    429,
    "rate_limited",
    /rate limit of 1 texts per second/,
  );
});

test("415 for non-JSON or compressed bodies; 405 says Allow; lone surrogates and bad UTF-8 get 400", async () => {
  const { url, w } = await fx.start();
  const e = `${url}/v1/embeddings`;
  const body = JSON.stringify({ input: "hello", model: "bge-m3" });
  assertError(
    await call(e, undefined, { raw: body, headers: { "content-type": "text/plain" } }),
    415,
    "unsupported_media_type",
    /Content-Type: application\/json \(got Content-Type "text\/plain"\)/,
  );
  assertError(
    await call(e, undefined, { raw: body, headers: { "content-type": "application/x-www-form-urlencoded" } }),
    415,
    "unsupported_media_type",
    /application\/json/,
  );
  assertError(
    await call(e, undefined, { raw: body, headers: { "content-type": "application/json; charset=latin1" } }),
    415,
    "unsupported_media_type",
    /UTF-8 JSON \(got charset=latin1\)/,
  );
  assert.equal(
    (await call(e, undefined, { raw: body, headers: { "content-type": "Application/JSON; charset=UTF-8" } })).status,
    200,
  );
  const gz = await fetch(e, {
    method: "POST",
    headers: { "content-type": "application/json", "content-encoding": "gzip" },
    body: gzipSync(body),
  });
  assert.equal(gz.status, 415);
  assert.match(
    ((await gz.json()) as { message: string }).message,
    /Content-Encoding "gzip" is not supported: send the body uncompressed/,
  );

  const wrong = await call(e, undefined, { method: "GET" });
  assertError(wrong, 405, "method_not_allowed", /takes POST/);
  assert.equal(wrong.headers.get("allow"), "POST");
  assert.equal((await call(`${url}/v1/models`, undefined, { method: "DELETE" })).headers.get("allow"), "GET");
  const metricsPost = await fetch(`http://127.0.0.1:${w.httpPort}/metrics`, { method: "POST" });
  assert.equal(metricsPost.status, 405);
  assert.equal(metricsPost.headers.get("allow"), "GET, HEAD");

  assertError(
    await call(`${url}/embed/batch`, undefined, { raw: '{"texts": ["fine", "half a pair \\ud800 here"]}' }),
    400,
    "validation_error",
    /^texts\[1\] is not well-formed Unicode/,
  );
  assertError(
    await call(e, undefined, { raw: '{"input": "\\udc00", "model": "bge-m3"}' }),
    400,
    "validation_error",
    /^input\[0\] is not well-formed Unicode/,
  );
  assert.equal((await call(e, { input: "a pair is fine: \u{1F600}", model: "bge-m3" })).status, 200);
  const badUtf8 = await fetch(e, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  });
  assert.equal(badUtf8.status, 400);
  assert.match(((await badUtf8.json()) as { message: string }).message, /not valid UTF-8/);
});

test("HTTP_HOST and QUERY_API_HOST bind the ports to one address", async () => {
  const { w } = await fx.start({ HTTP_HOST: "127.0.0.2" }, { queryPort: 0 });
  assert.equal((await fetch(`http://127.0.0.2:${w.httpPort}/health/live`)).status, 200);
  await assert.rejects(fetch(`http://127.0.0.1:${w.httpPort}/health/live`), "not on other addresses");
  assert.equal(
    (await fetch(`http://127.0.0.2:${w.queryPort}/v1/models`)).status,
    200,
    "QUERY_API_HOST defaults to HTTP_HOST",
  );
  const own = await fx.start({ HTTP_HOST: "127.0.0.2", QUERY_API_HOST: "127.0.0.3" }, { queryPort: 0 });
  assert.equal((await fetch(`http://127.0.0.3:${own.w.queryPort}/v1/models`)).status, 200);
  await assert.rejects(fetch(`http://127.0.0.2:${own.w.queryPort}/v1/models`));
});
