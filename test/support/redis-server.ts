/** A private `redis-server` for tests that stop and restart Redis: its own free port and a
 *  temporary data folder with the append-only file fsynced on every write, so a restart
 *  comes back with everything acknowledged before the shutdown. */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, startChild, type Child } from "./reliability.js";

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** Graceful shutdown (SHUTDOWN: fsyncs the AOF, closes every client); resolves when the process is gone. */
  shutdown(): Promise<void>;
  /** Starts redis-server again on the same port and folder; resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  close(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  return spawnSync("redis-server", ["--version"], { encoding: "utf8" }).status === 0;
}

function ping(port: number): boolean {
  const r = spawnSync("redis-cli", ["-p", String(port), "ping"], { encoding: "utf8", timeout: 2000 });
  return r.status === 0 && r.stdout.trim() === "PONG";
}

export async function startTestRedis(): Promise<TestRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "test-redis-"));
  let child: Child | undefined;
  const start = async () => {
    child = startChild("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
      "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile", "",
    ]);
    const end = Date.now() + 15_000;
    while (!ping(port)) {
      if (child.proc.exitCode !== null) throw new Error(`redis-server exited with ${child.proc.exitCode}: ${child.output()}`);
      if (Date.now() > end) throw new Error(`redis-server did not answer on port ${port}: ${child.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const shutdown = async () => {
    if (!child || child.proc.exitCode !== null) return;
    spawnSync("redis-cli", ["-p", String(port), "shutdown"], { timeout: 5000 });
    await child.stop("SIGTERM", 10_000);
  };
  await start();
  return {
    port, dir, url: `redis://127.0.0.1:${port}`, shutdown, start,
    close: async () => {
      await child?.stop("SIGKILL").catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
