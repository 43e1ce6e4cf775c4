/** Queue gauges read from Redis at scrape time: jobs by state and the age of the oldest job
 *  waiting to be picked up. Every worker exports the same queue-wide figures, so dashboards
 *  take `max` across pods. A scrape never waits on Redis longer than `timeoutMs`: on a slow or
 *  unreachable Redis the gauges keep their last values and a scrape error is counted. Uses
 *  its own connection, which fails fast instead of queueing commands while disconnected. */
import { Queue } from "bullmq";
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
  private readonly queue: Queue;
  private inflight: Promise<QueueSnapshot> | undefined;

  constructor(
    private readonly opts: {
      redisUrl: string;
      /** TLS CA file and cluster nodes, as for every other client. */
      redis?: RedisSettings;
      queueName: string;
      prefix: string;
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
    this.queue = new Queue(opts.queueName, { connection: this.connection, prefix: opts.prefix });
    this.queue.on("error", () => undefined);
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
      const snap = await Promise.race([this.inflight, timeout]);
      if (snap === "timeout") {
        m.queueScrapeErrors.inc({ reason: "timeout" });
        return;
      }
      for (const state of QUEUE_STATES) m.queueJobs.set({ queue: queueName, state }, snap.counts[state]);
      m.queueLag.set({ queue: queueName }, snap.lagSeconds);
    } catch (err) {
      m.queueScrapeErrors.inc({ reason: "error" });
      this.opts.log?.debug({ err: (err as Error).message }, "queue metrics read failed");
    } finally {
      clearTimeout(timer);
    }
  }

  private async read(): Promise<QueueSnapshot> {
    if (this.connection.status === "wait") await this.connection.connect().catch(() => undefined);
    const counts = (await this.queue.getJobCounts(...QUEUE_STATES)) as QueueSnapshot["counts"];
    // The wait list is served from its right end (oldest); prioritized jobs run lowest score first.
    const [oldestWaiting] = await this.connection.lrange(this.queue.toKey("wait"), -1, -1);
    const [nextPrioritized] = await this.connection.zrange(this.queue.toKey("prioritized"), "0", "0");
    const ids = [oldestWaiting, nextPrioritized].filter((id): id is string => !!id);
    const stamps = await Promise.all(ids.map((id) => this.connection.hget(this.queue.toKey(id), "timestamp")));
    const oldest = Math.min(...stamps.map(Number).filter((t) => Number.isFinite(t) && t > 0));
    return { counts, lagSeconds: Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0 };
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.connection.disconnect();
  }
}
