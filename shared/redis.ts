/** One way to open Redis for producers and workers alike (TLS via rediss:// URLs). BullMQ
 *  needs maxRetriesPerRequest=null so blocking commands survive reconnects. */
import { Redis } from "ioredis";

export function redisConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true });
}
