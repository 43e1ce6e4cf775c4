/** `prepare-model` on generated backbone-only exports (issue 12): the prepared folder loads
 *  through the worker's own model path with all three outputs, and its vectors equal the test
 *  kit's three-head layout built from the same weights and a from-scratch FlagEmbedding
 *  reference computed from the backbone's own hidden state and the `.pt` head weights. Covers
 *  float32 backbones with external data in `onnx/` and as a single file (weights moved out),
 *  float16 hidden states with float16 and float32 head files, opsets 17 and 18, a renamed hidden
 *  output, the CLI, and the refusals: a missing external-data file, an unknown layout, a model
 *  that already has heads (the header scan itself is tested in model-files). */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, promises as fs, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import { generateHeadWeights, transposed, type HeadWeights } from "../../kit/test-model/head-weights.js";
import { writeExportLayout } from "../../kit/test-model/export-layouts.js";
import { TensorType } from "../../kit/test-model/onnx-graph-builder.js";
import { buildModelGraph, type GraphVariant, type TestModelOptions } from "../../kit/test-model/onnx-model-gen.js";
import { writeLinearPt } from "../../kit/test-model/pt-writer.js";
import { writeTestModel } from "../../kit/test-model/write-test-model.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import { padTo } from "../../worker/core/batcher.js";
import type { ChunkEmbedding } from "../../worker/core/heads.js";
import { toFloat32 } from "../../worker/core/tensor-decode.js";
import { ModelLoadError } from "../../worker/errors.js";
import { ModelLayoutError } from "../../worker/model-tools/model-tool-errors.js";
import { prepareModel } from "../../worker/model-tools/prepare-model.js";
import { ptToFloat32, readPtStateDict } from "../../worker/model-tools/pt-reader.js";
import { flagEmbeddingOutputs, type LinearWeights } from "../../kit/bge-m3-reference.js";
import { repoRoot, testConfig } from "../../kit/harness.js";

const { onnx } = onnxProto;
let root: string;
let options: Required<TestModelOptions>;
let heads: HeadWeights;
/** Token ids: <s> … </s>, lengths 3 to 40, so the batch needs padding. */
let sequences: Int32Array[];

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "prepare-model-"));
  const files = await writeTestModel(path.join(root, "template"), { outputs: "last_hidden_state", seed: 7 });
  options = JSON.parse(await fs.readFile(files.configPath, "utf8"))._generated_test_model.options;
  heads = generateHeadWeights(options, true);
  sequences = [3, 17, 40, 9].map((len, s) =>
    Int32Array.from({ length: len }, (_, i) =>
      i === 0 ? 0 : i === len - 1 ? 2 : 4 + ((i * 7919 + s * 104729) % (options.vocabSize - 4)),
    ),
  );
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

type Layout = { external?: boolean; subfolder?: boolean; float16?: boolean; hiddenName?: string; opset?: number };

/** A backbone export folder like BAAI's or Xenova's: graph, tokenizer, config and the two .pt heads. */
async function backbone(name: string, layout: Layout = {}): Promise<string> {
  const dir = path.join(root, name);
  const modelDir = layout.subfolder ? path.join(dir, "onnx") : dir;
  await fs.mkdir(modelDir, { recursive: true });
  for (const f of ["tokenizer.json", "tokenizer_config.json", "config.json"]) {
    await fs.copyFile(path.join(root, "template", f), path.join(dir, f));
  }
  const hiddenName = layout.hiddenName ?? "last_hidden_state";
  const variant: GraphVariant = {
    inputType: TensorType.INT64,
    heads: ({ g, o, hidden }) => {
      const type = layout.float16 ? TensorType.FLOAT16 : TensorType.FLOAT;
      g.node(layout.float16 ? "Cast" : "Identity", [hidden], layout.float16 ? { to: type } : {}, hiddenName);
      g.output(hiddenName, type, ["batch", "sequence", o.hidden]);
    },
  };
  const { graph } = buildModelGraph(options, variant);
  if (layout.external) {
    const { model, data } = graph.encodeWithExternalData("backbone", "test backbone", "model.onnx_data");
    await fs.writeFile(path.join(modelDir, "model.onnx"), model);
    await fs.writeFile(path.join(modelDir, "model.onnx_data"), data);
  } else {
    let bytes = graph.encode("backbone", "test backbone");
    if (layout.opset) {
      // The backbone's ops mean the same in opsets 17 and 18; only the heads' ReduceL2 form differs.
      const m = onnx.ModelProto.decode(bytes);
      m.opsetImport = [{ domain: "", version: layout.opset }];
      bytes = onnx.ModelProto.encode(m).finish();
    }
    await fs.writeFile(path.join(modelDir, "model.onnx"), bytes);
  }
  const h = options.hidden;
  const c = options.colbertDim;
  await writeLinearPt(
    path.join(dir, "sparse_linear.pt"),
    { data: heads.sparseWeight, shape: [1, h] },
    { data: heads.sparseBias, shape: [1] },
  );
  const colbertTorch = { data: transposed(heads.colbertWeight, h, c), shape: [c, h] };
  await writeLinearPt(path.join(dir, "colbert_linear.pt"), colbertTorch, { data: heads.colbertBias, shape: [c] });
  return dir;
}

