/** Packs small whole documents into one job each (issue 16, item 3; contract in shared/pack.ts).
 *  BullMQ costs ~30 Redis commands per job whatever its size, so a one-chunk document alone in a
 *  job spends most of Redis's time on bookkeeping; a pack of 64 spends it once. Trades the first
 *  document's latency (it waits until its pack closes) for Redis throughput. A pack closes when
 *  the next document would pass a bound (documents, chunks, bytes of its documents as JSON) and
 *  when the caller flushes (end of input; a backfill's bulk); packing is greedy in input order,
 *  so the same documents under the same bounds make the same packs and the same job ids. A
 *  document that spans several jobs, or is larger than a pack may be, is passed through as it is;
 *  so is a pack that closes with one document (it keeps its single-document job id). Pure. */
import type { Config } from "../shared/config.js";
import { packedDocFrom, packJobId, PACK_KIND, type PackedDoc, type PackJobData } from "../shared/pack.js";
import { JOB_SCHEMA_VERSION, type EmbedJobData } from "../shared/job.js";
import type { BulkJob } from "./enqueue.js";
import { ProducerError } from "./producer-errors.js";
import { shardFor } from "../shared/queue-shards.js";

export interface PackBounds {
  /** Most documents in one pack. */
  maxDocs: number;
  /** Most chunks in one pack (the worker refuses a job over MAX_CHUNKS_PER_JOB). */
  maxChunks: number;
  /** Most bytes of the pack's documents as JSON (texts, metadata, hashes). */
  maxBytes: number;
}

/** Default bytes per pack. The worker bounds a pack's metadata together by MAX_METADATA_BYTES, an
 *  estimate at most 4.5 times a value's JSON size (8 per number), so packs stay at or below an
 *  eighth of it: a pack the producer builds never fails the worker's bounds as a whole. */
export const DEFAULT_PACK_MAX_BYTES = 128 * 1024;

export class PackOptionsError extends ProducerError {
  readonly kind = "options";
}

/** Bounds from the configuration: as many chunks as one job may hold, 128 KiB (or less when the
 *  worker's bounds are smaller); `o` overrides, and is refused when over the worker's bounds. */
export function packBoundsFrom(
  cfg: Pick<Config, "MAX_CHUNKS_PER_JOB" | "MAX_METADATA_BYTES" | "MAX_JOB_BYTES">,
  o: Partial<PackBounds> = {},
): PackBounds {
  const maxBytesAllowed = Math.min(Math.floor(cfg.MAX_METADATA_BYTES / 8), cfg.MAX_JOB_BYTES);
  const b: PackBounds = {
    maxDocs: o.maxDocs ?? cfg.MAX_CHUNKS_PER_JOB,
    maxChunks: o.maxChunks ?? cfg.MAX_CHUNKS_PER_JOB,
    maxBytes: o.maxBytes ?? Math.min(DEFAULT_PACK_MAX_BYTES, maxBytesAllowed),
  };
  const problems: string[] = [];
  if (b.maxChunks > cfg.MAX_CHUNKS_PER_JOB)
    problems.push(`--pack-max-chunks=${b.maxChunks} is more than MAX_CHUNKS_PER_JOB=${cfg.MAX_CHUNKS_PER_JOB}`);
  if (b.maxDocs > cfg.MAX_CHUNKS_PER_JOB)
    problems.push(`--pack-max-docs=${b.maxDocs} is more than MAX_CHUNKS_PER_JOB=${cfg.MAX_CHUNKS_PER_JOB}`);
  if (b.maxBytes > maxBytesAllowed)
    problems.push(
      `--pack-max-bytes=${b.maxBytes} is more than ${maxBytesAllowed} ` +
        `(MAX_METADATA_BYTES=${cfg.MAX_METADATA_BYTES} / 8, MAX_JOB_BYTES=${cfg.MAX_JOB_BYTES})`,
    );
  if (b.maxDocs < 1 || b.maxChunks < 1 || b.maxBytes < 1) problems.push("pack bounds must be at least 1");
  if (problems.length > 0) throw new PackOptionsError(`packing: ${problems.join("; ")}`);
  return b;
}

interface OpenPack {
  docs: PackedDoc[];
  first: BulkJob<EmbedJobData>;
  chunks: number;
  bytes: number;
}

export class JobPacker {
  /** One open pack per queue shard: a pack holds documents of one shard only, so it is placed on
   *  the shard each of its documents belongs to (shared/queue-shards.ts). */
  private readonly open = new Map<number, OpenPack>();
  /** Packs closed so far, and documents in them. */
  packs = 0;
  packedDocuments = 0;

  constructor(
    private readonly bounds: PackBounds,
    private readonly shards = 1,
  ) {}

  /** Documents in the open packs. */
  get pending(): number {
    let n = 0;
    for (const o of this.open.values()) n += o.docs.length;
    return n;
  }

  /** Takes one document's jobs; returns the jobs now ready to add, in order. */
  add(jobs: Array<BulkJob<EmbedJobData>>): BulkJob[] {
    const doc = jobs.length === 1 ? this.packable(jobs[0].data) : undefined;
    if (!doc) return jobs;
    const out: BulkJob[] = [];
    const shard = shardFor(doc.doc.docId, this.shards);
    let o = this.open.get(shard);
    const b = this.bounds;
    if (
      o &&
      (o.docs.length + 1 > b.maxDocs || o.chunks + doc.chunks > b.maxChunks || o.bytes + doc.bytes > b.maxBytes)
    ) {
      out.push(...this.close(shard));
      o = undefined;
    }
    if (!o) this.open.set(shard, (o = { docs: [], first: jobs[0], chunks: 0, bytes: 0 }));
    o.docs.push(doc.doc);
    o.chunks += doc.chunks;
    o.bytes += doc.bytes;
    return out;
  }

  /** Closes every open pack, in shard order: returns them as jobs (a pack of one stays the
   *  single-document job). */
  flush(): BulkJob[] {
    const out: BulkJob[] = [];
    for (const shard of [...this.open.keys()].sort((a, b) => a - b)) out.push(...this.close(shard));
    return out;
  }

  private close(shard: number): BulkJob[] {
    const o = this.open.get(shard);
    this.open.delete(shard);
    if (!o) return [];
    if (o.docs.length === 1) return [o.first];
    this.packs++;
    this.packedDocuments += o.docs.length;
    const data: PackJobData = { v: JOB_SCHEMA_VERSION, kind: PACK_KIND, docs: o.docs };
    const opts = { ...o.first.opts, jobId: packJobId(o.docs) };
    return [{ name: o.first.name, data, opts }];
  }

  private packable(data: EmbedJobData): { doc: PackedDoc; chunks: number; bytes: number } | undefined {
    if (data.part !== 0 || data.parts !== 1 || data.chunks.length > this.bounds.maxChunks) return undefined;
    const doc = packedDocFrom(data);
    const bytes = Buffer.byteLength(JSON.stringify(doc));
    if (bytes > this.bounds.maxBytes) return undefined;
    return { doc, chunks: data.chunks.length, bytes };
  }
}
