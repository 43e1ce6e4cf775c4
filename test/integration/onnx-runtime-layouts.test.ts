/** The worker's model thread on real ONNX sessions of every published export layout and of
 *  small graphs built here (issue 12): each layout gives the three-head export's vectors
 *  (fp32 within 1e-5, fp16 within cosine 0.999 and 2e-2 on sparse weights); position_ids and
 *  token_type_ids are fed as the graph asks; MODEL_OUTPUT_NAMES maps unknown outputs; and the
 *  start-up probe refuses zero, negative and non-finite outputs, bfloat16 and other element
 *  types, naming the output, before the model takes a batch. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ModelLoadError } from "../../worker/errors.js";
import { EXPORT_LAYOUTS, LAYOUT_SPECS, writeExportLayout } from "../../kit/test-model/export-layouts.js";
import { GraphBuilder, TensorType, type ElemType } from "../../kit/test-model/onnx-graph-builder.js";
import { padTo } from "../../worker/core/batcher.js";
import { cosine, type ChunkEmbedding } from "../../worker/core/heads.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import { modelFolder, testConfig, testModel } from "../../kit/harness.js";

const TEXTS = ["Good morning everyone.", "Yes.", "A señora presidenta abriu a sesión e deu a palabra ao conselleiro."];
const root = mkdtempSync(path.join(os.tmpdir(), "onnx-runtime-layouts-"));
let seqs: Int32Array[];

before(async () => {
  const files = await testModel();
  const tokenizer = new TokenizerPool({
    tokenizerPath: files.tokenizerPath,
    maxLength: 512,
    eosId: 2,
    backend: "js",
    threads: 1,
  });
  seqs = (await tokenizer.encode(TEXTS)).map((t) => t.ids);
  await tokenizer.close();
});
after(() => rmSync(root, { recursive: true, force: true }));

async function withModel<T>(dir: string, env: Record<string, string>, fn: (m: OnnxModel) => Promise<T>): Promise<T> {
  const model = await OnnxModel.load(testConfig(env), locateModelFiles(dir));
  try {
    return await fn(model);
  } finally {
    await model.close();
  }
}

const embedAll = (m: OnnxModel, s: Int32Array[]) =>
  m.embed({ sequences: s, paddedLength: padTo(Math.max(...s.map((x) => x.length)), 8) + 3 });

function assertClose(got: ChunkEmbedding, want: ChunkEmbedding, fp16: boolean, what: string): void {
  assert.ok(1 - cosine(got.dense!, want.dense!) < (fp16 ? 1e-3 : 1e-6), `${what}: dense`);
  if (!fp16) got.dense!.forEach((v, i) => assert.ok(Math.abs(v - want.dense![i]) < 1e-5, `${what}: dense[${i}]`));
  if (want.sparse && got.sparse) {
    assert.deepEqual([...got.sparse.indices], [...want.sparse.indices], `${what}: sparse ids`);
    const tol = fp16 ? 2e-2 : 1e-5;
    got.sparse.values.forEach((v, i) => assert.ok(Math.abs(v - want.sparse!.values[i]) < tol, `${what}: sparse[${i}]`));
  }
  if (want.colbert && got.colbert) {
    assert.equal(got.colbert.length, want.colbert.length, `${what}: ColBERT rows`);
    const d = want.colbertDim!;
    for (let r = 0; r < want.colbert.length / d; r++) {
      const a = got.colbert.subarray(r * d, (r + 1) * d);
      const b = want.colbert.subarray(r * d, (r + 1) * d);
      assert.ok(1 - cosine(a, b) < (fp16 ? 1e-3 : 1e-6), `${what}: ColBERT row ${r}`);
    }
  }
}

test("every published export layout gives the three-head export's vectors", async () => {
  const dirs = Object.fromEntries(
    await Promise.all(
      EXPORT_LAYOUTS.map(async (l) => {
        const written = await writeExportLayout(path.join(root, l), l);
        return [l, written.dir] as const;
      }),
    ),
  );
  const reference = await withModel(dirs.vecs, { OUTPUTS: "dense,sparse,colbert" }, (m) => embedAll(m, seqs));
  for (const layout of EXPORT_LAYOUTS) {
    const spec = LAYOUT_SPECS[layout];
    await withModel(dirs[layout], { OUTPUTS: spec.provides.join(",") }, async (m) => {
      assert.deepEqual(m.info.available, spec.provides, layout);
      const got = await embedAll(m, seqs);
      got.forEach((e, i) => assertClose(e, reference[i], spec.float16Outputs, `${layout} text ${i}`));
      const log = JSON.stringify(m.info.layout);
      if (spec.float16Outputs) assert.match(log, /float16/, layout);
      if (layout === "raw-cls") assert.match(log, /CLS row skipped here/);
      if (layout === "vecs-int32") assert.deepEqual(m.info.feeds, ["input_ids int32", "attention_mask int32"]);
    });
  }
});

/** A folder with the test model's tokenizer and config and a graph built by `build`. */
async function graphFolder(name: string, build: (g: GraphBuilder, maskF: string) => void): Promise<string> {
  const dir = await modelFolder(path.join(root, name));
  const g = new GraphBuilder();
  g.input("input_ids", TensorType.INT64, ["batch", "sequence"]);
  const mask = g.input("attention_mask", TensorType.INT64, ["batch", "sequence"]);
  build(g, g.node("Cast", [mask], { to: TensorType.FLOAT }));
  writeFileSync(path.join(dir, "model.onnx"), g.encode("probe_test", "graph built by onnx-runtime-layouts.test"));
  return dir;
}

