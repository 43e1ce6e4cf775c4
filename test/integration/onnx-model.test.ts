/** The real ONNX Runtime session on the generated BGE-M3-shaped model, through the worker's
 *  own model thread and tokenizer threads: batched output equals one-at-a-time output, padding
 *  does not change any chunk's vectors, dense is unit-norm, ColBERT has one normalised row
 *  per real token after CLS, a plain encoder gives dense only, and CUDA never falls back. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ExecutionProviderError, ModelLoadError } from "../../worker/errors.js";
import { cosine } from "../../worker/core/heads.js";
import { padTo } from "../../worker/core/batcher.js";
import { missingCudaLibraries } from "../../worker/adapters/execution-provider.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import { encodeVectorJson } from "../../worker/adapters/qdrant-vector-json.js";
import { testConfig, testModel } from "../../kit/harness.js";

const TEXTS = [
  "Good morning everyone, let's start the weekly planning meeting.",
  "Yes.",
  "The committee approved the budget after a long debate about the transport plan and the new hospital wing in the northern district.",
  "A señora presidenta abriu a sesión.",
  "We should ship it on Friday, assuming the tests pass and nobody finds another regression in the billing module, which, as you all know, has been fragile since the migration last spring.",
];

let model: OnnxModel;
let tokenizer: TokenizerPool;
let seqs: Int32Array[];

before(async () => {
  const files = await testModel();
  const cfg = testConfig({ MODEL_DIR: files.dir, OUTPUTS: "dense,sparse,colbert" });
  const mf = locateModelFiles(files.dir);
  model = await OnnxModel.load(cfg, mf);
  tokenizer = new TokenizerPool({
    tokenizerPath: mf.tokenizerPath,
    maxLength: 8192,
    eosId: mf.eosId,
    backend: "js",
    threads: 1,
  });
  seqs = (await tokenizer.encode(TEXTS)).map((t) => t.ids);
});

after(async () => {
  await model?.close();
  await tokenizer?.close();
});

const batchOf = (s: Int32Array[], extra = 0) => ({
  sequences: s,
  paddedLength: padTo(Math.max(...s.map((x) => x.length)), 8) + extra,
});

test("model info: which outputs the model provides", () => {
  assert.deepEqual(model.info.available, ["dense", "sparse", "colbert"]);
  assert.deepEqual(model.info.onnxOutputs.sort(), ["colbert_vecs", "dense_vecs", "sparse_vecs"]);
  assert.ok(model.info.denseDim > 0);
});

test("batched output equals one-at-a-time output (cosine within 1e-4)", async () => {
  const batched = await model.embed(batchOf(seqs));
  for (let i = 0; i < seqs.length; i++) {
    const [single] = await model.embed(batchOf([seqs[i]]));
    assert.ok(1 - cosine(batched[i].dense!, single.dense!) < 1e-4, `dense of text ${i} differs`);
    assert.deepEqual([...batched[i].sparse!.indices], [...single.sparse!.indices]);
    batched[i].sparse!.values.forEach((v, k) => assert.ok(Math.abs(v - single.sparse!.values[k]) < 1e-4));
    assert.equal(batched[i].colbert!.length, single.colbert!.length);
    const d = batched[i].colbertDim!;
    for (let r = 0; r < single.colbert!.length / d; r++) {
      const a = batched[i].colbert!.subarray(r * d, (r + 1) * d);
      const b = single.colbert!.subarray(r * d, (r + 1) * d);
      assert.ok(1 - cosine(a, b) < 1e-4, `colbert row ${r} of text ${i} differs`);
    }
  }
});

test("extra padding does not change any chunk's vectors", async () => {
  const tight = await model.embed(batchOf(seqs));
  const loose = await model.embed(batchOf(seqs, 64));
  for (let i = 0; i < seqs.length; i++) assert.ok(1 - cosine(tight[i].dense!, loose[i].dense!) < 1e-5);
});

test("dense is unit-norm; ColBERT has length-1 unit rows; sparse drops special ids", async () => {
  const out = await model.embed(batchOf(seqs));
  out.forEach((e, i) => {
    const n = Math.sqrt(e.dense!.reduce((a, x) => a + x * x, 0));
    assert.ok(Math.abs(n - 1) < 1e-5);
    const d = e.colbertDim!;
    assert.equal(e.colbert!.length / d, seqs[i].length - 1);
    for (let r = 0; r < seqs[i].length - 1; r++) {
      const row = e.colbert!.subarray(r * d, (r + 1) * d);
      assert.ok(Math.abs(Math.sqrt(row.reduce((a, x) => a + x * x, 0)) - 1) < 1e-4);
    }
    for (const id of e.sparse!.indices) assert.ok(id > 3, `special id ${id} kept`);
    assert.ok(e.sparse!.indices.length > 0);
  });
  assert.ok(cosine(out[0].dense!, out[2].dense!) < 0.999, "different texts gave the same vector");
});

test("a plain encoder (last_hidden_state) gives dense only, and asking it for sparse fails clearly", async () => {
  const files = await testModel({ outputs: "last_hidden_state" }, "last-hidden-state");
  const mf = locateModelFiles(files.dir);
  const dense = await OnnxModel.load(testConfig({ OUTPUTS: "dense" }), mf);
  try {
    assert.deepEqual(dense.info.available, ["dense"]);
    const [a] = await dense.embed(batchOf([seqs[0]]));
    assert.ok(Math.abs(Math.sqrt(a.dense!.reduce((s, x) => s + x * x, 0)) - 1) < 1e-5);
  } finally {
    await dense.close();
  }
  await assert.rejects(
    OnnxModel.load(testConfig({ OUTPUTS: "dense,sparse" }), mf),
    (err: Error) =>
      err instanceof ModelLoadError && /provides only dense/.test(err.message) && /last_hidden_state/.test(err.message),
  );
});

test("EXECUTION_PROVIDER=cuda without the CUDA provider fails loudly, naming what is missing", async (t) => {
  if (missingCudaLibraries().length === 0) {
    t.skip("the CUDA provider libraries are installed here; this checks the machine without them");
    return;
  }
  const files = await testModel();
  await assert.rejects(
    OnnxModel.load(testConfig({ EXECUTION_PROVIDER: "cuda" }), locateModelFiles(files.dir)),
    (err: Error) =>
      err instanceof ExecutionProviderError &&
      /libonnxruntime_providers_cuda\.so/.test(err.message) &&
      /ONNXRUNTIME_NODE_INSTALL=cuda12/.test(err.message),
  );
});

test("a missing model folder or file is a clear start-up error", () => {
  assert.throws(() => locateModelFiles("/nonexistent/model/dir"), /MODEL_DIR .* does not exist/);
});

test("encodeVectors: the model thread returns each chunk's vector JSON, byte for byte what the encoder writes from its vectors", async () => {
  const plain = await model.embed(batchOf(seqs));
  assert.ok(
    plain.every((e) => e.vectorJson === undefined),
    "no vector JSON unless asked for",
  );
  const encoded = await model.embed({ ...batchOf(seqs), encodeVectors: true });
  encoded.forEach((e, i) => {
    assert.ok(e.vectorJson instanceof Uint8Array, `chunk ${i} has vector JSON`);
    assert.deepEqual(Buffer.from(e.vectorJson), Buffer.from(encodeVectorJson({ ...e, vectorJson: undefined })));
    assert.ok(e.dense && e.sparse && e.colbert, "the typed arrays still come back");
    const parsed = JSON.parse(Buffer.from(e.vectorJson).toString("utf8")) as { colbert: number[][] };
    assert.equal(parsed.colbert.length, seqs[i].length - 1);
  });
  const query = await model.embed({ ...batchOf(seqs), queryLane: true, encodeVectors: false });
  assert.ok(query.every((e) => e.vectorJson === undefined));
});
