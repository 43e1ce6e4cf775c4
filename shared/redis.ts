/** The one factory for every Redis client in the project (queue, BullMQ worker, queue metrics,
 *  backfill, stats, requeue-failed, ingest), so a setting such as TLS or the cluster node list
 *  can never reach some clients and miss others (issue 16). Acts once per client, at creation.
 *  A password in REDIS_URL (`redis://:secret@host:6379`, or `redis://user:secret@...` with ACLs)
 *  authenticates; a `rediss://` URL connects over TLS, verified against the system CAs or
 *  REDIS_TLS_CA_FILE. With REDIS_CLUSTER_NODES set the client is an ioredis `Cluster` seeded
 *  from that list, and REDIS_URL only lends its scheme (TLS) and credentials to every node.
 *  BullMQ needs maxRetriesPerRequest=null so blocking commands survive reconnects. */
import { readFileSync } from "node:fs";
import { Cluster, Redis, type ClusterNode, type RedisOptions } from "ioredis";
import { ConfigError } from "./errors.js";

/** Either kind of client; BullMQ accepts both, and so does every caller here. */
export type RedisClient = Redis | Cluster;

export interface RedisTlsSettings {
  /** PEM file with the CA(s) that signed the Redis server's certificate (rediss:// only). */
  REDIS_TLS_CA_FILE?: string;
}

export interface RedisSettings extends RedisTlsSettings {
  /** Comma list of host:port seed nodes of a Redis Cluster; unset = one Redis at the URL. */
  REDIS_CLUSTER_NODES?: string;
}

/** TLS options for `url`: none for redis://; for rediss:// the CA from REDIS_TLS_CA_FILE if set. */
export function redisTlsOptions(url: string, s: RedisTlsSettings = {}): Pick<RedisOptions, "tls"> {
  if (!url.startsWith("rediss://")) {
    if (s.REDIS_TLS_CA_FILE)
      throw new ConfigError([`REDIS_TLS_CA_FILE is set but REDIS_URL does not use rediss:// (TLS)`]);
    return {};
  }
  if (!s.REDIS_TLS_CA_FILE) return { tls: {} };
  let ca: Buffer;
  try {
    ca = readFileSync(s.REDIS_TLS_CA_FILE);
  } catch (err) {
    throw new ConfigError([`REDIS_TLS_CA_FILE: cannot read ${s.REDIS_TLS_CA_FILE}: ${(err as Error).message}`]);
  }
  return { tls: { ca } };
}

/** `host:port,host:port` → seed nodes; a bad entry is a ConfigError naming it. */
export function parseClusterNodes(list: string): ClusterNode[] {
  const entries = list
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = entries.filter((e) => !/^[^\s:/]+:\d{1,5}$/.test(e) || Number(e.split(":")[1]) > 65535);
  if (entries.length === 0 || bad.length > 0)
    throw new ConfigError([`REDIS_CLUSTER_NODES: "${bad.join(",") || list}" is not a comma list of host:port`]);
  return entries.map((e) => ({ host: e.slice(0, e.lastIndexOf(":")), port: Number(e.split(":")[1]) }));
}

/** The per-node options REDIS_URL carries: credentials, database and TLS. */
function urlOptions(url: string, s: RedisTlsSettings): RedisOptions {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...redisTlsOptions(url, s),
  };
}

/** Opens a client for `url` (or for the cluster in `s.REDIS_CLUSTER_NODES`); `extra` tunes it
 *  (queue metrics fail fast instead of queueing commands). */
export function redisConnection(url: string, s: RedisSettings = {}, extra: RedisOptions = {}): RedisClient {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra };
  if (!s.REDIS_CLUSTER_NODES) return new Redis(url, { ...base, ...redisTlsOptions(url, s) });
  const { lazyConnect, enableOfflineQueue, ...redisOptions } = base;
  return new Cluster(parseClusterNodes(s.REDIS_CLUSTER_NODES), {
    redisOptions: { ...redisOptions, ...urlOptions(url, s) },
    lazyConnect,
    enableOfflineQueue,
    enableReadyCheck: true,
    maxRedirections: 16,
    // ioredis's advice for TLS clusters: keep host names unresolved, so certificates match them.
    ...(url.startsWith("rediss://") ? { dnsLookup: (address, cb) => cb(null, address) } : {}),
  });
}

/** QUIT when connected (pending replies arrive first), otherwise drop the connection at once:
 *  QUIT on a connection that never became ready would wait in the offline queue forever. */
export async function closeRedis(connection: RedisClient, timeoutMs = 2000): Promise<void> {
  if (connection.status !== "ready") {
    connection.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    connection.quit().catch(() => undefined),
    new Promise((r) => (timer = setTimeout(r, timeoutMs))),
  ]);
  clearTimeout(timer);
  connection.disconnect();
}
