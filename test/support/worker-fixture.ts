/** One fixture for tests that run workers as child processes against the shared Redis and the
 *  in-process Qdrant test server (introspection and fault injection need it, even when QDRANT_URL
 *  is set): registers node:test `before`/`after` hooks that start the
 *  server and the test model once, and at the end SIGKILL any worker still alive, run the
 *  test's cleanups in reverse order, close the server and the Redis connection (the last three
 *  through `suiteFixture`). */
import { after } from "node:test";
import { Queue } from "bullmq";
import { uniqueQueue } from "../../kit/harness.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import { SHARED_REDIS_URL, suiteFixture, type SuiteFixture } from "./suite-fixture.js";

export { SHARED_REDIS_URL };

/** The suite's server, model folder, shared-Redis connection and cleanups, plus child workers. */
export interface WorkerFixture extends Pick<SuiteFixture, "server" | "modelDir" | "connection" | "onCleanup"> {
  /** Spawns a worker process (killed at the end if still alive). */
  spawn(env: NodeJS.ProcessEnv): Promise<ChildWorker>;
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
  // The suite fixture's getters are read through the prototype.
  return Object.assign(Object.create(fx) as SuiteFixture, {
    spawn: async (env) => {
      const c = await spawnWorker(env);
      children.push(c);
      return c;
    },
    newQueue: (prefix) => {
      const queueName = uniqueQueue(prefix);
      const queue = new Queue(queueName, { connection: fx.connection });
      fx.onCleanup(async () => {
        await queue.obliterate({ force: true });
        await queue.close();
      });
      return { queue, queueName, collection: `${prefix}_${queueName.replace(/-/g, "_")}` };
    },
  } satisfies Omit<WorkerFixture, keyof SuiteFixture>);
}
