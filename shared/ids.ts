/** Deterministic identifiers. Point ids are UUIDv5 of (document id, chunk index), so writing
 *  a document twice overwrites the same points; job ids are derived from the document id,
 *  part and content hash, so a re-run of the same producer adds nothing new to the queue
 *  (BullMQ ignores an add whose job id exists). */
import { createHash } from "node:crypto";
import { v5 as uuidv5 } from "uuid";

/** Fixed namespace for this project's point ids: changing it re-keys every stored point. */
export const POINT_NAMESPACE = "5b8e3f7a-2c1d-5e9f-8a4b-6c7d8e9f0a1b";

export function pointId(docId: string, chunkIndex: number): string {
  return uuidv5(`${docId}\u0000${chunkIndex}`, POINT_NAMESPACE);
}

export function sha256Hex(parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(p);
    h.update("\u0000");
  }
  return h.digest("hex");
}

/** BullMQ forbids ':' and all-digit custom ids; keep a readable prefix plus a hash for uniqueness. */
export function jobId(docId: string, part: number, docHash: string): string {
  const readable = docId.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 48);
  const h = sha256Hex([docId, String(part), docHash]).slice(0, 20);
  return `doc-${readable}-p${part}-${h}`;
}

/** JSON with object keys sorted, so equal values hash equally whatever their key order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** What a point's vectors and payload are made from: the chunk text and its merged metadata
 *  (document metadata overlaid by the chunk's, as stored in the payload). Stored as `chunk_hash`. */
export function chunkHash(text: string, metadata: Record<string, unknown>): string {
  return sha256Hex([text, stableJson(metadata)]);
}
