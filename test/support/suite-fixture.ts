/** The one setup every test file that needs real things shares: registers node:test `before`/`after`
 *  hooks that make what the file asks for (a Redis connection, a Qdrant target, the generated test
 *  model, a temporary folder) and, at the end, run the file's cleanups in reverse order of
 *  registration (failures ignored), then close Qdrant, quit Redis and remove the folder. Values are
 *  read through getters, valid inside tests; a getter for something the file did not ask for throws.
 *  Trades flexibility for one place: a file with an unusual order of teardown registers its own
 *  steps with `onCleanup`. */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import type { RedisClient } from "../../shared/redis.js";
import { redisConnection } from "../../shared/redis.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import type { Config } from "../../shared/config.js";
import { qdrantTarget, testConfig, testModel, uniqueQueue, type QdrantTarget } from "../../kit/harness.js";
import type { WriteTestModelOptions } from "../../kit/test-model/write-test-model.js";
import { startQdrantTestServer, type QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";

/** The Redis every test shares (CI starts it on the default port). */
export const SHARED_REDIS_URL = "redis://127.0.0.1:6379";
/** The shared Redis, or REDIS_URL when the run names another one. */
export const REDIS_URL = process.env.REDIS_URL ?? SHARED_REDIS_URL;

export interface SuiteOptions {
  /** A connection made when the fixture is created and quit at the end (default: REDIS_URL); false: none. */
  redis?: string | false;
  /** "target": `qdrantTarget()` (a real Qdrant when QDRANT_URL is set, else the in-process server);
   *  "server": always the in-process test server (introspection, fault injection); undefined: none. */
  qdrant?: "target" | "server";
  /** The generated model (default: the default test model); false: none. */
  model?: { opts?: WriteTestModelOptions; name?: string } | false;
  /** A temporary folder with this name prefix, made before the tests and removed after them. */
  tmpPrefix?: string;
}

export interface SuiteFixture {
  readonly connection: RedisClient;
  readonly target: QdrantTarget;
  /** The in-process server: with qdrant "server" always, with "target" unless QDRANT_URL is set. */
  readonly server: QdrantTestServer;
  readonly modelDir: string;
  readonly tmp: string;
  /** The test model's token counter (loaded on first use). */
  readonly countTokens: (text: string) => number;
  /** Settles when the `before` hook has finished: node:test starts a file's top-level `before` hooks
   *  without waiting for each other, so a file's own hook that reads the fixture awaits this first. */
  readonly ready: Promise<void>;
  /** Runs at the end, in reverse order of registration; failures are ignored. */
  onCleanup(fn: () => Promise<unknown>): void;
  /** A worker configuration on a fresh queue (`<queuePrefix>-…`) and collection (`<first word>_…`) against this
   *  fixture's model and Qdrant target; `env` adds or overrides settings. */
  workerConfig(queuePrefix: string, env?: Record<string, string | undefined>): WorkerSetup;
}

export interface WorkerSetup {
  queueName: string;
  collection: string;
  cfg: Config;
}

function requested<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`suite fixture: ${what} was not requested, or is read outside a test`);
  return value;
}

export function suiteFixture(o: SuiteOptions = {}): SuiteFixture {
  const redisUrl = o.redis ?? REDIS_URL;
  const connection = redisUrl === false ? undefined : redisConnection(redisUrl);
  const cleanups: Array<() => Promise<unknown>> = [];
  let target: QdrantTarget | undefined;
  let modelDir: string | undefined;
  let tmp: string | undefined;
  let countTokens: ((text: string) => number) | undefined;
  let setUp!: (error?: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => (setUp = (e) => (e === undefined ? resolve() : reject(e))));
  ready.catch(() => undefined); // the hook itself reports a failure; nobody need await this
  before(async () => {
    try {
      if (o.qdrant === "server") {
        const server = await startQdrantTestServer();
        target = { url: server.url, server, close: () => server.close() };
      } else if (o.qdrant === "target") target = await qdrantTarget();
      if (o.model !== false) modelDir = (await testModel(o.model?.opts, o.model?.name)).dir;
      if (o.tmpPrefix) tmp = await mkdtemp(path.join(os.tmpdir(), o.tmpPrefix));
      setUp();
    } catch (e) {
      setUp(e ?? new Error("suite fixture set-up failed"));
      throw e;
    }
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await target?.close();
    await connection?.quit();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  return {
    get connection() {
      return requested(connection, "redis");
    },
    get target() {
      return requested(target, "qdrant");
    },
    get server() {
      return requested(target?.server, "the in-process Qdrant server");
    },
    get modelDir() {
      return requested(modelDir, "model");
    },
    get tmp() {
      return requested(tmp, "tmpPrefix");
    },
    get countTokens() {
      countTokens ??= loadTokenCounter(path.join(requested(modelDir, "model"), "tokenizer.json"));
      return countTokens;
    },
    ready,
    onCleanup: (fn) => void cleanups.push(fn),
    workerConfig(queuePrefix, env = {}) {
      const queueName = uniqueQueue(queuePrefix);
      const collection = `${queuePrefix.split("-")[0]}_${queueName.replace(/-/g, "_")}`;
      const t = requested(target, "qdrant");
      const cfg = testConfig({
        MODEL_DIR: requested(modelDir, "model"),
        QUEUE_NAME: queueName,
        QDRANT_URL: t.url,
        QDRANT_API_KEY: t.apiKey,
        COLLECTION: collection,
        ...env,
      });
      return { queueName, collection, cfg };
    },
  };
}
