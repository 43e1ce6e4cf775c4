/** Backfill: embeds a whole archive through the queue live ingestion uses, with bounded memory
 *  on both sides. Files are walked lazily in a fixed order and read as streams (JSONL line by
 *  line; whole-file formats one file at a time, under the readers' size cap); documents are
 *  chunked and turned into jobs exactly as `ingest` does, and added in bulks. Before each bulk
 *  the backlog gate (backfill/backlog.ts) pauses while the queue is above its high-water mark.
 *  After each bulk the checkpoint (backfill/checkpoint.ts) may advance, never before the bulk
 *  is in Redis, so a killed run restarts where it stopped. Jobs carry a BullMQ priority
 *  (default 1,000,000): BullMQ serves jobs without a priority before any prioritized job, and
 *  lower numbers first, so live ingestion (no priority, or a smaller number) is never queued
 *  behind a backfill. A dry run reads and chunks without Redis and sizes the run. With `pack`,
 *  small whole documents go several to a job (packer.ts); the open pack closes at every bulk, so
 *  the checkpoint never passes a document that is not in Redis.
 *  On a sharded
 *  queue (QUEUE_SHARDS > 1) jobs go to their documents' shards, the backlog marks bound the sum
 *  over the shards, and the checkpoint (one key under QUEUE_PREFIX) is the same as unsharded: it
 *  records a position in the inputs, which no shard owns. */
import { peakRssBytes } from "../shared/process-memory.js";
import { stat } from "node:fs/promises";
import { QueueEvents } from "bullmq";
import type { Logger } from "pino";
import type { Config } from "../shared/config.js";
import { createLogger } from "../shared/logger.js";
import { QueueSet } from "../shared/queue-set.js";
import { redisConnection, type RedisClient } from "../shared/redis.js";
import { BacklogGate, type GateStats, type WaterMarks } from "./backfill/backlog.js";
import {
  checkpointKey,
  CheckpointError,
  defaultRunId,
  FileCheckpointStore,
  newCheckpoint,
  RedisCheckpointStore,
  resumeConflict,
  zeroCounts,
  type BackfillCounts,
  type BackfillSettings,
  type Checkpoint,
  type CheckpointPosition,
  type CheckpointStore,
} from "./backfill/checkpoint.js";
import { estimateBackfill, type BackfillEstimate } from "./backfill/estimate.js";
import { measureInputs, walkInputs, type WalkedEntry } from "./backfill/input-walk.js";
import {
  estimateEta,
  RateMeter,
  startProgress,
  type ProgressMode,
  type ProgressSnapshot,
} from "./backfill/progress.js";
import type { ReadEvent } from "./document.js";
import {
  chunksForQueue,
  enqueueOptionsFrom,
  jobsForDocument,
  reasonKey,
  type BulkJob,
  type EnqueueOptions,
  type SkippedRecord,
} from "./enqueue.js";
import { DuplicateIdGuard } from "./duplicate-ids.js";
import { JobPacker, type PackBounds } from "./packer.js";
import { jobChunkCount } from "../shared/pack.js";
import { formatForFile, LINE_FORMATS, readDocuments, type InputFormat } from "./readers/index.js";
import { ProducerError } from "./producer-errors.js";

export const BACKFILL_DEFAULTS = {
  priority: 1_000_000,
  highWaterJobs: 1000,
  lowWaterJobs: 500,
  highWaterChunks: 32_000,
  lowWaterChunks: 16_000,
  bulkSize: 100,
  pollMs: 500,
  checkpointEveryMs: 1000,
  progressIntervalMs: 10_000,
} as const;

/** A partly filled bulk is added after this long, so slow-to-chunk inputs still advance the checkpoint. */
const MAX_BULK_WAIT_MS = 2000;
/** Distinct skip reasons kept in the checkpoint; later new ones count as "other". */
const MAX_REASONS = 100;
const MAX_SAMPLES = 20;

