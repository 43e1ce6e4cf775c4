/** The producer library: documents in, BullMQ jobs out. Each document is chunked with the
 *  model's tokenizer and becomes one job, or several when it has more than
 *  `maxChunksPerJob` chunks, so a job's size stays bounded. Job ids are deterministic (doc id,
 *  part, content hash): `addBulk` is not atomic, and re-running a producer after a crash
 *  re-adds only what is missing. Skipped records are counted by reason, never dropped
 *  silently. Every chunk carries the document's chunk count, so the worker removes points an
 *  older, longer version left behind; `enqueuedAt` is the version and never repeats within a
 *  process. With `pack` set, small whole documents are packed several to a job (packer.ts). */
import type { JobsOptions } from "bullmq";
import type { Config } from "../shared/config.js";
import { chunkHash, jobId, sha256Hex } from "../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../shared/job.js";
import type { JobQueue } from "../shared/queue-set.js";
import { chunkDocument, type ChunkProgress } from "./chunker.js";
import type { Chunk, ReadEvent, SourceDocument } from "./document.js";
import { DuplicateIdGuard } from "./duplicate-ids.js";
import { toJsonMetadata } from "./metadata.js";
import { ensureWellFormed } from "./unicode-guard.js";
import { ProducerError } from "./producer-errors.js";
import { JobPacker, type PackBounds } from "./packer.js";
import type { PackJobData } from "../shared/pack.js";

export interface EnqueueOptions {
  countTokens: (text: string) => number;
  chunkTokens: number;
  overlapTokens: number;
  maxChunksPerJob: number;
  attempts: number;
  backoffMs: number;
  removeOnComplete: number;
  removeOnFail: number;
  /** Jobs per addBulk call. */
  bulkSize?: number;
  /** BullMQ priority (1 = highest); unset = plain FIFO. */
  priority?: number;
  /** Chunk and count only; add nothing to the queue. */
  dryRun?: boolean;
  /** Stop at the first skipped record instead of counting it and going on. */
  strict?: boolean;
  /** Send each chunk's content hash so the worker skips chunks whose stored point has it. */
  skipUnchanged?: boolean;
  /** Pack small whole documents several to a job within these bounds (packer.ts); unset = one job per document. */
  pack?: PackBounds;
  /** The caller promises the collection holds none of these documents (e.g. it was created for this
   *  run): jobs say `fresh`, and workers skip the stale-point removal (one delete request saved per
   *  document group). If the promise is false, points an older, longer version wrote beyond the new
   *  length stay. */
  fresh?: boolean;
  /** Called while a document is chunked (after each chunk): progress through one long document. */
  onChunkProgress?: (doc: SourceDocument, p: ChunkProgress) => void;
  /** Enqueue a document whose id an earlier document of this call already had (default: refuse it, counted). */
  allowDuplicateIds?: boolean;
  onProgress?: (s: EnqueueSummary) => void;
}

/** The enqueue options the configuration implies; callers override per run (CLI flags). */
export function enqueueOptionsFrom(cfg: Config, countTokens: (text: string) => number): EnqueueOptions {
  return {
    countTokens,
    chunkTokens: cfg.CHUNK_TOKENS,
    overlapTokens: cfg.CHUNK_OVERLAP_TOKENS,
    maxChunksPerJob: cfg.MAX_CHUNKS_PER_JOB,
    attempts: cfg.JOB_ATTEMPTS,
    backoffMs: cfg.JOB_BACKOFF_MS,
    removeOnComplete: cfg.REMOVE_ON_COMPLETE,
    removeOnFail: cfg.REMOVE_ON_FAIL,
  };
}

export interface SkippedRecord {
  file: string;
  line?: number;
  reason: string;
}

