/** Deterministic identifiers. Point ids are UUIDv5 of (document id, chunk index), so writing
 *  a document twice overwrites the same points; job ids are derived from the document id,
 *  part and content hash, so a re-run of the same producer adds nothing new to the queue
 *  (BullMQ ignores an add whose job id exists). */
import { createHash, hash } from "node:crypto";
import { v5 as uuidv5 } from "uuid";

/** Fixed namespace for this project's point ids: changing it re-keys every stored point. */
export const POINT_NAMESPACE = "5b8e3f7a-2c1d-5e9f-8a4b-6c7d8e9f0a1b";

const LONE_SURROGATE = /\p{Surrogate}/u;
const NAMESPACE_BYTES = Buffer.from(POINT_NAMESPACE.replaceAll("-", ""), "hex");

/** RFC 4122 UUIDv5 of the name `docId NUL chunkIndex` (what `uuid`'s `v5` returns, byte for
 *  byte: test/unit/ids.test.ts compares them), written with one-shot `crypto.hash` because the
 *  worker computes one per stored chunk on its main thread (issue 15). A name with a lone
 *  surrogate goes to `uuid`, which refuses it (URIError) as it always has. */
export function pointId(docId: string, chunkIndex: number): string {
  const name = `${docId}\u0000${chunkIndex}`;
  if (LONE_SURROGATE.test(name)) return uuidv5(name, POINT_NAMESPACE);
  const input = Buffer.allocUnsafe(16 + Buffer.byteLength(name));
  NAMESPACE_BYTES.copy(input, 0);
  input.write(name, 16);
  const h = hash("sha1", input, "buffer");
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString("hex", 0, 16);
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
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
  return chunkHashOfJson(text, stableJson(metadata));
}

/** `chunkHash` with the metadata's `stableJson` already written (a job's chunks share it): the
 *  same digest as `sha256Hex([text, metadataJson])`, hashed in one shot. */
export function chunkHashOfJson(text: string, metadataJson: string): string {
  return hash("sha256", `${text}\u0000${metadataJson}\u0000`, "hex");
}
