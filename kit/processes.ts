/** Workers as real child processes (`node dist/worker/main.js`), for crash, signal and soak
 *  runs: built on `startChild` (always reaped), plus the JSON log lines, the HTTP port read
 *  from the "worker started" line, and peak RSS sampled from /proc while the process lives. */
import path from "node:path";
import { freePort, repoRoot } from "./harness.js";
import { startChild, trackPeakRss, type Child } from "./reliability.js";

export interface ChildWorker extends Child {
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the bound HTTP port once the worker has started (rejects if it exits first). */
  started: Promise<number>;
  /** Highest VmHWM seen, bytes (Linux; 0 elsewhere). */
  peakRss(): number;
  /** Throws, with the end of its output, if the process has exited: for wait loops that must fail fast. */
  assertAlive(): void;
}

/** Starts `node dist/worker/main.js` with `env` (plus PATH, LOG_LEVEL=info and a free HTTP_PORT unless given). */
export async function spawnWorker(env: NodeJS.ProcessEnv): Promise<ChildWorker> {
  const port = env.HTTP_PORT ?? String(await freePort());
  const child = startChild(process.execPath, [path.join(repoRoot, "dist", "worker", "main.js")], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", ...env, HTTP_PORT: port },
  });
  const logs: Array<Record<string, unknown>> = [];
  let onStart: ((port: number) => void) | undefined;
  let buf = "";
  child.proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (rec.msg === "worker started") onStart?.(Number(rec.httpPort ?? 0));
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  const started = new Promise<number>((resolve, reject) => {
    onStart = resolve;
    void child.exited.then(({ code, signal }) =>
      reject(
        new Error(`worker exited before starting (code ${code}, signal ${signal}): ${child.output().slice(-2000)}`),
      ),
    );
  });
  started.catch(() => undefined);
  const rss = trackPeakRss(child);
  const assertAlive = () => {
    const { exitCode, signalCode } = child.proc;
    if (exitCode !== null || signalCode !== null) {
      throw new Error(`the worker exited (code ${exitCode}, signal ${signalCode}): ${child.output().slice(-2000)}`);
    }
  };
  return { ...child, logs, started, peakRss: rss.peak, assertAlive };
}