export interface BackfillOptions {
  /** Files, folders and globs. */
  inputs: string[];
  /** Names the checkpoint; default derived from the resolved inputs and the queue. */
  runId?: string;
  /** "redis" (default): a key beside the queue; anything else: a file path. */
  checkpoint?: string;
  /** Overrides `checkpoint` with any store (library use, tests). */
  checkpointStore?: CheckpointStore;
  /** Ignore and replace an existing checkpoint of this run id. */
  restart?: boolean;
  format?: "auto" | InputFormat;
  idPrefix?: string;
  chunkTokens?: number;
  overlapTokens?: number;
  /** BullMQ priority of the backfill's jobs (1 = highest, 2,097,151 = lowest). */
  priority?: number;
  marks?: Partial<WaterMarks>;
  /** Jobs per addBulk. */
  bulkSize?: number;
  skipUnchanged?: boolean;
  /** Pack small whole documents several to a job within these bounds; unset = one job per document. */
  pack?: PackBounds;
  /** The collection holds none of these documents (created for this backfill): workers skip the
   *  stale-point removal. See EnqueueOptions.fresh for the risk. */
  fresh?: boolean;
  /** Enqueue a document whose id this invocation already enqueued (default: refuse it, counted). */
  allowDuplicateIds?: boolean;
  dryRun?: boolean;
  /** After enqueueing, wait until the workers have finished this run's jobs. */
  wait?: boolean;
  /** Dry run: measured worker throughput, for the embedding-time estimate. */
  tokensPerSecond?: number;
  progress?: ProgressMode;
  progressIntervalMs?: number;
  pollMs?: number;
  checkpointEveryMs?: number;
  signal?: AbortSignal;
  /** Progress lines go here (default: pino JSON on stderr). */
  log?: Logger;
  countTokens: (text: string) => number;
}

export interface BackfillSummary {
  runId: string;
  checkpoint: string | null;
  dryRun: boolean;
  /** This invocation continued a checkpoint. */
  resumed: boolean;
  /** Every input was read and enqueued (now or in an earlier invocation). */
  complete: boolean;
  /** The checkpoint already said complete: nothing was read. */
  alreadyComplete: boolean;
  interrupted: boolean;
  /** This invocation. */
  run: BackfillCounts;
  /** All invocations of this run id. */
  total: BackfillCounts;
  skippedByReason: Record<string, number>;
  /** The first skipped records of this invocation, with file and line. */
  skippedSamples: SkippedRecord[];
  priority: number | null;
  backlog: (WaterMarks & Pick<GateStats, "peakJobs" | "peakChunks" | "pauses" | "pausedSeconds">) | null;
  /** What QueueEvents reported for this invocation's jobs (complete only with `wait`). */
  worker: {
    completedJobs: number;
    failedJobs: number;
    duplicateJobs: number;
    unchangedChunks: number;
    drained: boolean;
  } | null;
  estimate: BackfillEstimate | null;
  elapsedSeconds: number;
  /** Peak resident memory of this process. */
  maxRssBytes: number;
}

/** Backfill options that cannot work together (low-water marks not below high-water marks). */
export class BackfillError extends ProducerError {
  readonly kind = "options";
}

const add = (a: BackfillCounts, b: BackfillCounts) => {
  for (const k of Object.keys(a) as Array<keyof BackfillCounts>) a[k] += b[k];
};

interface Resources {
  connection?: RedisClient;
  /** One per shard: QueueEvents blocks on its connection. */
  eventsConnections?: RedisClient[];
  queue?: QueueSet;
  events?: QueueEvents[];
  store?: CheckpointStore;
}

async function openResources(cfg: Config, o: BackfillOptions, runId: string): Promise<Resources> {
  if (o.dryRun) return {};
  // Both carry the TLS and cluster settings: they used to get the URL alone (issue 16).
  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const queue = new QueueSet(cfg, connection);
  const eventsConnections = queue.shards.map(() => redisConnection(cfg.REDIS_URL, cfg));
  const events = queue.shards.map(
    (s, i) => new QueueEvents(cfg.QUEUE_NAME, { connection: eventsConnections[i], prefix: s.prefix }),
  );
  const where = o.checkpoint ?? "redis";
  const store =
    o.checkpointStore ??
    (where === "redis"
      ? new RedisCheckpointStore(connection, checkpointKey(cfg.QUEUE_PREFIX, cfg.QUEUE_NAME, runId))
      : new FileCheckpointStore(where));
  const res = { connection, eventsConnections, queue, events, store };
  try {
    await Promise.all(events.map((e) => e.waitUntilReady()));
  } catch (err) {
    await closeResources(res);
    throw err;
  }
  return res;
}

