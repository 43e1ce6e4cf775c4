/** The worker as a process: starts the worker (app.ts) and runs until SIGTERM or SIGINT, then
 *  stops taking jobs, finishes the ones in flight and exits 0, within DRAIN_TIMEOUT_MS +
 *  SHUTDOWN_MARGIN_MS whatever Redis and Qdrant do; a backstop timer exits 1 if even that bound
 *  is missed. A start-up failure (model, CUDA provider, collection schema) or a fatal error while
 *  running exits 1 with the reason on stderr and in the log. Owns the process: it installs the
 *  signal handlers and calls `process.exit`, so only an entry point calls it. */
import type { Config } from "../shared/config.js";
import { createLogger } from "../shared/logger.js";
import { startWorker } from "./app.js";
import { SHUTDOWN_MARGIN_MS } from "./shutdown.js";

/** How long past the shutdown bound the backstop waits before exiting anyway, milliseconds. */
const BACKSTOP_MS = 2000;

export async function runWorkerProcess(cfg: Config): Promise<void> {
  const log = createLogger({ level: cfg.LOG_LEVEL, name: "worker" });
  try {
    const running = await startWorker(cfg, {
      log,
      onFatal: () => process.exit(1),
    });
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down: finishing in-flight jobs");
      const backstopMs = cfg.DRAIN_TIMEOUT_MS + SHUTDOWN_MARGIN_MS + BACKSTOP_MS;
      setTimeout(() => {
        log.fatal({ ms: backstopMs }, "shutdown did not finish in time; exiting anyway");
        log.flush();
        process.exit(1);
      }, backstopMs).unref();
      running.close().then(
        () => {
          log.info("stopped");
          log.flush();
          process.exit(0);
        },
        (err: Error) => {
          log.error({ err: err.message }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  } catch (err) {
    const e = err as Error & { kind?: string };
    log.fatal({ kind: e.kind, err: e.message }, "worker failed to start");
    log.flush();
    process.stderr.write(`worker failed to start: ${e.message}\n`);
    process.exit(1);
  }
}
