/** One fixture for tests that run workers as child processes against the shared Redis and the
 *  in-process Qdrant test server (introspection and fault injection need it, even when QDRANT_URL
 *  is set): registers node:test `before`/`after` hooks that start the
 *  server and the test model once, and at the end SIGKILL any worker still alive, run the
 *  test's cleanups in reverse order, close the server and the Redis connection (the last three
 *  through `suiteFixture`). */
import { after } from "node:test";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { uniqueQueue } from "../../kit/harness.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import type { QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { SHARED_REDIS_URL, suiteFixture } from "./suite-fixture.js";

export { SHARED_REDIS_URL };

export interface WorkerFixture {
  /** Valid inside tests (set by the `before` hook). */
  readonly server: QdrantTestServer;
  readonly modelDir: string;
  /** A connection to the shared Redis, for queues. */
  readonly connection: Redis;
  /** Spawns a worker process (killed at the end if still alive). */
  spawn(env: NodeJS.ProcessEnv): Promise<ChildWorker>;
  /** Runs at the end, in reverse order of registration; failures are ignored. */
  onCleanup(fn: () => Promise<unknown>): void;
  /** A fresh queue on the shared Redis (obliterated at the end) and a collection name of its own. */
  newQueue(prefix: string): { queue: Queue; queueName: string; collection: string };
}

export function workerFixture(): WorkerFixture {
  const children: ChildWorker[] = [];
  // Registered before the suite's own hook, so it runs first: no worker outlives the server.
  after(() => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill("SIGKILL");
  });
  const fx = suiteFixture({ redis: SHARED_REDIS_URL, qdrant: "server" });
  return {
    get server() {
      return fx.server;
    },
    get modelDir() {
      return fx.modelDir;
    },
    connection: fx.connection,
    spawn: async (env) => {
      const c = await spawnWorker(env);
      children.push(c);
      return c;
    },
    onCleanup: fx.onCleanup,
    newQueue: (prefix) => {
      const queueName = uniqueQueue(prefix);
      const queue = new Queue(queueName, { connection: fx.connection });
      fx.onCleanup(async () => {
        await queue.obliterate({ force: true });
        await queue.close();
      });
      return { queue, queueName, collection: `${prefix}_${queueName.replace(/-/g, "_")}` };
    },
  };
}