async function closeResources(r: Resources): Promise<void> {
  await Promise.allSettled((r.events ?? []).map((e) => e.close()));
  await r.queue?.close();
  await Promise.allSettled([r.connection, ...(r.eventsConnections ?? [])].map((c) => c?.quit()));
}

export async function runBackfill(cfg: Config, o: BackfillOptions): Promise<BackfillSummary> {
  const runId = o.runId ?? defaultRunId(o.inputs, cfg.QUEUE_NAME);
  const res = await openResources(cfg, o, runId);
  try {
    return await new BackfillRun(cfg, o, runId, res).run();
  } finally {
    await closeResources(res);
  }
}

class BackfillRun {
  private readonly started = performance.now();
  private readonly enqueue: EnqueueOptions;
  private readonly settings: BackfillSettings;
  private readonly marks: WaterMarks;
  private readonly bulkSize: number;
  private readonly gate?: BacklogGate;
  private cp!: Checkpoint;
  private resumed = false;
  /** Counted since the last flush; committed with it. */
  private pending = zeroCounts();
  private pendingReasons: Record<string, number> = {};
  private readonly runCounts = zeroCounts();
  private buffer: BulkJob[] = [];
  private pos: CheckpointPosition | null = null;
  private readonly samples: SkippedRecord[] = [];
  private lastSave = 0;
  private lastFlush = performance.now();
  private jobDataBytes = 0;
  private bytesTotal: number | null = null;
  private phase: ProgressSnapshot["phase"] = "enqueue";
  private readonly enqueueMeter = new RateMeter();
  private readonly drainMeter = new RateMeter();
  private readonly bytesMeter = new RateMeter();
  /** Ids enqueued by this invocation (not earlier ones of a resumed run). */
  private readonly ids?: DuplicateIdGuard;
  private readonly packer?: JobPacker;

  constructor(
    private readonly cfg: Config,
    private readonly o: BackfillOptions,
    private readonly runId: string,
    private readonly res: Resources,
  ) {
    this.enqueue = {
      ...enqueueOptionsFrom(cfg, o.countTokens),
      chunkTokens: o.chunkTokens ?? cfg.CHUNK_TOKENS,
      overlapTokens: o.overlapTokens ?? cfg.CHUNK_OVERLAP_TOKENS,
      priority: o.priority ?? BACKFILL_DEFAULTS.priority,
      skipUnchanged: o.skipUnchanged,
      fresh: o.fresh,
      dryRun: o.dryRun,
    };
    this.settings = {
      format: o.format ?? "auto",
      idPrefix: o.idPrefix ?? "",
      chunkTokens: this.enqueue.chunkTokens,
      overlapTokens: this.enqueue.overlapTokens,
      maxChunksPerJob: this.enqueue.maxChunksPerJob,
    };
    const m = o.marks ?? {};
    this.marks = {
      highJobs: m.highJobs ?? BACKFILL_DEFAULTS.highWaterJobs,
      lowJobs: m.lowJobs ?? BACKFILL_DEFAULTS.lowWaterJobs,
      highChunks: m.highChunks ?? BACKFILL_DEFAULTS.highWaterChunks,
      lowChunks: m.lowChunks ?? BACKFILL_DEFAULTS.lowWaterChunks,
    };
    if (this.marks.lowJobs >= this.marks.highJobs || this.marks.lowChunks >= this.marks.highChunks) {
      throw new BackfillError(
        `low-water marks must be below high-water marks (jobs ${this.marks.lowJobs} vs ${this.marks.highJobs}, chunks ${this.marks.lowChunks} vs ${this.marks.highChunks})`,
      );
    }
    this.bulkSize = o.bulkSize ?? BACKFILL_DEFAULTS.bulkSize;
    if (!o.allowDuplicateIds) this.ids = new DuplicateIdGuard();
    if (o.pack) this.packer = new JobPacker(o.pack, res.queue?.shardCount ?? 1);
    if (res.queue) {
      this.gate = new BacklogGate(res.queue, res.events, this.marks, {
        pollMs: o.pollMs ?? BACKFILL_DEFAULTS.pollMs,
        fallbackChunksPerJob: this.enqueue.maxChunksPerJob,
      });
    }
  }