type Heads = { sparse: LinearWeights; colbert: LinearWeights };

/** The generated heads as nn.Linear holds them (weight [out, in]). */
function generatedHeads(): Heads {
  const h = options.hidden;
  const c = options.colbertDim;
  return {
    sparse: { weight: heads.sparseWeight, bias: heads.sparseBias, out: 1, in: h },
    colbert: { weight: transposed(heads.colbertWeight, h, c), bias: heads.colbertBias, out: c, in: h },
  };
}

/** FlagEmbedding's post-processing (kit/bge-m3-reference.ts) on the backbone's hidden
 *  state, decoded from float32 or float16, one unpadded sequence at a time; in the worker's shape. */
async function reference(modelPath: string, hiddenName = "last_hidden_state", w = generatedHeads()) {
  const session = await ort.InferenceSession.create(modelPath);
  const out: ChunkEmbedding[] = [];
  try {
    for (const ids of sequences) {
      const dims = [1, ids.length];
      const feeds = {
        input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), dims),
        attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), dims),
      };
      const t = (await session.run(feeds))[hiddenName];
      const r = flagEmbeddingOutputs(toFloat32(t.type, t.data), ids, w, [0, 1, 2, 3]);
      const ranked = [...r.sparse.entries()].sort(([a], [b]) => a - b);
      out.push({
        dense: Float32Array.from(r.dense),
        sparse: { indices: Uint32Array.from(ranked, ([id]) => id), values: Float32Array.from(ranked, ([, v]) => v) },
        colbert: Float32Array.from(r.colbert.flatMap((row) => [...row])),
        colbertDim: w.colbert.out,
      });
    }
  } finally {
    await session.release();
  }
  return out;
}

/** The prepared model through the worker's own path, all sequences in one padded batch. */
async function embedPrepared(dir: string): Promise<ChunkEmbedding[]> {
  const cfg = testConfig({ MODEL_DIR: dir, OUTPUTS: "dense,sparse,colbert" });
  const model = await OnnxModel.load(cfg, locateModelFiles(dir));
  try {
    assert.deepEqual(model.info.available, ["dense", "sparse", "colbert"]);
    const paddedLength = padTo(Math.max(...sequences.map((s) => s.length)), 8);
    return await model.embed({ sequences, paddedLength });
  } finally {
    await model.close();
  }
}

function assertClose(actual: ChunkEmbedding[], expected: ChunkEmbedding[], tol: number): void {
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    assert.equal(a.length, b.length, `${what} length`);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  };
  expected.forEach((e, i) => {
    close(actual[i].dense!, e.dense!, `dense ${i}`);
    assert.deepEqual([...actual[i].sparse!.indices], [...e.sparse!.indices], `sparse ids ${i}`);
    close(actual[i].sparse!.values, e.sparse!.values, `sparse ${i}`);
    assert.equal(actual[i].colbertDim, e.colbertDim);
    close(actual[i].colbert!, e.colbert!, `colbert ${i}`);
  });
}

test("h2's .pt writer output reads back as the generated head weights", async () => {
  const dir = await backbone("pt-check");
  const sparse = await readPtStateDict(path.join(dir, "sparse_linear.pt"));
  assert.equal(sparse.get("weight")!.dtype, "float16");
  assert.deepEqual([...ptToFloat32(sparse.get("weight")!)], [...heads.sparseWeight]);
  const colbert = await readPtStateDict(path.join(dir, "colbert_linear.pt"));
  assert.deepEqual(colbert.get("weight")!.shape, [options.colbertDim, options.hidden]);
  assert.deepEqual([...ptToFloat32(colbert.get("bias")!)], [...heads.colbertBias]);
});

// backbone-fp16 rounds the hidden state to float16 (measured worst difference 1.4e-4 on CPU, where
// ONNX Runtime runs the float16 projections in float32 after inserting casts).
for (const [layout, tol] of [
  ["backbone", 1e-4],
  ["backbone-fp16", 1e-3],
] as const) {
  test(`the test kit's ${layout} layout, prepared, equals its three-head vecs layout (same weights)`, async () => {
    const vecs = await writeExportLayout(path.join(root, `${layout}-vecs`), "vecs");
    const from = await writeExportLayout(path.join(root, layout), layout);
    const out = path.join(root, `${layout}-prepared`);
    await prepareModel({ from: from.dir, out });
    const actual = await embedPrepared(out);
    assertClose(actual, await embedPrepared(vecs.dir), tol);
  });
}