const FLOAT = TensorType.FLOAT;
const BS = ["batch", "sequence"];

test("position_ids and token_type_ids are fed as the graph asks; MODEL_OUTPUT_NAMES maps unknown outputs", async () => {
  const dir = await graphFolder("echo", (g, maskF) => {
    const types = g.input("token_type_ids", TensorType.INT64, BS);
    const positions = g.input("position_ids", TensorType.INT64, BS);
    g.node("Cast", [positions], { to: FLOAT }, "positions");
    g.output("positions", FLOAT, BS);
    g.node("Add", [g.node("Cast", [types], { to: FLOAT }), maskF], {}, "mask_plus_types");
    g.output("mask_plus_types", FLOAT, BS);
    g.node("Unsqueeze", [g.node("Add", [maskF, g.scalarFloat("one", 1)]), g.int64s("axes", [2])], {}, "rows");
    g.output("rows", FLOAT, [...BS, 1]);
  });
  await assert.rejects(
    OnnxModel.load(testConfig({}), locateModelFiles(dir)),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /no known BGE-M3 output layout/.test(e.message) &&
      /position_ids int64 \[batch, sequence\]/.test(e.message) &&
      /positions float32 \[batch, sequence\]/.test(e.message) &&
      /MODEL_OUTPUT_NAMES=/.test(e.message),
  );
  const env = {
    OUTPUTS: "dense,sparse,colbert",
    MODEL_OUTPUT_NAMES: "dense=positions,sparse=mask_plus_types,colbert=rows",
  };
  await withModel(dir, env, async (m) => {
    const sequences = [Int32Array.from([0, 17, 42, 2]), Int32Array.from([0, 2])];
    const [a, b] = await m.embed({ sequences, paddedLength: 6 });
    const near = (got: Float32Array, positions: number[]) => {
      const unit = positions.map((x) => x / Math.hypot(...positions));
      got.forEach((x, i) => assert.ok(Math.abs(x - unit[i]) < 1e-6, `positions ${got} vs ${positions}`));
    };
    near(a.dense!, [2, 3, 4, 5, 1, 1]);
    near(b.dense!, [2, 3, 1, 1, 1, 1]);
    assert.deepEqual([...a.sparse!.indices], [17, 42]);
    assert.deepEqual([...a.sparse!.values], [1, 1], "token types are zeros, the mask ones");
    assert.deepEqual([...a.colbert!], [1, 1, 1], "CLS row skipped: three rows for four tokens");
    const feeds = ["input_ids int64", "attention_mask int64", "token_type_ids int64", "position_ids int64"];
    assert.deepEqual(m.info.feeds, feeds);
  });
});

