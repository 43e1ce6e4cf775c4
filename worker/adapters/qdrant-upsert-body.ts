/** The body of a Qdrant upsert (`{"points":[{"id","vector","payload"},...]}`) assembled as bytes
 *  from each point's pre-built vector JSON (issue 15): the main thread serialises only ids and
 *  payloads and splices the vector bytes in, copying only small ones. A point that arrives without
 *  vector JSON (it rode in a query-lane batch) is written here from its typed arrays with the same
 *  encoder. Pure: performs no I/O. */
import type { VectorPoint } from "../core/ports.js";
import { toQdrantVectors } from "./qdrant-schema.js";
import { encodeVectorJson } from "./qdrant-vector-json.js";

const OPEN = Buffer.from(`{"points":[`);
const CLOSE = Buffer.from(`]}`);

/** The point's vector JSON: its own, else written now. A vector the encoder refuses (a
 *  non-finite value) goes as `JSON.stringify` writes it (`null`), so Qdrant refuses that point
 *  with its own reason, as the `client` path does, and the grouper fails only its job. */
export function vectorBytes(p: VectorPoint): Uint8Array {
  if (p.vectorJson) return p.vectorJson;
  try {
    return encodeVectorJson(p);
  } catch {
    return Buffer.from(JSON.stringify(toQdrantVectors(p)));
  }
}

/** The body in order, as parts: small ones (ids, payloads, dense+sparse vectors) coalesced into
 *  buffers of about COALESCE_BYTES, parts that large (ColBERT vectors, ~1.5 MB per 128-token
 *  chunk) passed through uncopied, since a copy of megabytes costs the main thread more than the
 *  socket write it saves. */
export interface UpsertBody {
  parts: Uint8Array[];
  length: number;
}

const COALESCE_BYTES = 256 * 1024;

/** `JSON.stringify({ points: points.map(toQdrantPoint) })` up to float formatting, as bytes. */
export function upsertBody(points: VectorPoint[]): UpsertBody {
  const parts: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  let length = 0;
  const flush = () => {
    if (run.length === 1) parts.push(run[0]);
    else if (run.length > 1) parts.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  const add = (b: Uint8Array) => {
    length += b.length;
    if (b.length >= COALESCE_BYTES) {
      flush();
      parts.push(b);
      return;
    }
    run.push(b);
    runBytes += b.length;
    if (runBytes >= COALESCE_BYTES) flush();
  };
  add(OPEN);
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    add(Buffer.from(`${i > 0 ? "," : ""}{"id":${JSON.stringify(p.id)},"vector":`));
    add(vectorBytes(p));
    add(Buffer.from(`,"payload":${JSON.stringify(p.payload)}}`));
  }
  add(CLOSE);
  flush();
  return { parts, length };
}

/** The whole body in one Buffer (tests, the JSONL-shaped checks). */
export function upsertBodyBuffer(points: VectorPoint[]): Buffer {
  const { parts, length } = upsertBody(points);
  return Buffer.concat(parts, length);
}