  async run(): Promise<BackfillSummary> {
    const found = this.o.restart ? null : await this.res.store?.load();
    if (found?.status === "done") {
      this.cp = found;
      return this.summary({ alreadyComplete: true, interrupted: false });
    }
    if (found) {
      const conflict = resumeConflict(found, this.o.inputs, this.settings);
      if (conflict)
        throw new CheckpointError(
          `cannot resume backfill "${this.runId}" from ${this.res.store!.describe()}: ${conflict}; use --restart or another --run-id`,
        );
      this.cp = { ...found, attempts: found.attempts + 1 };
      this.resumed = true;
    } else {
      this.cp = newCheckpoint(this.runId, this.o.inputs, this.settings);
    }
    await this.res.store?.save(this.cp);
    const scan = new AbortController();
    void measureInputs(this.cp.inputs, scan.signal).then(
      (r) => (this.bytesTotal = r.bytes),
      () => undefined,
    );
    this.snapshot(); // seeds the rate meters, so the first progress line has rates
    const sampler = setInterval(() => this.gate?.refresh(), 1000);
    sampler.unref();
    const progress = startProgress(this.o.progress ?? "none", () => this.snapshot(), {
      intervalMs: this.o.progressIntervalMs ?? BACKFILL_DEFAULTS.progressIntervalMs,
      log: this.o.log ?? createLogger({ name: "backfill", destination: process.stderr }),
    });
    try {
      const finished = await this.readAll();
      if (finished) {
        this.cp.status = "done";
        await this.save(true);
        if (this.o.wait && this.gate) {
          this.phase = "wait";
          await this.gate.drained(this.o.signal);
        }
      } else await this.save(true);
      return this.summary({ alreadyComplete: false, interrupted: !finished });
    } finally {
      clearInterval(sampler);
      scan.abort();
      progress.stop();
    }
  }

  /** Reads every file from the checkpoint's position on; false if interrupted. */
  private async readAll(): Promise<boolean> {
    const at = this.cp.position;
    this.pos = at;
    const from = at ? { position: { input: at.input, file: at.file }, inclusive: !at.complete } : undefined;
    for await (const entry of walkInputs(this.cp.inputs, { from })) {
      if (this.o.signal?.aborted) return false;
      const resumeAt = at && !at.complete && entry.input === at.input && entry.file === at.file ? at : null;
      if (!(await this.readFile(entry, resumeAt))) return false;
    }
    return this.flush();
  }

