/** One way to open Redis for producers and workers alike. A password in the URL
 *  (`redis://:secret@host:6379`, or `redis://user:secret@...` with ACLs) authenticates; a
 *  `rediss://` URL connects over TLS, verified against the system CAs or REDIS_TLS_CA_FILE.
 *  BullMQ needs maxRetriesPerRequest=null so blocking commands survive reconnects. */
import { readFileSync } from "node:fs";
import { Redis, type RedisOptions } from "ioredis";
import { ConfigError } from "./errors.js";

export interface RedisTlsSettings {
  /** PEM file with the CA(s) that signed the Redis server's certificate (rediss:// only). */
  REDIS_TLS_CA_FILE?: string;
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

export function redisConnection(url: string, s: RedisTlsSettings = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, ...redisTlsOptions(url, s) });
}

/** QUIT when connected (pending replies arrive first), otherwise drop the connection at once:
 *  QUIT on a connection that never became ready would wait in the offline queue forever. */
export async function closeRedis(connection: Redis, timeoutMs = 2000): Promise<void> {
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
