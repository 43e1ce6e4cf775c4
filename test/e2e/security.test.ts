/** Secrets and content stay private: a worker on a password-protected, TLS-only Redis and an
 *  API-key Qdrant logs at debug level through a whole run (good jobs, a failing job, a sink
 *  outage) and neither its log, /health nor /metrics contains the Redis password, the Qdrant
 *  key or any chunk text. Wrong credentials stop start-up with a reason that names no secret. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { Queue } from "bullmq";
import { parseConfig } from "../../shared/config.js";
import { ConfigError } from "../../worker/errors.js";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { redisConnection } from "../../shared/redis.js";
import { startWorker } from "../../worker/app.js";
import { runBackfill } from "../../producer/backfill.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { writeJsonlCorpus } from "../../kit/corpus.js";
import { testConfig, testModel, uniqueQueue, waitFor } from "../../kit/harness.js";
import { sleep } from "../../kit/reliability.js";
import { startQdrantTestServer, type QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import {
  redisClusterUnsupported,
  redisServerAvailable,
  startTestCluster,
  startTestRedis,
  type TestRedis,
} from "../../kit/redis-server.js";

const REDIS_PASSWORD = "r3dis-Pa55word-7f1c";
const QDRANT_KEY = "qdrant-api-key-0b9e2d";
const MARKER = "PRIVATE-CHUNK-TEXT-4471";
const SKIP =
  redisServerAvailable() && spawnSync("openssl", ["version"]).status === 0
    ? false
    : "skipped: redis-server or openssl is not installed";

let redis: TestRedis | undefined;
let qdrant: QdrantTestServer;
let certDir: string;
let certs: ReturnType<typeof makeCerts>;
let modelDir: string;

/** A throwaway CA and a server certificate for localhost / 127.0.0.1. */
function makeCerts(dir: string) {
  const run = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
  };
  run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=test-ca",
  ]);
  run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  ]);
  spawnSync("sh", ["-c", "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext"], { cwd: dir });
  run([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  ]);
  return {
    certFile: path.join(dir, "server.pem"),
    keyFile: path.join(dir, "server.key"),
    caFile: path.join(dir, "ca.pem"),
  };
}

before(async () => {
  qdrant = await startQdrantTestServer({ apiKey: QDRANT_KEY });
  modelDir = (await testModel()).dir;
  if (SKIP) return;
  certDir = mkdtempSync(path.join(os.tmpdir(), "redis-tls-"));
  certs = makeCerts(certDir);
  redis = await startTestRedis({ password: REDIS_PASSWORD, tls: certs });
});

