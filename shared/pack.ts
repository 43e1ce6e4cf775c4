/** Packed jobs (issue 16, item 3): one BullMQ job carrying several whole small documents, so a
 *  one-chunk document costs Redis a fraction of a job (a job is ~30 Redis commands whatever its
 *  size). Trades isolation for Redis throughput, and wins the isolation back in the worker: each
 *  packed document keeps the fields a single-document job has (docId, docHash, enqueuedAt,
 *  metadata, chunks), is validated on its own, and one that fails for its own reason is split off
 *  as its own single-document job (`singleJobFromPackedDoc`, deterministic id) while its
 *  pack-mates complete. Only whole documents are packed (a single job's `part`/`parts` are 0/1).
 *  The pack's job id is derived from its documents' ids and content hashes, so a producer re-run
 *  that packs the same documents the same way adds nothing new. Pure: no I/O. */
import { z } from "zod";
import { jobId, sha256Hex } from "./ids.js";
import { chunkSchema, JOB_SCHEMA_VERSION, metadataSchema, unicodeString, type EmbedJobData } from "./job.js";

export const PACK_KIND = "pack";

/** One document inside a pack: a single-document job's per-document fields (whole documents only). */
export const packedDocSchema = z
  .object({
    docId: unicodeString().min(1).max(1024),
    docHash: unicodeString().min(1).max(128),
    enqueuedAt: z.number().int().min(0),
    metadata: metadataSchema.default({}),
    chunks: z.array(chunkSchema).min(1),
    /** As on a single job: the producer promised the collection never held this document (`--fresh`). */
    fresh: z.boolean().optional(),
  })
  .refine(
    (d) =>
      d.chunks.every(
        (c) => c.docChunks === d.chunks[0].docChunks && (c.docChunks === undefined || c.index < c.docChunks),
      ),
    {
      message: "docChunks must be the same on every chunk of a document and larger than every chunk index",
      path: ["chunks"],
    },
  );

/** The pack's envelope. Documents are parsed one by one (`packedDocSchema`), so a malformed
 *  document fails only itself; the envelope itself failing fails the whole pack. */
export const packJobSchema = z.object({
  v: z.literal(JOB_SCHEMA_VERSION),
  kind: z.literal(PACK_KIND),
  docs: z.array(z.unknown()).min(1),
});

export type PackedDoc = z.infer<typeof packedDocSchema>;
export interface PackJobData {
  v: typeof JOB_SCHEMA_VERSION;
  kind: typeof PACK_KIND;
  docs: PackedDoc[];
}

/** True when raw job data claims to be a pack (decides which schema parses it). */
export function isPackData(data: unknown): data is { kind: typeof PACK_KIND; docs: unknown } {
  return typeof data === "object" && data !== null && (data as { kind?: unknown }).kind === PACK_KIND;
}

/** The pack's job id: every document's id and content hash, in pack order. */
export function packJobId(docs: ReadonlyArray<Pick<PackedDoc, "docId" | "docHash">>): string {
  const h = sha256Hex(docs.flatMap((d) => [d.docId, d.docHash])).slice(0, 24);
  return `pack-${docs.length}-${h}`;
}

/** A document's fields for a pack, from its single-document job (which must be whole). */
export function packedDocFrom(single: EmbedJobData): PackedDoc {
  if (single.part !== 0 || single.parts !== 1) throw new Error(`only whole documents are packed ("${single.docId}")`);
  const { docId, docHash, enqueuedAt, metadata, chunks, fresh } = single;
  return { docId, docHash, enqueuedAt, metadata, chunks, ...(fresh ? { fresh } : {}) };
}

/** The single-document job a packed document is split off as: its own fields, part 0 of 1, and the
 *  id the producer gives that document unpacked (so a split-off added twice, or the same document
 *  enqueued unpacked, is one job). A document too malformed to name (no string docId/docHash) gets
 *  an id derived from the pack's id and its position, and fails on its own with the schema's reason. */
export function singleJobFromPackedDoc(
  raw: unknown,
  packId: string,
  index: number,
): { id: string; data: Record<string, unknown> } {
  const doc = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const data = { ...doc, v: JOB_SCHEMA_VERSION, part: 0, parts: 1 };
  const { docId, docHash } = doc;
  const named = typeof docId === "string" && docId.length > 0 && typeof docHash === "string" && docHash.length > 0;
  return { id: named ? jobId(docId, 0, docHash) : `${packId}-d${index}`, data };
}

/** Chunks a job carries, single or packed, read from raw data without parsing (0 when unreadable). */
export function jobChunkCount(data: unknown): number {
  if (typeof data !== "object" || data === null) return 0;
  const count = (d: unknown) => {
    const c = typeof d === "object" && d !== null ? (d as { chunks?: unknown }).chunks : undefined;
    return Array.isArray(c) ? c.length : 0;
  };
  const docs = (data as { docs?: unknown }).docs;
  return isPackData(data) && Array.isArray(docs) ? docs.reduce((n: number, d) => n + count(d), 0) : count(data);
}

/** Document ids a job carries, single or packed, read from raw data without parsing. */
export function jobDocIds(data: unknown): string[] {
  if (typeof data !== "object" || data === null) return [];
  const id = (d: unknown) =>
    typeof d === "object" && d !== null && typeof (d as { docId?: unknown }).docId === "string"
      ? [(d as { docId: string }).docId]
      : [];
  const docs = (data as { docs?: unknown }).docs;
  return isPackData(data) && Array.isArray(docs) ? docs.flatMap(id) : id(data);
}
