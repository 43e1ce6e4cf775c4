/** The BullMQ job contract between producers and workers. A job carries one document's
 *  chunks (or a bounded slice of them), so a bad chunk fails one document, not a batch.
 *  The worker validates every job with this schema before any work is done; a job that
 *  fails validation fails at once (no retries) with the schema's message as its reason. Every
 *  string that reaches point ids, logs or the sink must be well-formed Unicode: a lone UTF-16
 *  surrogate makes `encodeURIComponent` (inside uuid v5) throw (issue 13). Size bounds are checked
 *  on the raw data before this schema runs (`job-bounds.ts`), so its recursion is shallow. */
import { z } from "zod";

export const JOB_SCHEMA_VERSION = 1;
export const JOB_NAME = "embed";

/** `String.prototype.isWellFormed` (Node 20; not in the ES2023 typings). */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** A string with no lone UTF-16 surrogate. */
export const unicodeString = () =>
  z.string().refine(isWellFormed, { message: "not well-formed Unicode (holds a lone UTF-16 surrogate)" });

const jsonValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    unicodeString(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(unicodeString(), jsonValue),
  ]),
);
export const metadataSchema = z.record(unicodeString(), jsonValue);

export const chunkSchema = z.object({
  index: z.number().int().min(0),
  text: unicodeString(),
  metadata: metadataSchema.default({}),
  /** Content hash (`chunkHash` in shared/ids.ts). When present, the worker skips the chunk if the
   *  stored point already has this `chunk_hash` and the same model. */
  hash: unicodeString().min(1).max(128).optional(),
  /** Chunks in this version of the document. Per chunk because it is per point (payload
   *  `doc_chunks`); when present, the worker removes this document's points at
   *  `chunk_index >= docChunks` left by older versions once the job's own points are stored. */
  docChunks: z.number().int().min(1).optional(),
});

export const embedJobSchema = z
  .object({
    v: z.literal(JOB_SCHEMA_VERSION),
    docId: unicodeString().min(1).max(1024),
    /** This job's position among the jobs of one document (documents over MAX_CHUNKS_PER_JOB span several). */
    part: z.number().int().min(0),
    parts: z.number().int().min(1),
    /** Hash of the whole document's chunk texts: names this version of the document. */
    docHash: unicodeString().min(1).max(128),
    /** Epoch milliseconds at enqueue, for end-to-end latency. Also this document version's number
     *  (payload `doc_version`): stale-point removal only deletes points of lower versions. */
    enqueuedAt: z.number().int().min(0),
    metadata: metadataSchema.default({}),
    chunks: z.array(chunkSchema).min(1),
    /** The producer promises the collection holds no earlier version of this document (a backfill
     *  or ingest with `--fresh`, e.g. into a new collection): the worker skips the stale-point
     *  removal. Absent (older producers) = removal as usual; a worker that predates the field
     *  ignores it and removes as usual. */
    fresh: z.boolean().optional(),
  })
  .refine((j) => j.part < j.parts, { message: "part must be smaller than parts", path: ["part"] })
  .refine(
    (j) =>
      j.chunks.every(
        (c) => c.docChunks === j.chunks[0].docChunks && (c.docChunks === undefined || c.index < c.docChunks),
      ),
    {
      message: "docChunks must be the same on every chunk of a job and larger than every chunk index",
      path: ["chunks"],
    },
  );

export type EmbedJobData = z.infer<typeof embedJobSchema>;
export type JobChunk = z.infer<typeof chunkSchema>;

/** What a completed job returns to BullMQ (stored in Redis): counts only, never vectors. */
export interface EmbedJobResult {
  chunks: number;
  tokens: number;
  truncated: number;
  points: number;
  /** Chunks not re-embedded because the stored point had the same content hash and model. */
  unchanged?: number;
  /** Packed jobs (shared/pack.ts): documents in the pack, and those split off as their own jobs. */
  documents?: number;
  split?: SplitOffDoc[];
}

/** A packed document that failed for its own reason and was re-enqueued as its own job. */
export interface SplitOffDoc {
  /** The document's id, or null when the packed document had none. */
  docId: string | null;
  /** Its position in the pack. */
  index: number;
  /** The single-document job it now is. */
  jobId: string;
  /** Why it left the pack: the failure reason, prefixed with its kind (`validation: …`). */
  reason: string;
}

/** Readable zod issues, e.g. `chunks.3.text: expected string`. A path segment that is not
 *  well-formed Unicode is printed JSON-escaped, so the reason itself stays well-formed. */
export function formatIssues(err: z.ZodError, limit = 5): string {
  const parts = err.issues.slice(0, limit).map((i) => {
    const printable = (p: PropertyKey) => (typeof p === "string" && !isWellFormed(p) ? JSON.stringify(p) : String(p));
    const path = i.path.map(printable).join(".");
    const inner = i.code === "invalid_key" ? `: ${i.issues.map((k) => k.message).join(", ")}` : "";
    return `${path || "(root)"}: ${i.message}${inner}`;
  });
  if (err.issues.length > limit) parts.push(`... and ${err.issues.length - limit} more`);
  return parts.join("; ");
}