after(async () => {
  await redis?.close();
  await qdrant.close();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

function capture() {
  const lines: string[] = [];
  const log = createLogger({
    level: "trace",
    destination: { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream,
  });
  return { log, text: () => lines.join("") };
}

test(
  "TLS + password Redis and API-key Qdrant: a full run leaks no secret and no chunk text into logs, /health or /metrics",
  { skip: SKIP },
  async () => {
    const queueName = uniqueQueue("sec");
    const env = {
      REDIS_URL: redis!.url,
      REDIS_TLS_CA_FILE: path.join(certDir, "ca.pem"),
      QUEUE_NAME: queueName,
      MODEL_DIR: modelDir,
      QDRANT_URL: qdrant.url,
      QDRANT_API_KEY: QDRANT_KEY,
      COLLECTION: "sec",
      SINK_RETRIES: "1",
      SINK_RETRY_BASE_MS: "20",
      LOG_LEVEL: "trace",
    };
    assert.match(env.REDIS_URL, /^rediss:\/\//);
    const cfg = testConfig(env);
    const { log, text } = capture();
    const w = await startWorker(cfg, { log, httpPort: 0 });
    const connection = redisConnection(cfg.REDIS_URL, cfg);
    const queue = new Queue(queueName, { connection });
    try {
      const base = { v: JOB_SCHEMA_VERSION, part: 0, parts: 1, docHash: "h", enqueuedAt: Date.now(), metadata: {} };
      await queue.addBulk([
        {
          name: JOB_NAME,
          data: {
            ...base,
            docId: "good",
            chunks: [
              { index: 0, text: `${MARKER} one` },
              { index: 1, text: `${MARKER} two` },
            ],
          },
        },
        {
          name: JOB_NAME,
          data: {
            ...base,
            docId: "bad",
            chunks: [
              { index: 0, text: `${MARKER} fine` },
              { index: 0, text: `${MARKER} duplicate index` },
            ],
          },
        },
        { name: JOB_NAME, data: { ...base, docId: "schema", chunks: [{ index: 0, text: 42 }] } },
      ]);
      await waitFor(
        async () =>
          (await queue.getJobCounts("completed", "failed")).completed + (await queue.getJobCounts("failed")).failed ===
          3,
        30_000,
        "jobs done",
      );
      // A sink failure and its retry are logged too.
      qdrant.setFault({ kind: "status", status: 503, count: 1 });
      await queue.add(JOB_NAME, { ...base, docId: "retried", chunks: [{ index: 0, text: `${MARKER} after a 503` }] });
      await waitFor(
        async () => (await queue.getJobCounts("completed")).completed === 2,
        30_000,
        "retried job completed",
      );
      const health = await (await fetch(`http://127.0.0.1:${w.httpPort}/health`)).text();
      const metrics = await (await fetch(`http://127.0.0.1:${w.httpPort}/metrics`)).text();
      const logs = text();
      assert.match(logs, /upsert failed/, "the sink failure was not logged: the check below would prove nothing");
      assert.match(logs, /job failed/);
      assert.match(logs, /redis":"rediss:\/\/:\*\*\*@localhost/, "the Redis URL should be logged redacted");
      for (const [name, body] of [
        ["log", logs],
        ["/health", health],
        ["/metrics", metrics],
      ] as const) {
        for (const secret of [REDIS_PASSWORD, encodeURIComponent(REDIS_PASSWORD), QDRANT_KEY, MARKER]) {
          assert.equal(body.includes(secret), false, `${name} contains "${secret}"`);
        }
      }
    } finally {
      await w.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await connection.quit();
    }
  },
);

test(
  "wrong Redis password or missing TLS CA: start-up fails saying why, without the password",
  { skip: SKIP },
  async () => {
    const base = {
      REDIS_TLS_CA_FILE: path.join(certDir, "ca.pem"),
      MODEL_DIR: modelDir,
      QUEUE_NAME: uniqueQueue("sec"),
      REDIS_START_TIMEOUT_MS: "3000",
      WARMUP: "false",
    };
    const wrong = redis!.url.replace(encodeURIComponent(REDIS_PASSWORD), "not-the-password-91");
    const { log, text } = capture();
    await assert.rejects(startWorker(testConfig({ ...base, REDIS_URL: wrong }), { log }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /REDIS_URL: cannot use Redis at rediss:\/\/:\*\*\*@localhost:\d+.*(WRONGPASS|invalid username-password)/s,
      );
      assert.equal(err.message.includes("not-the-password-91"), false);
      return true;
    });
    assert.equal(text().includes("not-the-password-91"), false);
    // TLS server, but no CA given: the certificate cannot be verified.
    await assert.rejects(
      startWorker(testConfig({ ...base, REDIS_TLS_CA_FILE: undefined, REDIS_URL: redis!.url }), { log }),
      /cannot use Redis.*(certificate|no answer)/s,
    );
    // Plain redis:// against the TLS port never gets an answer.
    await assert.rejects(
      startWorker(
        testConfig({ ...base, REDIS_TLS_CA_FILE: undefined, REDIS_URL: redis!.url.replace("rediss://", "redis://") }),
        { log },
      ),
      /cannot use Redis/,
    );
  },
);

test("wrong Qdrant API key: start-up fails with HTTP 401 and the key appears nowhere", async () => {
  const { log, text } = capture();
  const cfg = testConfig({
    MODEL_DIR: modelDir,
    QUEUE_NAME: uniqueQueue("sec"),
    QDRANT_URL: qdrant.url,
    QDRANT_API_KEY: "wrong-key-5521",
    WARMUP: "false",
  });
  await assert.rejects(startWorker(cfg, { log }), (err: Error) => {
    assert.match(err.message, /HTTP 401/);
    assert.equal(err.message.includes("wrong-key-5521"), false);
    return true;
  });
  assert.equal(text().includes("wrong-key-5521"), false);
});

test("configuration errors never echo URL, key or password values", () => {
  const problems = (env: Record<string, string>) => {
    try {
      parseConfig(env);
    } catch (err) {
      return (err as ConfigError).problems.join("\n");
    }
    assert.fail("expected a ConfigError");
  };
  const first = problems({ REDIS_URL: "redis://:hunter2@", HTTP_PORT: "not-a-port" });
  assert.match(first, /REDIS_URL: Invalid URL/);
  assert.match(first, /HTTP_PORT.*got "not-a-port"/, "ordinary values are echoed, so the check below is meaningful");
  assert.equal(first.includes("hunter2"), false);
  const second = problems({ QDRANT_API_KEY: "k-998877" });
  assert.match(second, /QDRANT_API_KEY is set but QDRANT_URL is not/);
  assert.equal(second.includes("k-998877"), false);
});

test(
  "a backfill reaches a TLS Redis signed by a private CA (it used to drop REDIS_TLS_CA_FILE)",
  { skip: SKIP },
  async () => {
    const queueName = uniqueQueue("sec-bf");
    const cfg = testConfig({
      REDIS_URL: redis!.url,
      REDIS_TLS_CA_FILE: path.join(certDir, "ca.pem"),
      QUEUE_NAME: queueName,
      MODEL_DIR: modelDir,
    });
    const { files, ids } = await writeJsonlCorpus(path.join(certDir, "bf"), {
      files: 1,
      docsPerFile: 5,
      sentencesPerDoc: 2,
    });
    const countTokens = loadTokenCounter(path.join(modelDir, "tokenizer.json"));
    const connection = redisConnection(cfg.REDIS_URL, cfg);
    const queue = new Queue(queueName, { connection });
    try {
      const s = await runBackfill(cfg, { inputs: files, countTokens, progress: "none", runId: "tls" });
      assert.equal(s.complete, true);
      const jobs = await queue.getJobs(["prioritized"]);
      assert.deepEqual(jobs.map((j) => j.data.docId).sort(), [...ids].sort());
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await connection.quit();
    }
  },
);

test(
  "a Redis Cluster with TLS and a password: every node is reached through the private CA with the password",
  { skip: SKIP || redisClusterUnsupported() },
  async () => {
    const cluster = await startTestCluster({ masters: 3, password: REDIS_PASSWORD, tls: certs });
    const queueName = uniqueQueue("sec-cluster");
    const cfg = testConfig({
      REDIS_URL: cluster.url,
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_TLS_CA_FILE: path.join(certDir, "ca.pem"),
      QUEUE_PREFIX: "{sec}",
      QUEUE_NAME: queueName,
      MODEL_DIR: modelDir,
      QDRANT_URL: qdrant.url,
      QDRANT_API_KEY: QDRANT_KEY,
      COLLECTION: "sec_cluster",
    });
    assert.match(cfg.REDIS_URL, /^rediss:\/\//);
    const w = await startWorker(cfg, { log: capture().log, httpPort: 0 });
    const connection = redisConnection(cfg.REDIS_URL, cfg);
    const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
    const noPassword = new URL(cluster.url);
    noPassword.password = "";
    try {
      const base = { v: JOB_SCHEMA_VERSION, part: 0, parts: 1, docHash: "h", enqueuedAt: Date.now(), metadata: {} };
      const docs = Array.from({ length: 6 }, (_, i) => `doc-${i}`);
      await queue.addBulk(
        docs.map((docId) => ({
          name: JOB_NAME,
          data: { ...base, docId, chunks: [{ index: 0, text: `${docId} text` }] },
        })),
      );
      await waitFor(async () => (await queue.getJobCounts("completed")).completed === 6, 30_000, "6 jobs completed");
      const masters = String(await connection.call("CLUSTER", "NODES")).match(/master/g) ?? [];
      assert.equal(masters.length, 3, "not a three-master cluster");
      // The same settings less the CA, or less the password: no node lets the client in.
      for (const bad of [
        { url: cluster.url, ca: undefined, what: "without the CA" },
        { url: noPassword.toString(), ca: path.join(certDir, "ca.pem"), what: "without the password" },
      ]) {
        const c = redisConnection(
          bad.url,
          { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_TLS_CA_FILE: bad.ca },
          { maxRetriesPerRequest: 0 },
        );
        c.on("error", () => undefined); // ioredis's Cluster reports only "Failed to refresh slots cache."
        const answered = await Promise.race([
          c.ping().then(
            () => true,
            () => false,
          ),
          sleep(3000).then(() => false),
        ]);
        c.disconnect();
        assert.equal(answered, false, `a node answered a client ${bad.what}`);
      }
    } finally {
      await w.close();
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
      await cluster.close();
    }
  },
);
