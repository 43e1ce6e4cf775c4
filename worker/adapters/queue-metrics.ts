/** Queue gauges read from Redis at scrape time: jobs by state and the age of the oldest job
 *  waiting to be picked up. Every worker exports the same queue-wide figures, so dashboards
 *  take `max` across pods. A scrape never waits on Redis longer than `timeoutMs`: on a slow or
 *  unreachable Redis the gauges keep their last values and a scrape error is counted. Uses
 *  its own connection, which fails fast instead of queueing commands while disconnected. A
 *  sharded queue (issue 16) is read shard by shard, whatever subset this worker consumes, and each
 *  series gets a `shard` label (unsharded series have none, as before): dashboards sum over shards
 *  after taking the max across pods. */
import { Queue } from "bullmq";
import { queueShards } from "../../shared/queue-shards.js";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import { redisConnection, type RedisClient, type RedisSettings } from "../../shared/redis.js";

export const QUEUE_STATES = ["waiting", "prioritized", "active", "delayed", "failed"] as const;

export interface QueueSnapshot {
  counts: Record<(typeof QUEUE_STATES)[number], number>;
  /** Seconds since the oldest job still waiting was added; 0 when none waits. */
  lagSeconds: number;
}

export class QueueMetrics {
  private readonly connection: RedisClient;
  private readonly queues: Array<{ shard?: string; queue: Queue }>;
  private inflight: Promise<QueueSnapshot[]> | undefined;

  constructor(
    private readonly opts: {
      redisUrl: string;
      /** TLS CA file and cluster nodes, as for every other client. */
      redis?: RedisSettings;
      queueName: string;
      prefix: string;
      /** QUEUE_SHARDS; default 1. */
      shards?: number;
      timeoutMs: number;
      metrics: Metrics;
      log?: Logger;
    },
  ) {
    this.connection = redisConnection(opts.redisUrl, opts.redis, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      commandTimeout: opts.timeoutMs,
      connectTimeout: Math.max(opts.timeoutMs, 1000),
      lazyConnect: true,
    });
    this.connection.on("error", () => undefined); // reported per scrape
    const shards = opts.shards ?? 1;
    this.queues = queueShards({ QUEUE_PREFIX: opts.prefix, QUEUE_SHARDS: shards }).map((s) => ({
      ...(shards > 1 ? { shard: String(s.id) } : {}),
      queue: new Queue(opts.queueName, { connection: this.connection, prefix: s.prefix }),
    }));
    for (const q of this.queues) q.queue.on("error", () => undefined);
    const self = this;
    const { metrics: m } = opts;
    // One Redis read per scrape serves both gauges; prom-client collects metrics concurrently.
    (m.queueJobs as unknown as { collect?: () => Promise<void> }).collect = async function () {
      await self.refresh();
    };
    (m.queueLag as unknown as { collect?: () => Promise<void> }).collect = async function () {
      await self.refresh();
    };
  }

  /** Reads Redis (shared by concurrent callers) and updates the gauges; never rejects. */
  async refresh(): Promise<void> {
    const { metrics: m, queueName, timeoutMs } = this.opts;
    this.inflight ??= this.read().finally(() => (this.inflight = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    try {
      const snaps = await Promise.race([this.inflight, timeout]);
      if (snaps === "timeout") {
        m.queueScrapeErrors.inc({ reason: "timeout" });
        return;
      }
      snaps.forEach((snap, i) => {
        const shard = this.queues[i].shard;
        const labels = shard === undefined ? { queue: queueName } : { queue: queueName, shard };
        for (const state of QUEUE_STATES) m.queueJobs.set({ ...labels, state }, snap.counts[state]);
        m.queueLag.set(labels, snap.lagSeconds);
      });
    } catch (err) {
      m.queueScrapeErrors.inc({ reason: "error" });
      this.opts.log?.debug({ err: (err as Error).message }, "queue metrics read failed");
    } finally {
      clearTimeout(timer);
    }
  }

  private async read(): Promise<QueueSnapshot[]> {
    if (this.connection.status === "wait") await this.connection.connect().catch(() => undefined);
    return Promise.all(this.queues.map((q) => this.readShard(q.queue)));
  }

  private async readShard(queue: Queue): Promise<QueueSnapshot> {
    const counts = (await queue.getJobCounts(...QUEUE_STATES)) as QueueSnapshot["counts"];
    // The wait list is served from its right end (oldest); prioritized jobs run lowest score first.
    const [oldestWaiting] = await this.connection.lrange(queue.toKey("wait"), -1, -1);
    const [nextPrioritized] = await this.connection.zrange(queue.toKey("prioritized"), "0", "0");
    const ids = [oldestWaiting, nextPrioritized].filter((id): id is string => !!id);
    const stamps = await Promise.all(ids.map((id) => this.connection.hget(queue.toKey(id), "timestamp")));
    const oldest = Math.min(...stamps.map(Number).filter((t) => Number.isFinite(t) && t > 0));
    return { counts, lagSeconds: Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0 };
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.queue.close().catch(() => undefined)));
    this.connection.disconnect();
  }
}
