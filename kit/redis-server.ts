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

export interface TestRedisOptions {
  /** `requirepass`: clients must authenticate. */
  password?: string;
  /** Serve TLS only (no plain port), with this server certificate. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

function cliArgs(port: number, o: TestRedisOptions): string[] {
  const args = ["-p", String(port)];
  if (o.tls) args.push("--tls", "--cacert", o.tls.caFile);
  if (o.password) args.push("--no-auth-warning", "-a", o.password);
  return args;
}

function ping(port: number, o: TestRedisOptions): boolean {
  const r = spawnSync("redis-cli", [...cliArgs(port, o), "ping"], { encoding: "utf8", timeout: 2000 });
  return r.status === 0 && r.stdout.trim() === "PONG";
}

export async function startTestRedis(o: TestRedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "test-redis-"));
  let child: Child | undefined;
  const extra = [
    ...(o.password ? ["--requirepass", o.password] : []),
    ...(o.tls
      ? [
          "--tls-cert-file",
          o.tls.certFile,
          "--tls-key-file",
          o.tls.keyFile,
          "--tls-ca-cert-file",
          o.tls.caFile,
          "--tls-auth-clients",
          "no",
        ]
      : []),
  ];
  const start = async () => {
    child = startChild("redis-server", [
      ...(o.tls ? ["--port", "0", "--tls-port", String(port)] : ["--port", String(port)]),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--daemonize",
      "no",
      "--logfile",
      "",
      ...extra,
    ]);
    const end = Date.now() + 15_000;
    while (!ping(port, o)) {
      if (child.proc.exitCode !== null)
        throw new Error(`redis-server exited with ${child.proc.exitCode}: ${child.output()}`);
      if (Date.now() > end) throw new Error(`redis-server did not answer on port ${port}: ${child.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const shutdown = async () => {
    if (!child || child.proc.exitCode !== null) return;
    spawnSync("redis-cli", [...cliArgs(port, o), "shutdown"], { timeout: 5000 });
    await child.stop("SIGTERM", 10_000);
  };
  await start();
  return {
    port,
    dir,
    url: `${o.tls ? "rediss" : "redis"}://${o.password ? `:${encodeURIComponent(o.password)}@` : ""}${o.tls ? "localhost" : "127.0.0.1"}:${port}`,
    shutdown,
    start,
    close: async () => {
      await child?.stop("SIGKILL").catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