test("a float32 backbone with external data in onnx/ gains the three heads; data hard-linked", async () => {
  const from = await backbone("external", { external: true, subfolder: true });
  const out = path.join(root, "external-out");
  const r = await prepareModel({ from, out });
  assert.equal(r.hiddenType, "float32");
  assert.equal(r.movedInitializers, 0);
  const byName = Object.fromEntries(r.files.map((f) => [path.basename(f.file), f.how]));
  assert.deepEqual(byName, {
    "model.onnx": "written",
    "model.onnx_data": "linked",
    "tokenizer.json": "copied",
    "tokenizer_config.json": "copied",
    "config.json": "copied",
  });
  const inode = (p: string) => statSync(p).ino;
  assert.equal(inode(path.join(out, "model.onnx_data")), inode(path.join(from, "onnx", "model.onnx_data")));
  assertClose(await embedPrepared(out), await reference(path.join(from, "onnx", "model.onnx")), 1e-4);
});

test("a single-file backbone's weights move to model.onnx_data; same vectors", async () => {
  const from = await backbone("single");
  const out = path.join(root, "single-out");
  const r = await prepareModel({ from, out });
  assert.ok(r.movedInitializers > 10, `moved ${r.movedInitializers}`);
  const source = statSync(path.join(from, "model.onnx")).size;
  assert.ok(statSync(path.join(out, "model.onnx")).size < source / 10, "the graph file keeps only small tensors");
  assert.ok(statSync(path.join(out, "model.onnx_data")).size > source * 0.9);
  // The streamed rewrite is a well-formed ModelProto: decoded in full, outputs are the three heads
  // and every moved initializer points into model.onnx_data at a page-aligned offset.
  const decoded = onnx.ModelProto.decode(await fs.readFile(path.join(out, "model.onnx")));
  assert.deepEqual(
    decoded.graph!.output!.map((o) => o.name),
    ["dense_vecs", "sparse_vecs", "colbert_vecs"],
  );
  for (const n of decoded.graph!.node!.filter((x) => x.opType === "ReduceL2")) {
    assert.deepEqual(n.attribute!.find((a) => a.name === "axes")?.ints?.map(Number), [-1], "opset 17: axes attribute");
  }
  const moved = decoded.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  assert.equal(moved.length, r.movedInitializers);
  for (const t of moved) {
    const kv = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
    assert.equal(kv.location, "model.onnx_data");
    assert.equal(Number(kv.offset) % 4096, 0);
    assert.equal(t.rawData?.length ?? 0, 0);
  }
  assertClose(await embedPrepared(out), await reference(path.join(from, "model.onnx")), 1e-4);
  // The *_vecs contract itself, not only what the worker makes of it: ColBERT has L-1 rows (no CLS).
  const session = await ort.InferenceSession.create(path.join(out, "model.onnx"));
  try {
    const ids = sequences[1];
    const dims = [1, ids.length];
    const run = await session.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), dims),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), dims),
    });
    const shape = (name: string) => run[name].dims.map(Number);
    assert.deepEqual(shape("dense_vecs"), [1, options.hidden]);
    assert.deepEqual(shape("sparse_vecs"), [1, ids.length, 1]);
    assert.deepEqual(shape("colbert_vecs"), [1, ids.length - 1, options.colbertDim]);
  } finally {
    await session.release();
  }
});

test("a float16 hidden state: float16 heads, float32 outputs within float16 rounding", async () => {
  const from = await backbone("fp16", { float16: true });
  const out = path.join(root, "fp16-out");
  const r = await prepareModel({ from, out });
  assert.equal(r.hiddenType, "float16");
  const session = await ort.InferenceSession.create(path.join(out, "model.onnx"));
  const types = session.outputMetadata.map((m) => ("type" in m ? m.type : undefined));
  await session.release();
  assert.deepEqual(types, ["float32", "float32", "float32"]);
  // The reference computes in float64 from the float16 hidden state; a float16 projection may round
  // its result (half an ulp is 1e-3 below 2). Measured worst 4.3e-4 on CPU.
  assertClose(await embedPrepared(out), await reference(path.join(from, "model.onnx")), 2e-3);
});