  private async readFile(entry: WalkedEntry, resumeAt: CheckpointPosition | null): Promise<boolean> {
    if (entry.kind !== "file") {
      this.skip({ file: entry.file, reason: entry.reason });
      this.pos = { input: entry.input, file: entry.file, records: 0, offset: 0, line: 0, complete: true };
      return true;
    }
    const size = await stat(entry.file).then(
      (s) => s.size,
      () => 0,
    );
    const format = this.settings.format === "auto" ? formatForFile(entry.file) : (this.settings.format as InputFormat);
    const byLine = format !== undefined && LINE_FORMATS.has(format);
    let pos: CheckpointPosition = resumeAt ?? {
      input: entry.input,
      file: entry.file,
      records: 0,
      offset: 0,
      line: 0,
      complete: false,
    };
    let toSkip = byLine ? 0 : pos.records; // whole-file formats resume by record count
    const events = readDocuments(entry.file, {
      format: this.settings.format as "auto" | InputFormat,
      idPrefix: this.settings.idPrefix,
      detectDuplicateIds: false,
      start: byLine && resumeAt ? { offset: resumeAt.offset, line: resumeAt.line } : undefined,
    });
    for await (const ev of events) {
      if (toSkip > 0) {
        toSkip--;
        continue;
      }
      pos = this.advance(pos, ev);
      this.pos = pos;
      this.handle(ev);
      const waiting = this.buffer.length > 0 || (this.packer?.pending ?? 0) > 0;
      const due =
        this.buffer.length >= this.bulkSize || (waiting && performance.now() - this.lastFlush >= MAX_BULK_WAIT_MS);
      if (due && !(await this.flush())) return false;
      if (this.o.signal?.aborted) return false;
    }
    this.pending.bytes += byLine ? Math.max(0, size - pos.offset) : size;
    this.pending.files++;
    this.pos = { ...pos, complete: true };
    return true;
  }

  private advance(pos: CheckpointPosition, ev: ReadEvent): CheckpointPosition {
    const next = { ...pos, records: pos.records + 1 };
    if (ev.offset !== undefined) {
      this.pending.bytes += Math.max(0, ev.offset - pos.offset);
      next.offset = ev.offset;
      next.line = (ev.kind === "document" ? ev.doc.source.line : ev.line) ?? pos.line;
    }
    return next;
  }

  private handle(ev: ReadEvent): void {
    if (ev.kind === "skipped") return this.skip({ file: ev.file, line: ev.line, reason: ev.reason });
    const duplicate = this.ids?.check(ev.doc);
    if (duplicate) return this.skip({ file: ev.doc.source.file, line: ev.doc.source.line, reason: duplicate });
    const chunks = chunksForQueue(ev.doc, this.enqueue);
    if (!Array.isArray(chunks)) return this.skip(chunks);
    this.ids?.remember(ev.doc);
    const jobs = jobsForDocument(ev.doc, chunks, this.enqueue);
    this.pending.documents++;
    this.pending.chunks += chunks.length;
    for (const c of chunks) this.pending.tokens += c.tokens;
    this.emit(this.packer ? this.packer.add(jobs) : jobs);
  }

  /** Jobs ready to add (or, in a dry run, to size). */
  private emit(jobs: BulkJob[]): void {
    this.pending.jobs += jobs.length;
    if (this.o.dryRun) for (const j of jobs) this.jobDataBytes += Buffer.byteLength(JSON.stringify(j.data));
    else this.buffer.push(...jobs);
  }

  private skip(rec: SkippedRecord): void {
    this.pending.skipped++;
    let key = reasonKey(rec.reason);
    const known = { ...this.cp.skippedByReason, ...this.pendingReasons };
    if (!(key in known) && Object.keys(known).length >= MAX_REASONS) key = "other";
    this.pendingReasons[key] = (this.pendingReasons[key] ?? 0) + 1;
    if (this.samples.length < MAX_SAMPLES) this.samples.push(rec);
  }

  /** Adds the buffered jobs (after waiting for room) and commits everything read so far; false if interrupted. */
  private async flush(): Promise<boolean> {
    // The open pack goes with this bulk: the checkpoint below covers every document read so far.
    if (this.packer) this.emit(this.packer.flush());
    if (this.buffer.length > 0 && this.gate && this.res.queue) {
      await this.gate.waitForRoom(this.o.signal);
      if (this.o.signal?.aborted) return false;
      this.gate.track(this.buffer.map((j) => ({ id: j.opts.jobId!, chunks: jobChunkCount(j.data) })));
      await this.res.queue.addBulk(this.buffer);
    }
    this.buffer = [];
    this.lastFlush = performance.now();
    add(this.cp.totals, this.pending);
    add(this.runCounts, this.pending);
    for (const [k, n] of Object.entries(this.pendingReasons))
      this.cp.skippedByReason[k] = (this.cp.skippedByReason[k] ?? 0) + n;
    this.pending = zeroCounts();
    this.pendingReasons = {};
    this.cp.position = this.pos;
    await this.save(false);
    return true;
  }

