/** One chunk's `"vector"` object of a Qdrant upsert, written straight to UTF-8 bytes: the named
 *  vectors exactly as `toQdrantVectors` (qdrant-schema.ts) names and shapes them, with every
 *  float in its shortest float32 form (float32-format.ts). The model thread calls it right
 *  after the output heads and transfers the bytes, so the main thread only splices them into a
 *  request body (issue 15: `JSON.stringify` of `number[]` and re-encoding that string took most
 *  of the main thread). Trades memory for main-thread time: the bytes travel beside the
 *  Float32Arrays, which the JSONL sink and the `client` upsert path still read. Pure. */
import { writeFloat32, writeUint } from "../core/float32-format.js";
import type { ChunkEmbedding } from "../core/heads.js";
import { VECTOR_NAMES } from "./qdrant-schema.js";

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const OPEN_DENSE = ascii(`"${VECTOR_NAMES.dense}":`);
const OPEN_SPARSE = ascii(`"${VECTOR_NAMES.sparse}":{"indices":[`);
const SPARSE_VALUES = ascii(`],"values":`);
const OPEN_COLBERT = ascii(`"${VECTOR_NAMES.colbert}":[`);
const COMMA = 44;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
/** Longest float32 written ("-1.2345678e-38" is 14) plus its comma. */
const FLOAT_BYTES = 16;
/** A uint32 index plus its comma. */
const INDEX_BYTES = 11;

function put(buf: Uint8Array, pos: number, bytes: Uint8Array): number {
  buf.set(bytes, pos);
  return pos + bytes.length;
}

function putFloats(buf: Uint8Array, pos: number, v: Float32Array, from: number, to: number): number {
  buf[pos++] = OPEN_BRACKET;
  for (let i = from; i < to; i++) {
    if (i > from) buf[pos++] = COMMA;
    pos = writeFloat32(buf, pos, v[i]);
  }
  buf[pos++] = CLOSE_BRACKET;
  return pos;
}

/** Upper bound of `encodeVectorJson(e)`'s length, bytes. */
function boundBytes(e: ChunkEmbedding): number {
  const sparse = e.sparse ? e.sparse.indices.length * (INDEX_BYTES + FLOAT_BYTES) : 0;
  const colbertRows = e.colbert && e.colbertDim ? e.colbert.length / e.colbertDim : 0;
  return 128 + (e.dense?.length ?? 0) * FLOAT_BYTES + sparse + (e.colbert?.length ?? 0) * FLOAT_BYTES + colbertRows * 3;
}

/** `JSON.stringify(toQdrantVectors(e))` up to float formatting, as UTF-8 in a buffer of its own
 *  (transferable). Throws a RangeError on a non-finite value. */
export function encodeVectorJson(e: ChunkEmbedding): Uint8Array {
  const buf = new Uint8Array(boundBytes(e));
  let pos = 0;
  let first = true;
  buf[pos++] = OPEN_BRACE;
  if (e.dense) {
    pos = put(buf, pos, OPEN_DENSE);
    pos = putFloats(buf, pos, e.dense, 0, e.dense.length);
    first = false;
  }
  const sparse = e.sparse;
  if (sparse && sparse.indices.length > 0) {
    if (!first) buf[pos++] = COMMA;
    pos = put(buf, pos, OPEN_SPARSE);
    for (let i = 0; i < sparse.indices.length; i++) {
      if (i > 0) buf[pos++] = COMMA;
      pos = writeUint(buf, pos, sparse.indices[i]);
    }
    pos = put(buf, pos, SPARSE_VALUES);
    pos = putFloats(buf, pos, sparse.values, 0, sparse.values.length);
    buf[pos++] = CLOSE_BRACE;
    first = false;
  }
  const dim = e.colbertDim ?? 0;
  if (e.colbert && dim > 0 && e.colbert.length > 0) {
    if (!first) buf[pos++] = COMMA;
    pos = put(buf, pos, OPEN_COLBERT);
    for (let o = 0; o < e.colbert.length; o += dim) {
      if (o > 0) buf[pos++] = COMMA;
      pos = putFloats(buf, pos, e.colbert, o, o + dim);
    }
    buf[pos++] = CLOSE_BRACKET;
  }
  buf[pos++] = CLOSE_BRACE;
  // A copy of exactly the written bytes, so the transfer moves no slack (a memcpy, cheap beside the formatting).
  return buf.slice(0, pos);
}
