/** The vector JSON the model thread writes and the upsert body the sink splices from it: once
 *  parsed, equal to what `JSON.stringify` makes of `toQdrantVectors` / `toQdrantPoint` with every
 *  float equal as float32, the same named vectors and keys in the same order, and empty sparse
 *  or ColBERT vectors left out alike; a point without pre-built JSON (query-lane batch) and a
 *  non-finite value handled as the `client` path handles them; the grouper sizes by real bytes. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { ChunkEmbedding } from "../../worker/core/heads.js";
import { estimatePointBytes, type VectorPoint } from "../../worker/core/ports.js";
import { toQdrantVectors } from "../../worker/adapters/qdrant-schema.js";
import { toQdrantPoint } from "../../worker/adapters/qdrant-sink.js";
import { upsertBody, upsertBodyBuffer } from "../../worker/adapters/qdrant-upsert-body.js";
import { encodeVectorJson } from "../../worker/adapters/qdrant-vector-json.js";

const decoder = new TextDecoder();

/** Every number as float32, so both sides compare exactly (-0 as 0: JSON.stringify drops the
 *  sign, the encoder keeps it; Qdrant treats both alike); key order is kept. */
function asFloat32(v: unknown): unknown {
  if (typeof v === "number") return Math.fround(v) + 0;
  if (Array.isArray(v)) return v.map(asFloat32);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asFloat32(x)]));
  return v;
}

const float32 = fc.float({ noNaN: true, noDefaultInfinity: true });
const floats = (min: number, max: number) => fc.array(float32, { minLength: min, maxLength: max });

const embedding: fc.Arbitrary<ChunkEmbedding> = fc
  .record({
    dense: fc.option(floats(1, 40), { nil: undefined }),
    sparse: fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { maxLength: 12 }), { nil: undefined }),
    colbert: fc.option(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 5 })), { nil: undefined }),
    seed: float32,
  })
  .map(({ dense, sparse, colbert, seed }) => {
    const e: ChunkEmbedding = {};
    if (dense) e.dense = Float32Array.from(dense);
    if (sparse) {
      const indices = Uint32Array.from(sparse.sort((a, b) => a - b));
      e.sparse = { indices, values: Float32Array.from(indices, (i) => Math.fround((i % 97) / 7 + seed)) };
    }
    if (colbert) {
      const [dim, rows] = colbert;
      e.colbert = Float32Array.from({ length: dim * rows }, (_, i) => Math.fround(Math.sin(i + seed) / 3));
      e.colbertDim = dim;
    }
    return e;
  });

test("encoded vector JSON parses to toQdrantVectors, floats equal as float32", () => {
  fc.assert(
    fc.property(embedding, (e) => {
      const got = JSON.parse(decoder.decode(encodeVectorJson(e)));
      const want = JSON.parse(JSON.stringify(toQdrantVectors(e)));
      assert.deepStrictEqual(asFloat32(got), asFloat32(want));
      assert.deepEqual(Object.keys(got), Object.keys(want));
    }),
    { numRuns: 2_000 },
  );
});

test("a BGE-M3-sized chunk: 1024-d dense, sparse and 127 ColBERT rows, about half the bytes of JSON.stringify", () => {
  const dense = Float32Array.from({ length: 1024 }, (_, i) => Math.fround(Math.cos(i) / 32));
  const indices = Uint32Array.from({ length: 60 }, (_, i) => 5 + i * 4099);
  const sparse = { indices, values: Float32Array.from(indices, (i) => Math.fround((i % 1000) / 1000)) };
  const colbert = Float32Array.from({ length: 127 * 1024 }, (_, i) => Math.fround(Math.sin(i) / 32));
  const e: ChunkEmbedding = { dense, sparse, colbert, colbertDim: 1024 };
  const bytes = encodeVectorJson(e);
  const parsed = JSON.parse(decoder.decode(bytes));
  assert.deepStrictEqual(asFloat32(parsed), asFloat32(JSON.parse(JSON.stringify(toQdrantVectors(e)))));
  assert.equal(parsed.colbert.length, 127);
  assert.equal(
    bytes.buffer.byteLength,
    bytes.byteLength,
    "the buffer holds exactly the JSON (nothing extra to transfer)",
  );
  assert.ok(bytes.byteLength < JSON.stringify(toQdrantVectors(e)).length * 0.75);
});

test("non-finite values are refused with a clear error", () => {
  assert.throws(() => encodeVectorJson({ dense: Float32Array.from([0.5, NaN]) }), /NaN.*non-finite/);
  assert.throws(
    () => encodeVectorJson({ colbert: Float32Array.from([Infinity, 0]), colbertDim: 2 }),
    /Infinity.*non-finite/,
  );
});

const point = (id: string, e: ChunkEmbedding, withJson: boolean): VectorPoint => ({
  id,
  ...e,
  vectorJson: withJson ? encodeVectorJson(e) : undefined,
  payload: { doc_id: `doc "${id}"`, chunk_index: 3, text: "héllo ✓ \u2028 </script>", metadata: { speakers: ["a"] } },
});

test("upsert body parses to { points: points.map(toQdrantPoint) }, with or without pre-built vector JSON", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(embedding, fc.boolean()), { minLength: 1, maxLength: 6 }), (list) => {
      const points = list.map(([e, withJson], i) => point(`00000000-0000-5000-8000-00000000000${i}`, e, withJson));
      const got = JSON.parse(upsertBodyBuffer(points).toString("utf8"));
      const want = JSON.parse(JSON.stringify({ points: points.map(toQdrantPoint) }));
      assert.deepStrictEqual(asFloat32(got), asFloat32(want));
    }),
    { numRuns: 500 },
  );
});

test("a point with a non-finite value goes as JSON.stringify sends it (null), for Qdrant to refuse", () => {
  const bad: VectorPoint = { id: "p", dense: Float32Array.from([0.25, NaN]), payload: {} };
  const body = JSON.parse(upsertBodyBuffer([bad]).toString("utf8"));
  assert.deepEqual(body.points[0].vector, { dense: [0.25, null] });
});

test("upsert requests are sized by the real vector JSON length when a point has it", () => {
  const e: ChunkEmbedding = { dense: Float32Array.from({ length: 1024 }, (_, i) => Math.fround(1 / (i + 3))) };
  const p = point("x", e, true);
  const body = upsertBody([p]).length;
  assert.equal(upsertBodyBuffer([p]).length, body);
  const estimate = estimatePointBytes(p);
  assert.ok(estimate >= body && estimate < body + 200, `estimate ${estimate} for a body of ${body} bytes`);
});

test("large vector JSON (ColBERT) goes into the body uncopied; small parts are coalesced", () => {
  const colbert = Float32Array.from({ length: 127 * 1024 }, (_, i) => Math.fround(Math.sin(i) / 32));
  const ps = [0, 1, 2].map((i) =>
    point(`p${i}`, { dense: Float32Array.from([0.5, 0.5]), colbert, colbertDim: 1024 }, true),
  );
  const body = upsertBody(ps);
  for (const p of ps) assert.ok(body.parts.includes(p.vectorJson!), "the point's own bytes are a part of the body");
  assert.equal(body.parts.length, 7, "head, vector and tail around each point: 3 vectors and 4 runs between them");
  const small = upsertBody([0, 1, 2].map((i) => point(`s${i}`, { dense: Float32Array.from([0.5, 0.5]) }, true)));
  assert.equal(small.parts.length, 1);
});