export interface EnqueueSummary {
  documents: number;
  jobs: number;
  chunks: number;
  tokens: number;
  skipped: number;
  /** Packed jobs (several small documents each) among `jobs`, and the documents in them. */
  packs: number;
  packedDocuments: number;
  /** Documents enqueued with text repaired: invalid UTF-8 or lone surrogates replaced by U+FFFD (`invalid_utf8`). */
  repaired: number;
  skippedByReason: Record<string, number>;
  /** The first skipped records, with file and line, for the person fixing the input. */
  skippedSamples: SkippedRecord[];
}

export class StrictModeError extends ProducerError {
  readonly kind = "strict";
  constructor(readonly record: SkippedRecord) {
    super(`${record.file}${record.line ? `:${record.line}` : ""}: ${record.reason} (stopping: strict mode)`);
  }
}

/** The job schema's limit; checked here so such a document is reported, not enqueued to fail. */
const MAX_DOC_ID_CHARS = 1024;

type Input = AsyncIterable<ReadEvent | SourceDocument> | Iterable<ReadEvent | SourceDocument>;
export type BulkJob<D = EmbedJobData | PackJobData> = { name: string; data: D; opts: JobsOptions };

/** A short, countable reason: "line 7: invalid JSON: ..." -> "invalid JSON";
 *  'document "x": empty text' -> "empty text"; 'segments[3]: "end" …' -> '"end" …'. */
export function reasonKey(reason: string): string {
  return (
    reason
      .replace(/^(line|cue) \d+:\s*/i, "")
      .replace(/^[A-Za-z_]+\[\d+\]:\s*/, "")
      .replace(/^document "(?:[^"\\]|\\.)*":\s*/, "")
      .split(/[:(]/)[0]
      .trim()
      .slice(0, 60) || "unknown"
  );
}

/** A document's chunks, or why it cannot be enqueued. */
export function chunksForQueue(
  doc: SourceDocument,
  opts: Pick<EnqueueOptions, "chunkTokens" | "overlapTokens" | "countTokens" | "onChunkProgress">,
): Chunk[] | SkippedRecord {
  const at = { file: doc.source.file, line: doc.source.line };
  if (doc.id.length === 0 || doc.id.length > MAX_DOC_ID_CHARS) {
    return { ...at, reason: `document id is empty or longer than ${MAX_DOC_ID_CHARS} characters` };
  }
  try {
    doc.metadata = toJsonMetadata(doc.metadata ?? {}) as SourceDocument["metadata"];
  } catch (err) {
    return { ...at, reason: `document "${doc.id}": unsupported metadata: ${(err as Error).message}` };
  }
  const illFormed = ensureWellFormed(doc);
  if (illFormed) return { ...at, reason: illFormed };
  let chunks: Chunk[];
  try {
    const report = opts.onChunkProgress;
    chunks = chunkDocument(doc, {
      targetTokens: opts.chunkTokens,
      overlapTokens: opts.overlapTokens,
      countTokens: opts.countTokens,
      onProgress: report && ((p) => report(doc, p)),
    });
  } catch (err) {
    return { ...at, reason: `document "${doc.id}": chunking failed: ${(err as Error).message}` };
  }
  if (chunks.length === 0) return { ...at, reason: `document "${doc.id}": empty text` };
  return chunks;
}

let lastVersion = 0;

/** Epoch milliseconds, strictly increasing within this process: two versions of one document
 *  enqueued in the same millisecond still order. */
export function nextVersion(): number {
  lastVersion = Math.max(Date.now(), lastVersion + 1);
  return lastVersion;
}