/** dense_vecs [B,S] = mask + 1, sparse_vecs [B,S] = mask, colbert_vecs [B,S,1] = mask + 1, each replaceable. */
function probeGraph(over: { dense?: string; sparse?: string; colbert?: string; denseType?: number }) {
  return (g: GraphBuilder, maskF: string) => {
    const plus1 = g.node("Add", [maskF, g.scalarFloat("one", 1)]);
    const inf = g.node("Div", [maskF, g.scalarFloat("zero", 0)]);
    const pick = (k: string | undefined, normal: string) =>
      k === "zero"
        ? g.node("Mul", [maskF, g.scalarFloat("z", 0)])
        : k === "negative"
          ? g.node("Neg", [maskF])
          : k === "infinite"
            ? inf
            : normal;
    const dense = pick(over.dense, plus1);
    const type = (over.denseType ?? FLOAT) as ElemType;
    g.node("Cast", [dense], { to: type }, "dense_vecs");
    g.output("dense_vecs", type, BS);
    g.node("Identity", [pick(over.sparse, maskF)], {}, "sparse_vecs");
    g.output("sparse_vecs", FLOAT, BS);
    g.node("Unsqueeze", [pick(over.colbert, plus1), g.int64s("axes", [2])], {}, "colbert_vecs");
    g.output("colbert_vecs", FLOAT, [...BS, 1]);
  };
}

test("the start-up probe refuses zero, negative and non-finite outputs, naming the output", async () => {
  const all = { OUTPUTS: "dense,sparse,colbert" };
  const sane = await graphFolder("probe-sane", probeGraph({}));
  await withModel(sane, all, async (m) => assert.ok(m.info.denseDim > 0));
  const cases: Array<[Parameters<typeof probeGraph>[0], RegExp]> = [
    [{ dense: "zero" }, /dense \(output dense_vecs\) is a zero vector before normalisation/],
    [{ sparse: "negative" }, /sparse \(output sparse_vecs\) has a weight -1: weights must be finite and >= 0/],
    [{ colbert: "infinite" }, /colbert \(output colbert_vecs\) has a non-finite value \(Infinity\)/],
    [{ dense: "infinite" }, /dense \(output dense_vecs\) has a non-finite value \(Infinity\)/],
  ];
  for (const [over, message] of cases) {
    const dir = await graphFolder(`probe-${Object.entries(over).flat().join("-")}`, probeGraph(over));
    await assert.rejects(
      OnnxModel.load(testConfig(all), locateModelFiles(dir)),
      (e: Error) =>
        e instanceof ModelLoadError &&
        /the start-up probe \("BGE M3 ist ein Embedding-Modell/.test(e.message) &&
        message.test(e.message),
    );
  }
});

test("outputs of element types the heads cannot read are refused at start-up, naming the type", async () => {
  const bf16 = await graphFolder("bfloat16", probeGraph({ denseType: 16 }));
  await assert.rejects(
    OnnxModel.load(testConfig({ OUTPUTS: "dense" }), locateModelFiles(bf16)),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /dense_vecs has element type bfloat16, which onnxruntime-node cannot/.test(e.message),
  );
  const u8 = await graphFolder("uint8", probeGraph({ denseType: 2 }));
  await assert.rejects(
    OnnxModel.load(testConfig({ OUTPUTS: "dense" }), locateModelFiles(u8)),
    (e: Error) => e instanceof ModelLoadError && /output dense_vecs \(dense\) has element type uint8/.test(e.message),
  );
});
