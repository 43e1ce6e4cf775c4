/** Private `redis-server`s for tests. A single server for tests that stop and restart Redis: its
 *  own free port and a temporary data folder with the append-only file fsynced on every write, so a
 *  restart comes back with everything acknowledged before the shutdown. A Redis Cluster of real
 *  processes (`startTestCluster`): masters, optional replicas and a manual failover, for tests that
 *  must see the CROSSSLOT and MOVED rules a single server never enforces (issue 16). */
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
  /** Single server only: the append-only file's fsync policy, or "off" for no persistence (default "always",
   *  so a restart keeps every acknowledged write; the queue bench measures with a production-like "everysec"). */
  appendfsync?: "always" | "everysec" | "off";
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

/** redis-server arguments for a password and TLS (clients need no certificate). */
/** Waits (at most 15 s) until the server on `port` answers PING; fails at once if it exited. */
async function untilAnswering(child: Child, port: number, o: TestRedisOptions): Promise<void> {
  const end = Date.now() + 15_000;
  while (!ping(port, o)) {
    if (child.proc.exitCode !== null)
      throw new Error(`redis-server exited with ${child.proc.exitCode}: ${child.output()}`);
    if (Date.now() > end) throw new Error(`redis-server did not answer on port ${port}: ${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function serverAuthArgs(o: TestRedisOptions): string[] {
  const tls = o.tls
    ? ["--tls-cert-file", o.tls.certFile, "--tls-key-file", o.tls.keyFile, "--tls-ca-cert-file", o.tls.caFile]
    : [];
  return [...(o.password ? ["--requirepass", o.password] : []), ...tls, ...(o.tls ? ["--tls-auth-clients", "no"] : [])];
}

export async function startTestRedis(o: TestRedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "test-redis-"));
  let child: Child | undefined;
  const extra = serverAuthArgs(o);
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
      o.appendfsync === "off" ? "no" : "yes",
      "--appendfsync",
      o.appendfsync === "off" ? "always" : (o.appendfsync ?? "always"),
      "--daemonize",
      "no",
      "--logfile",
      "",
      ...extra,
    ]);
    await untilAnswering(child, port, o);
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

export interface TestRedisCluster {
  /** `host:port,...` of every node, for REDIS_CLUSTER_NODES. */
  nodes: string;
  /** A URL of one node (scheme and credentials for REDIS_URL; the host is not used in cluster mode). */
  url: string;
  /** Promotes a replica of the master serving `key` with CLUSTER FAILOVER (no data lost: the master
   *  pauses writes until the replica has caught up); resolves when every node agrees. */
  failover(key: string): Promise<{ from: number; to: number }>;
  /** Stops every node and removes the folder. */
  close(): Promise<void>;
}

/** Why a cluster cannot run here, or undefined when it can (cluster-port needs redis-server 7). */
export function redisClusterUnsupported(): string | undefined {
  const v = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (v.status !== 0) return "redis-server is not installed";
  if (spawnSync("redis-cli", ["--version"], { encoding: "utf8" }).status !== 0) return "redis-cli is not installed";
  const major = Number(/v=(\d+)\./.exec(v.stdout)?.[1] ?? 0);
  return major >= 7 ? undefined : `redis-server ${major} cannot run the test cluster (needs 7 for cluster-port)`;
}

function cli(o: TestRedisOptions, port: number, ...args: string[]): string {
  const r = spawnSync("redis-cli", [...cliArgs(port, o), ...args], { encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0) throw new Error(`redis-cli -p ${port} ${args.join(" ")}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

interface NodeLine {
  port: number;
  id: string;
  master: boolean;
  masterId: string;
  slots: Array<[number, number]>;
}

function clusterNodes(o: TestRedisOptions, port: number): NodeLine[] {
  return cli(o, port, "cluster", "nodes")
    .trim()
    .split("\n")
    .map((line) => {
      const [id, addr, flags, masterId, , , , , ...slots] = line.split(" ");
      const ranges = slots
        .filter((s) => /^\d/.test(s))
        .map((s) => s.split("-").map(Number) as [number, number])
        .map(([a, b]) => [a, b ?? a] as [number, number]);
      return {
        port: Number(addr.split("@")[0].split(":")[1]),
        id,
        master: flags.includes("master"),
        masterId,
        slots: ranges,
      };
    });
}

async function startClusterNode(dir: string, o: TestRedisOptions): Promise<{ port: number; child: Child }> {
  const port = await freePort();
  // prettier-ignore
  const child = startChild("redis-server", [
    ...(o.tls ? ["--port", "0", "--tls-port", String(port), "--tls-cluster", "yes", "--tls-replication", "yes"]
      : ["--port", String(port)]),
    ...serverAuthArgs(o), ...(o.password ? ["--masterauth", o.password] : []),
    "--cluster-port", String(await freePort()), "--bind", "127.0.0.1",
    "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "2000",
    "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
  ]);
  await untilAnswering(child, port, o);
  return { port, child };
}

async function untilAgreed(ports: number[], ok: (port: number) => boolean, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!ports.every(ok)) {
    if (Date.now() > end) throw new Error(`the test cluster did not settle: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `masters` masters, each with `replicas` replicas, and waits until every node reports
 *  cluster_state:ok with every replica linked. */
export async function startTestCluster(
  o: TestRedisOptions & { masters?: number; replicas?: number } = {},
): Promise<TestRedisCluster> {
  const masters = o.masters ?? 3;
  const replicas = o.replicas ?? 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), "test-redis-cluster-"));
  const started: Array<{ port: number; child: Child }> = [];
  const close = async () => {
    await Promise.all(started.map((n) => n.child.stop("SIGKILL").catch(() => undefined)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) started.push(await startClusterNode(dir, o));
    const ports = started.map((n) => n.port);
    const addrs = ports.map((p) => `127.0.0.1:${p}`);
    cli(o, ports[0], "--cluster", "create", ...addrs, "--cluster-replicas", String(replicas), "--cluster-yes");
    const settled = (p: number) =>
      /cluster_state:ok/.test(cli(o, p, "cluster", "info")) &&
      clusterNodes(o, p).length === ports.length &&
      (!/role:slave/.test(cli(o, p, "info", "replication")) ||
        /master_link_status:up/.test(cli(o, p, "info", "replication")));
    await untilAgreed(ports, settled, "cluster_state:ok on every node");
    const auth = o.password ? `:${encodeURIComponent(o.password)}@` : "";
    const url = `${o.tls ? "rediss" : "redis"}://${auth}${addrs[0]}`;
    return { nodes: addrs.join(","), url, failover: (key) => failover(o, ports, key), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function failover(o: TestRedisOptions, ports: number[], key: string): Promise<{ from: number; to: number }> {
  const slot = Number(cli(o, ports[0], "cluster", "keyslot", key).trim());
  const nodes = clusterNodes(o, ports[0]);
  const master = nodes.find((n) => n.master && n.slots.some(([a, b]) => slot >= a && slot <= b));
  const replica = nodes.find((n) => !n.master && n.masterId === master?.id);
  if (!master || !replica) throw new Error(`no replica serves slot ${slot} of ${key}: start the cluster with replicas`);
  cli(o, replica.port, "cluster", "failover");
  const promoted = (p: number) =>
    clusterNodes(o, p).some((n) => n.id === replica.id && n.master && n.slots.some(([a, b]) => slot >= a && slot <= b));
  await untilAgreed(ports, promoted, `port ${replica.port} taking over slot ${slot} from port ${master.port}`);
  return { from: master.port, to: replica.port };
}
