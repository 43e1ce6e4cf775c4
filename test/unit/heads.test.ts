/** Output heads on hand-made tensors: sparse keeps the max weight per token id and drops
 *  special ids and non-positive weights; ColBERT drops CLS and padding rows and normalises;
 *  dense is unit-norm. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { clsRow, colbertRow, denseRow, sparseRow, sparseWeightsFromTensor } from "../../worker/core/heads.js";

const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

test("sparse: max weight per id, specials and zero weights dropped, sorted by id", () => {
  const ids = [0, 17, 42, 17, 3, 99, 2];
  const w = [0.9, 0.2, 0.5, 0.7, 0.8, 0, 0.6];
  const s = sparseRow(ids, w, new Set([0, 1, 2, 3]));
  assert.deepEqual([...s.indices], [17, 42]);
  assert.deepEqual(
    [...s.values].map((x) => +x.toFixed(5)),
    [0.7, 0.5],
  );
});

test("sparse: reads [batch, seq, 1] rows", () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]); // batch 2, seq 3, 1
  assert.deepEqual([...sparseWeightsFromTensor(data, 1, 3, 1)], [4, 5, 6]);
});

test("colbert: keeps length-1 rows (tokens after CLS, incl. </s>), drops padding, normalises", () => {
  const dim = 2,
    seqMinus1 = 4;
  // row 1 of a batch of 2: 4 token rows, real length 3 => 2 rows kept
  const data = new Float32Array(2 * seqMinus1 * dim);
  data.set([3, 4, 0, 2, 9, 9, 9, 9], seqMinus1 * dim);
  const out = colbertRow(data, 1, seqMinus1, dim, 3);
  assert.equal(out.length, 2 * dim);
  assert.deepEqual(
    [...out].map((x) => +x.toFixed(5)),
    [0.6, 0.8, 0, 1],
  );
});

test("dense and CLS pooling are unit-norm", () => {
  const d = denseRow(new Float32Array([0, 0, 3, 4, 1, 1]), 1, 2);
  assert.ok(Math.abs(norm(d) - 1) < 1e-6);
  const hidden = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]); // batch 2, seq 2, dim 2
  const c = clsRow(hidden, 1, 2, 2);
  assert.deepEqual(
    [...c].map((x) => +x.toFixed(5)),
    [+(5 / Math.hypot(5, 6)).toFixed(5), +(6 / Math.hypot(5, 6)).toFixed(5)],
  );
});
