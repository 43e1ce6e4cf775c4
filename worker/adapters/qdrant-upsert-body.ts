/** The body of a Qdrant upsert (`{"points":[{"id","vector","payload"},...]}`) assembled as bytes
 *  from each point's pre-built vector JSON (issue 15): the main thread serialises only ids and
 *  payloads and copies the vector bytes once, into one Buffer. A point that arrives without
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

/** `JSON.stringify({ points: points.map(toQdrantPoint) })` up to float formatting, as one Buffer. */
export function upsertBody(points: VectorPoint[]): Buffer {
  const parts: Uint8Array[] = [OPEN];
  let length = OPEN.length + CLOSE.length;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    const head = Buffer.from(`${i > 0 ? "," : ""}{"id":${JSON.stringify(p.id)},"vector":`);
    const vector = vectorBytes(p);
    const tail = Buffer.from(`,"payload":${JSON.stringify(p.payload)}}`);
    parts.push(head, vector, tail);
    length += head.length + vector.length + tail.length;
  }
  parts.push(CLOSE);
  return Buffer.concat(parts, length);
}