  private async save(force: boolean): Promise<void> {
    if (!this.res.store) return;
    const now = performance.now();
    if (!force && now - this.lastSave < (this.o.checkpointEveryMs ?? BACKFILL_DEFAULTS.checkpointEveryMs)) return;
    this.lastSave = now;
    this.cp.updatedAt = new Date().toISOString();
    await this.res.store.save(this.cp);
  }

  private snapshot(): ProgressSnapshot {
    const t = { ...this.cp.totals };
    add(t, this.pending);
    const backlog = this.gate?.last ?? { jobs: 0, chunks: 0 };
    const now = performance.now();
    this.enqueueMeter.add(t.chunks, now);
    this.bytesMeter.add(t.bytes, now);
    if (this.gate) this.drainMeter.add(this.gate.account.drainedChunks, now);
    const drain = this.gate ? this.drainMeter.perSecond() : null;
    const readRate = this.bytesMeter.perSecond();
    // A dry run has no workers: its ETA is the reading time left.
    const eta = this.gate
      ? estimateEta({
          chunks: t.chunks,
          bytesDone: t.bytes,
          bytesTotal: this.bytesTotal,
          backlogChunks: backlog.chunks,
          drainPerSecond: drain,
        })
      : this.bytesTotal !== null && readRate
        ? Math.round(Math.max(0, this.bytesTotal - t.bytes) / readRate)
        : null;
    return {
      phase: this.phase,
      elapsedSeconds: (performance.now() - this.started) / 1000,
      files: t.files,
      documents: t.documents,
      jobs: t.jobs,
      chunks: t.chunks,
      tokens: t.tokens,
      skipped: t.skipped,
      bytesDone: t.bytes,
      bytesTotal: this.bytesTotal,
      backlogJobs: backlog.jobs,
      backlogChunks: backlog.chunks,
      paused: this.gate?.paused ?? false,
      enqueueChunksPerSecond: this.enqueueMeter.perSecond() ?? 0,
      drainChunksPerSecond: drain,
      etaSeconds: eta,
    };
  }

  private summary(s: { alreadyComplete: boolean; interrupted: boolean }): BackfillSummary {
    const g = this.gate?.stats;
    const dry = Boolean(this.o.dryRun);
    return {
      runId: this.runId,
      checkpoint: this.res.store?.describe() ?? null,
      dryRun: dry,
      resumed: this.resumed,
      complete: this.cp.status === "done",
      alreadyComplete: s.alreadyComplete,
      interrupted: s.interrupted,
      run: this.runCounts,
      total: this.cp.totals,
      skippedByReason: this.cp.skippedByReason,
      skippedSamples: this.samples,
      priority: dry ? null : (this.enqueue.priority ?? null),
      backlog: g
        ? {
            ...this.marks,
            peakJobs: g.peakJobs,
            peakChunks: g.peakChunks,
            pauses: g.pauses,
            pausedSeconds: Math.round(g.pausedSeconds * 10) / 10,
          }
        : null,
      worker: g
        ? {
            completedJobs: g.completedJobs,
            failedJobs: g.failedJobs,
            duplicateJobs: g.duplicateJobs,
            unchangedChunks: g.unchangedChunks,
            drained: this.phase === "wait" && this.gate!.account.size === 0,
          }
        : null,
      estimate: dry
        ? estimateBackfill({
            jobs: this.runCounts.jobs,
            chunks: this.runCounts.chunks,
            tokens: this.runCounts.tokens,
            jobDataBytes: this.jobDataBytes,
            highWaterJobs: this.marks.highJobs,
            highWaterChunks: this.marks.highChunks,
            bulkSize: this.bulkSize,
            keptCompleted: this.cfg.REMOVE_ON_COMPLETE,
            tokensPerSecond: this.o.tokensPerSecond,
          })
        : null,
      elapsedSeconds: Math.round((performance.now() - this.started) / 100) / 10,
      maxRssBytes: peakRssBytes() ?? 0,
    };
  }
}
