/** One fixture for the query API tests: a real worker with QUERY_API=true on the generated model,
 *  real Redis (a fresh queue per worker) and the Qdrant-compatible test server (or a real Qdrant),
 *  with log lines captured; plus a JSON caller and an error assertion. `close()` stops every
 *  worker and queue it started. */
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Config } from "../../shared/config.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { redisConnection } from "../../shared/redis.js";
import { startWorker, type RunningWorker, type StartOptions } from "../../worker/app.js";
import { qdrantTarget, testConfig, testModel, uniqueQueue, type QdrantTarget } from "../../kit/harness.js";

export interface Api {
  w: RunningWorker;
  cfg: Config;
  url: string;
  lines: string[];
  queue: Queue;
}

export interface ApiFixture {
  target: QdrantTarget;
  modelDir: string;
  connection: Redis;
  /** A worker serving the query API on a free port; `env` overrides the test configuration. */
  start(env?: Record<string, string>, opts?: Partial<StartOptions>): Promise<Api>;
  /** Runs at close(), in reverse order of registration. */
  cleanup(fn: () => Promise<unknown>): void;
  close(): Promise<void>;
}

export async function apiFixture(): Promise<ApiFixture> {
  const target = await qdrantTarget();
  const modelDir = (await testModel()).dir;
  const connection = redisConnection("redis://127.0.0.1:6379");
  const cleanups: Array<() => Promise<unknown>> = [];
  const start = async (env: Record<string, string> = {}, opts: Partial<StartOptions> = {}): Promise<Api> => {
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
      OUTPUTS: "dense,sparse,colbert",
      MAX_SEQ_LENGTH: "512",
      ...env,
    });
    const lines: string[] = [];
    const destination = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
    const log = createLogger({ level: "debug", destination });
    const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
    cleanups.push(async () => {
      await queue.obliterate({ force: true });
      await queue.close();
    });
    const w = await startWorker(cfg, { log, metrics: createMetrics({ defaultMetrics: false }), httpPort: 0, ...opts });
    cleanups.push(() => w.close());
    return { w, cfg, url: `http://127.0.0.1:${w.queryPort}`, lines, queue };
  };
  return {
    target,
    modelDir,
    connection,
    start,
    cleanup: (fn) => void cleanups.push(fn),
    close: async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      await target.close();
      await connection.quit();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface CallOptions {
  method?: string;
  key?: string;
  raw?: string;
  headers?: Record<string, string>;
}

/** A JSON request; the answer's body parsed as JSON (a body that is not JSON fails the test). */
export async function call(url: string, body?: unknown, init: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": "application/json", ...init.headers };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  const res = await fetch(url, {
    method: init.method ?? (body === undefined && init.raw === undefined ? "GET" : "POST"),
    headers,
    body: init.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

export function assertError(a: Answer, status: number, code: string, mentions: RegExp): void {
  assert.equal(a.status, status, `expected ${status}, got ${a.status}: ${JSON.stringify(a.json)}`);
  assert.equal(a.json.error, code);
  assert.match(a.json.message, mentions);
}
