/** Where a backfill stands, stored durably so a killed run restarts where it stopped. One
 *  position suffices because files are read in a fixed order (input-walk.ts): every file before
 *  `position.file` is done, and `position` says how far into that file the jobs are in Redis
 *  (JSONL: byte offset and line; whole-file formats: records, i.e. documents plus skipped
 *  ones, in the reader's order). The backfill saves a checkpoint only after the `addBulk` that
 *  holds those records resolved, so a restart re-reads at most what was sent after the last
 *  save: harmless, since job ids and point ids are deterministic. Totals are saved with the
 *  position, so they stay consistent with it across restarts. Stored as one JSON value: a Redis
 *  key (default; a finished run's key expires after 30 days) or a local file written
 *  atomically (temp file, fsync, rename). Two processes must not share a run id: nothing locks. */
import { createHash } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { RedisClient } from "../../shared/redis.js";
import { z } from "zod";
import { ProducerError } from "../producer-errors.js";

const count = z.number().int().min(0);

export const countsSchema = z.object({
  files: count,
  documents: count,
  jobs: count,
  chunks: count,
  tokens: count,
  skipped: count,
  bytes: count,
});
export type BackfillCounts = z.infer<typeof countsSchema>;

export const zeroCounts = (): BackfillCounts => ({
  files: 0,
  documents: 0,
  jobs: 0,
  chunks: 0,
  tokens: 0,
  skipped: 0,
  bytes: 0,
});

/** What changes the jobs a record becomes: a checkpoint only resumes a run with the same settings. */
export const settingsSchema = z.object({
  format: z.string(),
  idPrefix: z.string(),
  chunkTokens: count,
  overlapTokens: count,
  maxChunksPerJob: count,
});
export type BackfillSettings = z.infer<typeof settingsSchema>;

export const positionSchema = z.object({
  input: count,
  file: z.string(),
  /** Events (documents and skipped records) of `file` whose jobs are in Redis. */
  records: count,
  /** JSONL: byte offset just past the last such record, and its line number. */
  offset: count,
  line: count,
  /** Every record of the file is in; the walk resumes after it. */
  complete: z.boolean(),
});
export type CheckpointPosition = z.infer<typeof positionSchema>;

export const checkpointSchema = z.object({
  v: z.literal(1),
  runId: z.string().min(1),
  inputs: z.array(z.string()),
  settings: settingsSchema,
  status: z.enum(["running", "done"]),
  startedAt: z.string(),
  updatedAt: z.string(),
  /** Invocations of this run so far (1 = never restarted). */
  attempts: z.number().int().min(1),
  position: positionSchema.nullable(),
  totals: countsSchema,
  skippedByReason: z.record(z.string(), count),
});
export type Checkpoint = z.infer<typeof checkpointSchema>;

export class CheckpointError extends ProducerError {
  readonly kind = "checkpoint";
}

export interface CheckpointStore {
  /** Where it is, for messages: `redis key <k>` or `file <path>`. */
  describe(): string;
  load(): Promise<Checkpoint | null>;
  save(c: Checkpoint): Promise<void>;
  clear(): Promise<void>;
}

function parse(raw: string, where: string): Checkpoint {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new CheckpointError(
      `checkpoint in ${where} is not JSON: ${(err as Error).message}; fix it or start over with --restart`,
    );
  }
  const res = checkpointSchema.safeParse(json);
  if (!res.success) {
    throw new CheckpointError(
      `checkpoint in ${where} is not a backfill checkpoint (${res.error.issues[0]?.path.join(".")}: ${res.error.issues[0]?.message}); start over with --restart`,
    );
  }
  return res.data;
}

/** A finished run's Redis checkpoint is kept this long (so a repeated command says "already complete"), then expires. */
export const DONE_TTL_SECONDS = 30 * 24 * 3600;

export class RedisCheckpointStore implements CheckpointStore {
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
  ) {}

  describe(): string {
    return `redis key ${this.key}`;
  }

  async load(): Promise<Checkpoint | null> {
    const raw = await this.redis.get(this.key);
    return raw === null ? null : parse(raw, this.describe());
  }

  async save(c: Checkpoint): Promise<void> {
    if (c.status === "done") await this.redis.set(this.key, JSON.stringify(c), "EX", DONE_TTL_SECONDS);
    else await this.redis.set(this.key, JSON.stringify(c));
  }

  async clear(): Promise<void> {
    await this.redis.del(this.key);
  }
}

export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly file: string) {}

  describe(): string {
    return `file ${this.file}`;
  }

  async load(): Promise<Checkpoint | null> {
    let raw: string;
    try {
      raw = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new CheckpointError(`cannot read checkpoint ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    return parse(raw, this.describe());
  }

  async save(c: Checkpoint): Promise<void> {
    const tmp = `${this.file}.tmp`;
    await mkdir(path.dirname(path.resolve(this.file)), { recursive: true });
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(JSON.stringify(c, null, 1));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }

  async clear(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/** `bf-` + a hash of the resolved inputs and the queue: the same command from the same folder names the same run. */
export function defaultRunId(inputs: string[], queue: string): string {
  const h = createHash("sha256");
  for (const i of inputs) h.update(path.resolve(i)).update("\u0000");
  h.update(queue);
  return `bf-${h.digest("hex").slice(0, 16)}`;
}

/** The Redis key of a run's checkpoint; beside the queue's keys, outside BullMQ's own names. */
export function checkpointKey(prefix: string, queue: string, runId: string): string {
  return `${prefix}:backfill:${queue}:${runId}`;
}

/** Why `found` cannot resume a run with these inputs and settings, or null if it can. */
export function resumeConflict(found: Checkpoint, inputs: string[], settings: BackfillSettings): string | null {
  const resolved = inputs.map((i) => path.resolve(i));
  if (JSON.stringify(found.inputs) !== JSON.stringify(resolved)) {
    return `it was written for other inputs (${found.inputs.join(", ")})`;
  }
  for (const k of Object.keys(settings) as Array<keyof BackfillSettings>) {
    if (found.settings[k] !== settings[k])
      return `it was written with ${k}=${String(found.settings[k])}, this run has ${k}=${String(settings[k])}`;
  }
  return null;
}

export function newCheckpoint(
  runId: string,
  inputs: string[],
  settings: BackfillSettings,
  now = new Date(),
): Checkpoint {
  return {
    v: 1,
    runId,
    inputs: inputs.map((i) => path.resolve(i)),
    settings,
    status: "running",
    startedAt: now.toISOString(),
    updatedAt: now.toISOString(),
    attempts: 1,
    position: null,
    totals: zeroCounts(),
    skippedByReason: {},
  };
}
