/** One fixture for the query API tests: a real worker with QUERY_API=true on the generated model,
 *  real Redis (a fresh queue per worker) and the Qdrant-compatible test server (or a real Qdrant),
 *  with log lines captured; plus a JSON caller and an error assertion. Built on `suiteFixture`,
 *  whose `after` hook stops every worker and queue it started. */
import assert from "node:assert/strict";
import { Queue } from "bullmq";
import type { RedisClient } from "../../shared/redis.js";
import type { Config } from "../../shared/config.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { startWorker, type RunningWorker, type StartOptions } from "../../worker/app.js";
import { testConfig, uniqueQueue, type QdrantTarget } from "../../kit/harness.js";
import { SHARED_REDIS_URL, suiteFixture, type SuiteFixture } from "./suite-fixture.js";

export interface Api {
  w: RunningWorker;
  cfg: Config;
  url: string;
  lines: string[];
  queue: Queue;
}

/** Valid inside tests (set by the `before` hook). */
export interface ApiFixture {
  readonly target: QdrantTarget;
  readonly modelDir: string;
  readonly connection: RedisClient;
  /** Settles when the fixture is set up (see `SuiteFixture.ready`). */
  readonly ready: Promise<void>;
  /** A worker serving the query API on a free port; `env` overrides the test configuration. */
  start(env?: Record<string, string>, opts?: Partial<StartOptions>): Promise<Api>;
  /** Runs at the end, in reverse order of registration. */
  cleanup(fn: () => Promise<unknown>): void;
}

/** Registers the hooks; call it at the top level of a test file. */
export function apiFixture(): ApiFixture {
  const fx = suiteFixture({ redis: SHARED_REDIS_URL, qdrant: "target" });
  const start = async (env: Record<string, string> = {}, opts: Partial<StartOptions> = {}): Promise<Api> => {
    const queueName = uniqueQueue("qapi");
    const cfg = testConfig({
      MODEL_DIR: fx.modelDir,
      QUEUE_NAME: queueName,
      QDRANT_URL: fx.target.url,
      QDRANT_API_KEY: fx.target.apiKey,
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
    const queue = new Queue(queueName, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
    fx.onCleanup(async () => {
      await queue.obliterate({ force: true });
      await queue.close();
    });
    const w = await startWorker(cfg, { log, metrics: createMetrics({ defaultMetrics: false }), httpPort: 0, ...opts });
    fx.onCleanup(() => w.close());
    return { w, cfg, url: `http://127.0.0.1:${w.queryPort}`, lines, queue };
  };
  // The suite fixture's getters are read through the prototype.
  return Object.assign(Object.create(fx) as SuiteFixture, {
    start,
    cleanup: fx.onCleanup,
  });
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
