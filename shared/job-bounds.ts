/** Cheap size bounds on a job's raw data, checked before the job schema parses it (issue 13):
 *  chunk count, total chunk text bytes, and metadata depth and size. The schema walks every
 *  value recursively and allocates a copy of the job; a job of a million chunks or metadata
 *  nested ten thousand levels deep must fail in milliseconds, with a reason naming the setting,
 *  instead of blocking the event loop for seconds or overflowing the stack. The walk is
 *  iterative, stops at the first bound passed, and visits at most about MAX_METADATA_BYTES
 *  metadata values plus MAX_CHUNKS_PER_JOB chunks, so its time is bounded whatever the job holds.
 *  Anything it does not understand (wrong types, missing fields) is left to the schema.
 *  A packed job (shared/pack.ts) is bounded as a whole (its documents' chunks, text bytes and
 *  metadata together, failing the whole pack: the producer never builds such a pack), while what
 *  is wrong inside one document (metadata too deep, a `__proto__` key) fails only that document. */
import type { Config } from "./config.js";
import { JobLimitError, ValidationError } from "./errors.js";

export type JobLimits = Pick<
  Config,
  "MAX_CHUNKS_PER_JOB" | "MAX_JOB_BYTES" | "MAX_METADATA_DEPTH" | "MAX_METADATA_BYTES"
>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Throws JobLimitError (or ValidationError for a `__proto__` metadata key,
 *  which the schema would silently drop and a spread would copy) when `data` passes a bound. */
export function checkJobBounds(data: unknown, limits: JobLimits): void {
  if (!isRecord(data)) return;
  const chunks = Array.isArray(data.chunks) ? data.chunks : [];
  checkChunkBounds([chunks], limits, "job");
  const budget = { bytes: 0 };
  checkDocMetadata(data, "", limits, budget);
}

/** Bounds of a packed job's raw data. Throws JobLimitError when the pack as a whole passes a bound
 *  (documents, chunks, text bytes, metadata bytes); returns the documents (by position) that
 *  fail on their own (metadata too deep, a `__proto__` key), which the caller fails alone. */
export function checkPackBounds(data: unknown, limits: JobLimits): Map<number, ValidationError> {
  const bad = new Map<number, ValidationError>();
  if (!isRecord(data) || !Array.isArray(data.docs)) return bad;
  const docs = data.docs;
  if (docs.length > limits.MAX_CHUNKS_PER_JOB) {
    throw new JobLimitError(
      `pack has ${docs.length} documents, more than MAX_CHUNKS_PER_JOB=${limits.MAX_CHUNKS_PER_JOB}; ` +
        "pack fewer documents per job (producer --pack-max-docs)",
      "MAX_CHUNKS_PER_JOB",
      docs.length,
      limits.MAX_CHUNKS_PER_JOB,
    );
  }
  const chunkLists = docs.map((d) => (isRecord(d) && Array.isArray(d.chunks) ? d.chunks : []));
  checkChunkBounds(chunkLists, limits, "pack");
  const budget = { bytes: 0 };
  for (let i = 0; i < docs.length; i++) {
    const d = docs[i];
    if (!isRecord(d)) continue;
    try {
      checkDocMetadata(d, `docs.${i}.`, limits, budget);
    } catch (err) {
      // The shared byte budget belongs to the pack; depth and keys belong to the document.
      if (err instanceof JobLimitError && err.setting === "MAX_METADATA_BYTES") throw err;
      bad.set(i, err as ValidationError);
    }
  }
  return bad;
}

