/** Workers as real child processes (`node dist/worker/main.js`), for crash, signal and soak
 *  tests: JSON log lines are collected, the HTTP port is read from the "worker started" line,
 *  and peak RSS is sampled from /proc while the process lives. */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort, repoRoot } from "./harness.js";
import { peakRssBytes } from "./reliability.js";

const readPeakRss = (pid: number) => peakRssBytes(pid) ?? 0;

export interface ChildWorker {
  proc: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the bound HTTP port once the worker has started (rejects if it exits first). */
  started: Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Highest VmHWM seen, bytes (Linux; 0 elsewhere). */
  peakRss(): number;
  stderr(): string;
}

/** Starts `node dist/worker/main.js` with `env` (plus PATH, LOG_LEVEL=info and a free HTTP_PORT unless given). */
export async function spawnWorker(env: Record<string, string>): Promise<ChildWorker> {
  const port = env.HTTP_PORT ?? String(await freePort());
  const proc = spawn(process.execPath, [path.join(repoRoot, "dist", "worker", "main.js")], {
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", ...env, HTTP_PORT: port },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  let err = "";
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, readPeakRss(proc.pid ?? 0))), 200);
  let buf = "";
  let onStart: ((port: number) => void) | undefined;
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
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
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => {
      clearInterval(sampler);
      resolve({ code, signal });
    }),
  );
  const started = new Promise<number>((resolve, reject) => {
    onStart = resolve;
    void exited.then(({ code, signal }) => reject(new Error(`worker exited before starting (code ${code}, signal ${signal}): ${err.slice(-2000)}`)));
  });
  started.catch(() => undefined);
  return { proc, logs, started, exited, peakRss: () => Math.max(peak, readPeakRss(proc.pid ?? 0)), stderr: () => err };
}
