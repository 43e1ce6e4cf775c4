/** The output-layout table and the heads over it, on hand-made metadata and tensors (issue 12):
 *  each published layout is recognised by its names, MODEL_OUTPUT_NAMES maps any other, the
 *  probe's shapes decide pooling and the CLS row, refusals list the model's inputs and outputs
 *  with types and shapes and name the fix, and the probe check catches non-finite, zero and
 *  negative values while ignoring padding. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelLoadError } from "../../worker/errors.js";
import { applyLayout, probeProblems } from "../../worker/core/layout-heads.js";
import {
  checkOutputTypes,
  checkWanted,
  confirmLayout,
  describeLayout,
  matchLayout,
  type TensorMeta,
} from "../../worker/core/output-layouts.js";

const INPUTS: TensorMeta[] = [
  { name: "input_ids", type: "int64", shape: ["batch", "sequence"] },
  { name: "attention_mask", type: "int64", shape: ["batch", "sequence"] },
];
const out = (name: string, type = "float32", shape: Array<number | string> = ["batch", 8]): TensorMeta => ({
  name,
  type,
  shape,
});
const outs = (...names: string[]) => names.map((n) => out(n));

test("each published layout is recognised by its output names", () => {
  const cases: Array<[string[], string, Record<string, string>]> = [
    [
      ["dense_vecs", "sparse_vecs", "colbert_vecs"],
      "bge-m3-vecs",
      { dense: "dense_vecs", sparse: "sparse_vecs", colbert: "colbert_vecs" },
    ],
    [["colbert", "dense", "sparse"], "raw-heads", { dense: "dense", sparse: "sparse", colbert: "colbert" }],
    [
      ["dense_embeddings", "sparse_weights", "colbert_vectors"],
      "embeddings-weights-vectors",
      { dense: "dense_embeddings", sparse: "sparse_weights", colbert: "colbert_vectors" },
    ],
    [["token_embeddings", "sentence_embedding"], "sentence-transformers", { dense: "sentence_embedding" }],
    [["token_embeddings"], "sentence-transformers", { dense: "token_embeddings" }],
    [["last_hidden_state"], "backbone", { dense: "last_hidden_state" }],
  ];
  for (const [names, id, mapping] of cases) {
    const m = matchLayout(INPUTS, outs(...names));
    assert.equal(m.id, id, names.join(","));
    assert.deepEqual(m.outputs, mapping);
  }
});

test("MODEL_OUTPUT_NAMES maps an unknown export; a name the model lacks is refused with its outputs", () => {
  const o = outs("emb", "lex", "multi");
  const mapping = { dense: "emb", colbert: "multi" };
  assert.deepEqual(matchLayout(INPUTS, o, mapping).outputs, mapping);
  assert.throws(
    () => matchLayout(INPUTS, o, { dense: "emb", sparse: "nope" }),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /MODEL_OUTPUT_NAMES names outputs the model lacks \(sparse=nope\)/.test(e.message) &&
      /its outputs: emb float32 \[batch, 8\], lex/.test(e.message),
  );
});

test("nothing matching: the error lists inputs and outputs with types and shapes and names the setting", () => {
  const o = [out("logits", "float16", ["batch", "sequence", 250002])];
  assert.throws(
    () => matchLayout(INPUTS, o),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /no known BGE-M3 output layout/.test(e.message) &&
      /inputs: input_ids int64 \[batch, sequence\], attention_mask int64 \[batch, sequence\]/.test(e.message) &&
      /outputs: logits float16 \[batch, sequence, 250002\]/.test(e.message) &&
      /MODEL_OUTPUT_NAMES=dense=<output>,sparse=<output>,colbert=<output>/.test(e.message),
  );
});

test("asking for what the model lacks: backbones are sent to prepare-model, others to MODEL_OUTPUT_NAMES", () => {
  const backbone = outs("last_hidden_state");
  assert.throws(
    () => checkWanted(matchLayout(INPUTS, backbone), ["dense", "sparse"], INPUTS, backbone),
    (e: Error) =>
      /OUTPUTS asks for sparse but the model provides only dense/.test(e.message) &&
      /npm run prepare-model/.test(e.message) &&
      /last_hidden_state float32/.test(e.message),
  );
  const partial = outs("dense_vecs", "sparse_vecs");
  assert.throws(
    () => checkWanted(matchLayout(INPUTS, partial), ["colbert"], INPUTS, partial),
    (e: Error) =>
      /asks for colbert/.test(e.message) && /MODEL_OUTPUT_NAMES/.test(e.message) && !/prepare-model/.test(e.message),
  );
  checkWanted(matchLayout(INPUTS, partial), ["dense", "sparse"], INPUTS, partial);
});

test("an output in use whose element type the heads cannot read is refused, naming the type", () => {
  const o = [out("dense_vecs", "int8"), out("sparse_vecs", "float16")];
  assert.throws(() => checkOutputTypes(matchLayout(INPUTS, o), o), /output dense_vecs \(dense\) has element type int8/);
  checkOutputTypes(matchLayout(INPUTS, [out("dense_vecs", "bfloat16")]), [out("dense_vecs", "bfloat16")]);
});

test("the probe's shapes decide pooling and the CLS row; shapes the table cannot explain are refused", () => {
  const raw = matchLayout(INPUTS, outs("dense", "sparse", "colbert"));
  const c = confirmLayout(raw, { dense: [2, 4], sparse: [2, 7], colbert: [2, 7, 4] }, 2, 7);
  assert.deepEqual(c, {
    id: "raw-heads",
    dense: { output: "dense", pool: "vector" },
    sparse: { output: "sparse" },
    colbert: { output: "colbert", clsRow: true, dim: 4 },
  });
  const vecs = matchLayout(INPUTS, outs("dense_vecs", "sparse_vecs", "colbert_vecs"));
  const v = confirmLayout(vecs, { dense_vecs: [2, 4], sparse_vecs: [2, 7, 1], colbert_vecs: [2, 6, 4] }, 2, 7);
  assert.equal(v.colbert!.clsRow, false);
  const hidden = confirmLayout(matchLayout(INPUTS, outs("last_hidden_state")), { last_hidden_state: [2, 7, 4] }, 2, 7);
  assert.equal(hidden.dense!.pool, "cls");
  assert.match(describeLayout(hidden, outs("last_hidden_state")).dense, /CLS row of a hidden state/);
  const wide = { dense_vecs: [2, 4], sparse_vecs: [2, 7, 2], colbert_vecs: [2, 6, 4] };
  assert.throws(
    () => confirmLayout(vecs, wide, 2, 7),
    /output sparse_vecs \(sparse\) has shape \[2, 7, 2\] on a probe batch of 2 x 7 tokens/,
  );
  assert.throws(
    () => confirmLayout(vecs, { dense_vecs: [2, 4], sparse_vecs: [2, 7], colbert_vecs: [2, 5, 4] }, 2, 7),
    /colbert_vecs \(colbert\).*expected \[2, 6, H\] or \[2, 7, H\]/,
  );
});

/** A raw-heads batch of 2 rows, L = 4, H = 2: row 0 has 4 real tokens, row 1 has 2. */
function rawBatch() {
  const layout = confirmLayout(
    matchLayout(INPUTS, outs("dense", "sparse", "colbert")),
    { dense: [2, 2], sparse: [2, 4], colbert: [2, 4, 2] },
    2,
    4,
  );
  const decoded = {
    dense: { data: Float32Array.from([3, 4, 0, -2]), dims: [2, 2] },
    sparse: { data: Float32Array.from([0.9, 0.5, 0.25, 0.7, 0.8, 0.6, -5, NaN]), dims: [2, 4] },
    colbert: { data: Float32Array.from([9, 9, 1, 0, 0, 3, 6, 8, 9, 9, 0, 5, NaN, 1, NaN, 1]), dims: [2, 4, 2] },
  };
  const rows = { flat: Int32Array.from([0, 17, 42, 2, 0, 2]), lengths: Int32Array.from([4, 2]) };
  return { layout, decoded, rows };
}