/** Chunk count and text bytes over one job's chunk lists (one list, or one per packed document). */
function checkChunkBounds(lists: unknown[][], limits: JobLimits, what: "job" | "pack"): void {
  const count = lists.reduce((n, l) => n + l.length, 0);
  if (count > limits.MAX_CHUNKS_PER_JOB) {
    throw new JobLimitError(
      `${what} has ${count} chunks, more than MAX_CHUNKS_PER_JOB=${limits.MAX_CHUNKS_PER_JOB}; ` +
        (what === "job"
          ? "enqueue long documents as several jobs (the producer does)"
          : "pack fewer chunks per job (producer --pack-max-chunks)"),
      "MAX_CHUNKS_PER_JOB",
      count,
      limits.MAX_CHUNKS_PER_JOB,
    );
  }
  let textBytes = 0;
  for (let d = 0; d < lists.length; d++) {
    const chunks = lists[d];
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      const text = isRecord(c) ? c.text : undefined;
      if (typeof text !== "string") continue;
      textBytes += Buffer.byteLength(text, "utf8");
      if (textBytes > limits.MAX_JOB_BYTES) {
        const at = what === "job" ? `chunk ${i}` : `document ${d}, chunk ${i}`;
        throw new JobLimitError(
          `${what}'s chunk texts reach ${textBytes} bytes (UTF-8) at ${at}, ` +
            `more than MAX_JOB_BYTES=${limits.MAX_JOB_BYTES}`,
          "MAX_JOB_BYTES",
          textBytes,
          limits.MAX_JOB_BYTES,
        );
      }
    }
  }
}

/** One document's metadata and its chunks' metadata, charged to `budget`. */
function checkDocMetadata(
  doc: Record<string, unknown>,
  prefix: string,
  limits: JobLimits,
  budget: { bytes: number },
): void {
  const chunks = Array.isArray(doc.chunks) ? doc.chunks : [];
  if (doc.metadata !== undefined) checkMetadata(doc.metadata, `${prefix}metadata`, limits, budget);
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i];
    if (isRecord(c) && c.metadata !== undefined)
      checkMetadata(c.metadata, `${prefix}chunks.${i}.metadata`, limits, budget);
  }
}

/** A path short enough for a failed job's reason. */
const clip = (path: string) => (path.length > 120 ? `${path.slice(0, 117)}...` : path);

/** Rough JSON size of a scalar, bytes: enough to bound work, not an exact serialisation. */
function scalarBytes(v: unknown): number {
  if (typeof v === "string") return v.length + 2;
  if (typeof v === "number") return 8;
  return 4;
}

/** Walks one metadata value depth-first with an explicit stack. `budget` is shared by every
 *  metadata object of the job, so MAX_METADATA_BYTES bounds the job's metadata as a whole; it is
 *  charged before a value's children are pushed, so a wide object stops at the bound too. */
function checkMetadata(root: unknown, label: string, limits: JobLimits, budget: { bytes: number }): void {
  const charge = (bytes: number, path: string) => {
    budget.bytes += bytes;
    if (budget.bytes <= limits.MAX_METADATA_BYTES) return;
    throw new JobLimitError(
      `the job's metadata passes ${budget.bytes} bytes (as JSON, estimated) at ${clip(path)}, ` +
        `more than MAX_METADATA_BYTES=${limits.MAX_METADATA_BYTES}`,
      "MAX_METADATA_BYTES",
      budget.bytes,
      limits.MAX_METADATA_BYTES,
    );
  };
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: root, depth: 1, path: label }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v !== "object" || v === null) {
      charge(scalarBytes(v), path);
      continue;
    }
    if (depth > limits.MAX_METADATA_DEPTH) {
      throw new JobLimitError(
        `${label} is nested more than MAX_METADATA_DEPTH=${limits.MAX_METADATA_DEPTH} levels deep (at ${clip(path)})`,
        "MAX_METADATA_DEPTH",
        depth,
        limits.MAX_METADATA_DEPTH,
      );
    }
    charge(2, path);
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        charge(1, path);
        stack.push({ v: v[i], depth: depth + 1, path: `${path}.${i}` });
      }
      continue;
    }
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      if (k === "__proto__")
        throw new ValidationError(`${clip(path)} has the key "__proto__", which metadata may not use`);
      charge(k.length + 3, path);
      stack.push({
        v: (v as Record<string, unknown>)[k],
        depth: depth + 1,
        path: `${path}.${/^[\w$-]+$/.test(k) ? k : JSON.stringify(k)}`,
      });
    }
  }
}
