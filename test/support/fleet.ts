/** Helpers for the fleet tests: several worker processes on one queue of the shared Redis, writing
 *  to the in-process Qdrant test server. Builds a deterministic backlog of embed jobs, starts
 *  workers with small budgets (a default warm-up can take gigabytes), reads each worker's share
 *  from its own `/metrics`, and checks how many times every point id was written. Trades realism
 *  for time: the tiny generated model and a few thousand chunks keep each test under a minute. */
import assert from "node:assert/strict";
import os from "node:os";
import type { Job, Queue } from "bullmq";
import { pointId } from "../../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { jobPointIds, syntheticText } from "../../kit/reliability.js";
import type { ChildWorker } from "../../kit/processes.js";
import type { WorkerFixture } from "./worker-fixture.js";

/** Budgets that keep a worker's warm-up and batches small on a 2-core CI machine. */
export const SMALL_BUDGETS = { MAX_SEQ_LENGTH: "512", MAX_BATCH_TOKENS: "2048", BATCH_LINGER_MS: "2" };

export interface FleetJob {
  name: string;
  data: EmbedJobData;
  opts: { jobId: string; attempts: number; backoff: { type: "exponential"; delay: number } };
}

/** `docs` jobs of `chunksPerDoc` chunks of 1-6 sentences each, and the point ids they must become. */
export function fleetBacklog(docs: number, chunksPerDoc: number, textOf = syntheticText) {
  const expected = new Set<string>();
  const jobs: FleetJob[] = Array.from({ length: docs }, (_, d) => {
    const docId = `doc-${d}`;
    const chunks = Array.from({ length: chunksPerDoc }, (_, i) => {
      expected.add(pointId(docId, i));
      return { index: i, text: textOf(d * chunksPerDoc + i, 1 + ((d + i) % 6)), metadata: {} };
    });
    const data: EmbedJobData = {
      v: JOB_SCHEMA_VERSION,
      docId,
      part: 0,
      parts: 1,
      docHash: `h${d}`,
      enqueuedAt: Date.now(),
      metadata: {},
      chunks,
    };
    return {
      name: JOB_NAME,
      data,
      opts: { jobId: `job-${d}`, attempts: 3, backoff: { type: "exponential", delay: 100 } },
    };
  });
  return { jobs, expected };
}

/** A queue of its own and a way to start workers on it with `extra` settings over small budgets. */
export function fleetQueue(fx: WorkerFixture, prefix: string) {
  const { queue, queueName, collection } = fx.newQueue(prefix);
  const start = async (extra: Record<string, string> = {}): Promise<FleetWorker> => {
    const child = await fx.spawn({
      REDIS_URL: "redis://127.0.0.1:6379",
      QUEUE_NAME: queueName,
      QDRANT_URL: fx.server.url,
      COLLECTION: collection,
      MODEL_DIR: fx.modelDir,
      UPSERT_LINGER_MS: "2",
      SINK_RETRY_BASE_MS: "50",
      WORKER_CONCURRENCY: "8",
      ...SMALL_BUDGETS,
      ...extra,
    });
    const port = await child.started;
    return { child, port, name: `${os.hostname()}:${child.proc.pid}` };
  };
  return { queue, collection, start };
}

export interface FleetWorker {
  child: ChildWorker;
  /** Its HTTP port (health and metrics). */
  port: number;
  /** The name BullMQ records as `processedBy` on the jobs it takes. */
  name: string;
}

/** A counter or gauge from a worker's own `/metrics`, summed over the series that match `labels`. */
export async function scrapeMetric(port: number, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** Jobs a worker has completed, from its own metrics. */
export const completedBy = (w: FleetWorker) => scrapeMetric(w.port, "embed_jobs_total", 'status="completed"');

/** The jobs in `state` whose `processedBy` is one of `names` (all of them when omitted). */
export async function jobsIn(queue: Queue, state: "active" | "completed", names?: Set<string>): Promise<Job[]> {
  const jobs = await queue.getJobs([state], 0, -1);
  return jobs.filter((j) => !names || names.has(j.processedBy ?? ""));
}

/** Every expected id stored, no other id, and each written exactly once except those in `mayRepeat`
 *  (written once or twice). Returns how many of `mayRepeat` were written twice. */
export function assertWrites(
  writes: Map<string | number, number>,
  expected: Set<string>,
  mayRepeat: Set<string> = new Set(),
): number {
  assert.deepEqual([...writes.keys()].map(String).sort(), [...expected].sort(), "stored ids differ from the backlog");
  let repeated = 0;
  for (const [id, n] of writes) {
    if (mayRepeat.has(String(id))) {
      assert.ok(n === 1 || n === 2, `in-flight point ${id} written ${n} times`);
      if (n === 2) repeated++;
    } else assert.equal(n, 1, `point ${id} (not in flight at the kill) written ${n} times`);
  }
  return repeated;
}

/** The point ids of these jobs. */
export function pointsOf(jobs: Array<Pick<Job, "data">>): Set<string> {
  return new Set(jobs.flatMap(jobPointIds));
}
