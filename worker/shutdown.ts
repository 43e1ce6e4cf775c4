/** The worker's shutdown, bounded in time whatever Redis and Qdrant do (issue 13). Trades
 *  completeness for a deadline: in-flight jobs get DRAIN_TIMEOUT_MS to finish, then are handed
 *  back to the queue; each later step has a fixed share of SHUTDOWN_MARGIN_MS (handing back and
 *  BullMQ's close, pending writes, releasing resources). A step still running at its end is
 *  abandoned and named in one warning: BullMQ's close waits on Redis (`QUIT` on a dead server
 *  never answers), so with Redis down, jobs still active stay active until their locks expire and
 *  another worker's stalled check takes them back. Acts once, when `close()` is first called. */
import type { RedisClient } from "../shared/redis.js";
import type { Logger } from "pino";
import type { Config } from "../shared/config.js";
import { ShutdownError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { EmbeddingPipeline } from "./core/pipeline.js";
import type { HealthState } from "./adapters/health.js";

/** Past DRAIN_TIMEOUT_MS, how long handing jobs back and closing BullMQ may take, milliseconds. */
const HAND_BACK_MS = 1500;
/** Then how long pending writes of handed-back jobs may take. */
const WRITES_GRACE_MS = 2000;
/** Then how long releasing resources (threads, connections, HTTP server) may take. */
const RELEASE_MS = 1500;
/** Time past DRAIN_TIMEOUT_MS for handing jobs back, flushing writes and releasing resources, milliseconds. */
export const SHUTDOWN_MARGIN_MS = HAND_BACK_MS + WRITES_GRACE_MS + RELEASE_MS;

export interface ShutdownResult {
  /** Jobs handed back to the queue at the drain deadline. */
  handedBack: number;
  /** Steps that did not finish before the shutdown deadline, in order; empty when everything finished. */
  abandoned: string[];
}

export interface ShutdownParts {
  cfg: Pick<Config, "DRAIN_TIMEOUT_MS" | "LOCK_DURATION_MS">;
  /** The BullMQ consumers (one per shard served). */
  worker: { close(): Promise<void>; disconnect(): Promise<void> };
  pipeline: EmbeddingPipeline;
  connection: RedisClient;
  health: HealthState;
  metrics: Metrics;
  log: Logger;
  /** Releases the other resources, in reverse order of creation. */
  cleanups: Array<() => Promise<unknown>>;
}

/** Resolves true when `p` settles within `ms`, false otherwise (`p` keeps running). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, ms))));
  const ok = await Promise.race([settled, late]);
  clearTimeout(timer);
  return ok;
}

export async function shutdown(p: ShutdownParts): Promise<ShutdownResult> {
  const { cfg, pipeline, log } = p;
  p.health.phase = "draining";
  p.metrics.ready.set(0);
  const started = Date.now();
  const drainEnd = started + cfg.DRAIN_TIMEOUT_MS;
  const until = (t: number) => t - Date.now();
  const abandoned: string[] = [];
  let handedBack = 0;
  const deadline = setTimeout(() => {
    handedBack = pipeline.abortAll(
      new ShutdownError(`the worker is shutting down and DRAIN_TIMEOUT_MS=${cfg.DRAIN_TIMEOUT_MS} passed`),
    );
    log.warn({ jobs: handedBack }, "drain deadline passed: handing in-flight jobs back to the queue");
  }, cfg.DRAIN_TIMEOUT_MS);
  const activeAtStart = pipeline.inFlightJobs;
  const closed = await within(p.worker.close(), until(drainEnd + HAND_BACK_MS));
  clearTimeout(deadline);
  if (!closed) {
    abandoned.push(
      `closing the BullMQ worker (Redis did not answer; ${activeAtStart} jobs were in flight at SIGTERM: ` +
        `those not handed back stay active until their locks expire, LOCK_DURATION_MS=${cfg.LOCK_DURATION_MS})`,
    );
    // Drop the connections so nothing keeps waiting on Redis; the worker's own close keeps running detached.
    p.worker.disconnect().catch(() => undefined);
    p.connection.disconnect();
  }
  // Upserts of handed-back jobs may still hang on a dead sink: wait for them only briefly.
  const writesEnd = Math.min(
    Math.max(drainEnd, Date.now()) + WRITES_GRACE_MS,
    drainEnd + HAND_BACK_MS + WRITES_GRACE_MS,
  );
  if (!(await within(pipeline.drain(), until(writesEnd))))
    abandoned.push("writes still pending (their jobs did not complete: another worker redoes them)");
  p.health.phase = "stopped";
  const release = (async () => {
    for (const c of p.cleanups.reverse())
      await c().catch((err: Error) => log.warn({ err: err.message }, "cleanup failed"));
  })();
  if (!(await within(release, until(drainEnd + SHUTDOWN_MARGIN_MS))))
    abandoned.push("releasing resources (connections, threads, HTTP server)");
  if (abandoned.length > 0) {
    log.warn(
      { abandoned, handedBack, ms: Date.now() - started },
      `shutdown bounded by DRAIN_TIMEOUT_MS + ${SHUTDOWN_MARGIN_MS} ms: abandoned ${abandoned.join("; ")}`,
    );
  }
  return { handedBack, abandoned };
}