test("float32 head files on a float16 backbone (--heads): cast in the graph, same vectors", async () => {
  const from = await backbone("fp16-fp32-heads", { float16: true });
  const headsDir = path.join(repoRoot, "test", "fixtures", "pt", "heads_fp32_h32");
  const out = path.join(root, "fp16-fp32-heads-out");
  await prepareModel({ from, out, headsDir });
  const read = async (file: string) => readPtStateDict(path.join(headsDir, file));
  const [sparse, colbert] = [await read("sparse_linear.pt"), await read("colbert_linear.pt")];
  const linear = (sd: typeof sparse): LinearWeights => {
    const [out, inp] = sd.get("weight")!.shape;
    return { weight: ptToFloat32(sd.get("weight")!), bias: ptToFloat32(sd.get("bias")!), out, in: inp };
  };
  const fromPt = { sparse: linear(sparse), colbert: linear(colbert) };
  assert.equal(colbert.get("weight")!.dtype, "float32");
  // The graph rounds the float32 weights to float16 as well as the projections.
  assertClose(await embedPrepared(out), await reference(path.join(from, "model.onnx"), undefined, fromPt), 2e-3);
});

test("an opset 18 backbone gets ReduceL2 with its axes as an input; same vectors", async () => {
  const from = await backbone("opset18", { opset: 18 });
  const out = path.join(root, "opset18-out");
  assert.equal((await prepareModel({ from, out })).opset, 18);
  const decoded = onnx.ModelProto.decode(await fs.readFile(path.join(out, "model.onnx")));
  const reduces = decoded.graph!.node!.filter((n) => n.opType === "ReduceL2");
  assert.equal(reduces.length, 2);
  for (const n of reduces) {
    assert.equal(n.input!.length, 2);
    assert.ok(!n.attribute!.some((a) => a.name === "axes"));
  }
  assertClose(await embedPrepared(out), await reference(path.join(from, "model.onnx")), 1e-4);
});

test("--hidden-output names a differently called hidden state", async () => {
  const from = await backbone("renamed", { hiddenName: "encoder_out" });
  const out = path.join(root, "renamed-out");
  await prepareModel({ from, out, hiddenOutput: "encoder_out" });
  assertClose(await embedPrepared(out), await reference(path.join(from, "model.onnx"), "encoder_out"), 1e-4);
});

test("an unknown layout is refused with the model's inputs and outputs listed", async () => {
  const from = await backbone("unknown", { hiddenName: "encoder_out" });
  await assert.rejects(prepareModel({ from, out: path.join(root, "unknown-out") }), (err: unknown) => {
    assert.ok(err instanceof ModelLayoutError);
    assert.match(err.message, /has no output last_hidden_state/);
    assert.match(err.message, /inputs: input_ids int64 \[batch, sequence\], attention_mask int64 \[batch, sequence\];/);
    const outputs = `its outputs: encoder_out float32 \\[batch, sequence, ${options.hidden}\\]\\)`;
    assert.match(err.message, new RegExp(outputs));
    assert.match(err.message, /--hidden-output/);
    return true;
  });
  assert.ok(!existsSync(path.join(root, "unknown-out", "model.onnx")));
});

test("a model that already has the heads is refused", async () => {
  const from = path.join(root, "three-head");
  await writeTestModel(from, { seed: 7 });
  await assert.rejects(
    prepareModel({ from, out: path.join(root, "three-head-out") }),
    /already has BGE-M3 head outputs \(dense_vecs, sparse_vecs, colbert_vecs\)/,
  );
});

test("a missing external-data file is named, with a tensor that needs it", async () => {
  const from = await backbone("missing", { external: true });
  await fs.rm(path.join(from, "model.onnx_data"));
  await assert.rejects(prepareModel({ from, out: path.join(root, "missing-out") }), (err: unknown) => {
    assert.ok(err instanceof ModelLoadError);
    assert.match(err.message, /keeps weights in external data files that are missing: model\.onnx_data /);
    assert.match(err.message, /\(holds embeddings\.word_embeddings, /);
    return true;
  });
});

test("the CLI prints what it wrote and refuses to overwrite without --force", async () => {
  const from = await backbone("cli", { external: true });
  const out = path.join(root, "cli-out");
  const cli = path.join(repoRoot, "dist", "worker", "model-tools", "prepare-model-cli.js");
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [cli, "--from", from, "--out", out]);
  assert.match(stdout, /^prepared .*model\.onnx in [\d.]+ s \(peak RSS [\d.]+ MiB\)/);
  assert.match(stdout, /linked +.*model\.onnx_data/);
  assert.match(stdout, /colbert_vecs \[batch, sequence-1, 32\]/);
  const again = run(process.execPath, [cli, "--from", from, "--out", out]);
  await assert.rejects(again, (err: { stderr: string; code: number }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /^model: .* already holds config\.json, model\.onnx, model\.onnx_data, .*; pass --force/);
    return true;
  });
  await run(process.execPath, [cli, "--from", from, "--out", out, "--force"]);
});
