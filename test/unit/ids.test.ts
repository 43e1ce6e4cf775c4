/** Point ids and chunk hashes are what stored points are keyed and compared by: the one-shot
 *  versions the worker uses (issue 15) must stay byte-identical to `uuid`'s v5 and to the
 *  streamed sha256 over stable JSON, or a re-ingest would write new points beside the old ones
 *  and skip-unchanged would re-embed everything. Also the per-job metadata cache in `toPoint`. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { v5 as uuidv5 } from "uuid";
import { chunkHash, POINT_NAMESPACE, pointId, sha256Hex, stableJson } from "../../shared/ids.js";
import { toPoint } from "../../worker/core/point-payload.js";

test("pointId is uuid v5 of (doc id NUL chunk index) in the project namespace", () => {
  assert.equal(pointId("doc-1", 0), "afb10a59-26b2-5f09-9128-9a0b23e9bbd5");
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 300 }), fc.nat(), (docId, i) => {
      assert.equal(pointId(docId, i), uuidv5(`${docId}\u0000${i}`, POINT_NAMESPACE));
    }),
    { numRuns: 500 },
  );
  assert.equal(pointId("d\ud83d\ude00", 1), uuidv5("d\ud83d\ude00\u00001", POINT_NAMESPACE));
  // A lone surrogate: refused as before (uuid's URIError), not hashed as U+FFFD.
  assert.throws(() => pointId("a\ud800b", 3), URIError);
});

test("chunkHash is sha256 over the text and the metadata's stable JSON, each followed by NUL", () => {
  const meta = fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)));
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 500 }), meta, (text, m) => {
      assert.equal(chunkHash(text, m), sha256Hex([text, stableJson(m)]));
    }),
    { numRuns: 500 },
  );
  assert.equal(chunkHash("x\ud83d", {}), sha256Hex(["x\ud83d", "{}"]));
});

test("toPoint: the job's metadata JSON is reused across chunks, a chunk's own metadata still counts", () => {
  const job = { docId: "d", docHash: "h", enqueuedAt: 1, metadata: { b: 2, a: "x" } };
  const emb = { dense: new Float32Array(2) };
  const cfg = { MODEL_NAME: "m", STORE_TEXT: false };
  const at = (c: { index: number; text: string; metadata?: Record<string, unknown> }) =>
    toPoint(job, { metadata: {}, ...c }, { length: 3, truncated: false }, emb as never, cfg).payload.chunk_hash;
  for (let i = 0; i < 3; i++) assert.equal(at({ index: i, text: `t${i}` }), chunkHash(`t${i}`, job.metadata));
  assert.equal(at({ index: 4, text: "t", metadata: {} }), chunkHash("t", job.metadata));
  const own = { index: 5, text: "t", metadata: { a: "y", c: [1] } };
  assert.equal(at(own), chunkHash("t", { ...job.metadata, ...own.metadata }));
  assert.notEqual(at(own), at({ index: 5, text: "t" }));
});