test("heads over a layout with the CLS row: real-token rows after CLS, normalised; sparse drops specials", () => {
  const { layout, decoded, rows } = rawBatch();
  const [a, b] = applyLayout(layout, decoded, rows, new Set([0, 1, 2, 3]));
  assert.deepEqual(
    [...a.dense!].map((x) => +x.toFixed(5)),
    [0.6, 0.8],
  );
  assert.deepEqual([...b.dense!], [0, -1]);
  assert.deepEqual([...a.sparse!.indices], [17, 42]);
  assert.deepEqual(
    [...a.sparse!.values].map((x) => +x.toFixed(5)),
    [0.5, 0.25],
  );
  assert.deepEqual(
    [...a.colbert!].map((x) => +x.toFixed(5)),
    [1, 0, 0, 1, 0.6, 0.8],
  );
  assert.deepEqual(
    [...b.colbert!].map((x) => +x.toFixed(5)),
    [0, 1],
    "one row (</s>) for a 2-token chunk",
  );
});

test("the probe check passes sane values, ignores padding, and names each failing output", () => {
  const { layout, decoded, rows } = rawBatch();
  assert.deepEqual(probeProblems(layout, decoded, rows.lengths), [], "NaN and -5 sit in padding only");
  decoded.dense.data.set([0, 0], 0);
  decoded.sparse.data[1] = -0.1;
  decoded.colbert.data[4] = Infinity;
  const problems = probeProblems(layout, decoded, rows.lengths);
  assert.deepEqual(problems, [
    "dense (output dense) is a zero vector before normalisation",
    "sparse (output sparse) has a weight -0.1: weights must be finite and >= 0",
    "colbert (output colbert) has a non-finite value (Infinity)",
  ]);
  decoded.dense.data[3] = NaN;
  assert.match(
    probeProblems(layout, decoded, rows.lengths).join("\n"),
    /dense \(output dense\) has a non-finite value \(NaN\)/,
  );
});