export function jobsForDocument(
  doc: SourceDocument,
  chunks: Chunk[],
  opts: EnqueueOptions,
  now = nextVersion(),
): Array<BulkJob<EmbedJobData>> {
  const docHash = sha256Hex(chunks.map((c) => c.text));
  const parts = Math.ceil(chunks.length / opts.maxChunksPerJob);
  const metadata = { ...doc.metadata, source_file: doc.source.file, kind: doc.kind };
  const jobs: Array<BulkJob<EmbedJobData>> = [];
  for (let part = 0; part < parts; part++) {
    const slice = chunks.slice(part * opts.maxChunksPerJob, (part + 1) * opts.maxChunksPerJob);
    const data: EmbedJobData = {
      v: JOB_SCHEMA_VERSION,
      docId: doc.id,
      part,
      parts,
      docHash,
      enqueuedAt: now,
      metadata,
      ...(opts.fresh ? { fresh: true } : {}),
      chunks: slice.map((c) => ({
        index: c.index,
        text: c.text,
        metadata: c.metadata,
        docChunks: chunks.length,
        ...(opts.skipUnchanged ? { hash: chunkHash(c.text, { ...metadata, ...c.metadata }) } : {}),
      })),
    };
    const jobOpts: JobsOptions = {
      jobId: jobId(doc.id, part, docHash),
      attempts: opts.attempts,
      backoff: { type: "exponential", delay: opts.backoffMs },
      removeOnComplete: { count: opts.removeOnComplete },
      removeOnFail: { count: opts.removeOnFail },
    };
    if (opts.priority !== undefined) jobOpts.priority = opts.priority;
    jobs.push({ name: JOB_NAME, data, opts: jobOpts });
  }
  return jobs;
}

/** `queue`: one BullMQ queue or a `QueueSet`, which places each job on its document's shard. */
export async function enqueueDocuments(
  queue: JobQueue | undefined,
  input: Input,
  opts: EnqueueOptions,
): Promise<EnqueueSummary> {
  if (!queue && !opts.dryRun) throw new Error("enqueueDocuments needs a queue unless dryRun is set");
  const s: EnqueueSummary = {
    documents: 0,
    jobs: 0,
    chunks: 0,
    tokens: 0,
    skipped: 0,
    packs: 0,
    packedDocuments: 0,
    repaired: 0,
    skippedByReason: {},
    skippedSamples: [],
  };
  const packer = opts.pack ? new JobPacker(opts.pack, queue?.shardCount ?? 1) : undefined;
  const bulkSize = opts.bulkSize ?? 500;
  let buffer: BulkJob[] = [];
  const flush = async () => {
    if (buffer.length === 0) return;
    if (!opts.dryRun) await queue!.addBulk(buffer);
    s.jobs += buffer.length;
    if (packer) [s.packs, s.packedDocuments] = [packer.packs, packer.packedDocuments];
    buffer = [];
    opts.onProgress?.(s);
  };
  const skip = (rec: SkippedRecord) => {
    if (opts.strict) throw new StrictModeError(rec);
    s.skipped++;
    const key = reasonKey(rec.reason);
    s.skippedByReason[key] = (s.skippedByReason[key] ?? 0) + 1;
    if (s.skippedSamples.length < 100) s.skippedSamples.push(rec);
  };
  const ids = opts.allowDuplicateIds ? undefined : new DuplicateIdGuard();
  for await (const item of input as AsyncIterable<ReadEvent | SourceDocument>) {
    const ev: ReadEvent =
      "kind" in item && (item.kind === "document" || item.kind === "skipped")
        ? (item as ReadEvent)
        : { kind: "document", doc: item as SourceDocument };
    if (ev.kind === "skipped") {
      skip({ file: ev.file, line: ev.line, reason: ev.reason });
      continue;
    }
    const doc = ev.doc;
    const duplicate = ids?.check(doc);
    const refused = duplicate && { file: doc.source.file, line: doc.source.line, reason: duplicate };
    const chunks = refused || chunksForQueue(doc, opts);
    if (!Array.isArray(chunks)) {
      skip(chunks);
      continue;
    }
    ids?.remember(doc);
    s.documents++;
    if (doc.metadata.invalid_utf8 === true) s.repaired++;
    s.chunks += chunks.length;
    for (const c of chunks) s.tokens += c.tokens;
    const jobs = jobsForDocument(doc, chunks, opts);
    buffer.push(...(packer ? packer.add(jobs) : jobs));
    if (buffer.length >= bulkSize) await flush();
  }
  if (packer) buffer.push(...packer.flush());
  await flush();
  return s;
}
