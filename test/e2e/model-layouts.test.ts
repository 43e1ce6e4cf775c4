/** Every published BGE-M3 export layout (issue 12), generated from one set of weights, gives the
 *  same vectors through the worker's own model path (`locateModelFiles` + `OnnxModel.load`) as
 *  a from-scratch reference of FlagEmbedding's post-processing computed from the float32
 *  backbone's `last_hidden_state` and the heads read back from the `.pt` files beside it:
 *  within 1e-5 for float32 outputs; cosine ≥ 0.999 and 2e-2 on sparse weights for float16.
 *  Texts of different lengths run as one padded batch. Backbone-only layouts give dense only
 *  and refuse sparse at start-up. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import onnxProto from "onnx-proto";
import {
  EXPORT_LAYOUTS,
  LAYOUT_SPECS,
  writeExportLayout,
  type LayoutOutput,
} from "../../kit/test-model/export-layouts.js";
import { generateHeadWeights, transposed } from "../../kit/test-model/head-weights.js";
import { TensorType } from "../../kit/test-model/onnx-graph-builder.js";
import { ModelLoadError } from "../../worker/errors.js";
import { padTo } from "../../worker/core/batcher.js";
import type { ChunkEmbedding } from "../../worker/core/heads.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import { ptToFloat32, readPtStateDict } from "../../worker/model-tools/pt-reader.js";
import { backboneReference, type LinearWeights, type ReferenceEmbedding } from "../../kit/bge-m3-reference.js";
import { repoRoot, testConfig, testModel } from "../../kit/harness.js";

const { onnx } = onnxProto;

/** Different lengths in one padded batch; repeated words (max per id) and an emoji (<unk>, dropped). */
const TEXTS = [
  "Yes.",
  "The committee approved the budget after a long debate about the transport plan, the plan for the " +
    "new hospital wing and the plan for the northern district's schools.",
  "A señora presidenta abriu a sesión 🎉 e deu a palabra ao deputado.",
  "What is BGE M3?",
  "Order, order! Order in the chamber, please.",
];

interface Tolerance {
  /** float32: every value within `abs`; float16: cosine of dense and of each ColBERT row ≥ `cosine`. */
  abs?: number;
  cosine?: number;
  sparse: number;
}
const FP32: Tolerance = { abs: 1e-5, sparse: 1e-5 };
const FP16: Tolerance = { cosine: 0.999, sparse: 2e-2 };

let root: string;
let sequences: Int32Array[];
let reference: ReferenceEmbedding[];
let heads: { sparse: LinearWeights; colbert: LinearWeights };

async function linearFromPt(file: string): Promise<LinearWeights> {
  const sd = await readPtStateDict(file);
  const [out, inDim] = sd.get("weight")!.shape;
  return { weight: ptToFloat32(sd.get("weight")!), bias: ptToFloat32(sd.get("bias")!), out, in: inDim };
}

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "model-layouts-"));
  for (const layout of EXPORT_LAYOUTS) await writeExportLayout(path.join(root, layout), layout);
  const backbone = locateModelFiles(path.join(root, "backbone"));
  const { tokenizerPath, eosId } = backbone;
  const tokenizer = new TokenizerPool({ tokenizerPath, maxLength: 8192, eosId, backend: "js", threads: 1 });
  try {
    sequences = (await tokenizer.encode(TEXTS)).map((t) => t.ids);
  } finally {
    await tokenizer.close();
  }
  heads = {
    sparse: await linearFromPt(path.join(backbone.dir, "sparse_linear.pt")),
    colbert: await linearFromPt(path.join(backbone.dir, "colbert_linear.pt")),
  };
  reference = await backboneReference(backbone.modelPath, sequences, heads, backbone.specialIds);
});

after(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

test("the texts make a padded batch with repeated ids and an <unk>", () => {
  const lengths = sequences.map((s) => s.length);
  assert.ok(Math.max(...lengths) >= 4 * Math.min(...lengths), `lengths ${lengths}`);
  assert.ok(
    sequences.some((s) => s.includes(3)),
    "some text must hold <unk> (id 3)",
  );
  const long = [...sequences[1]];
  assert.ok(long.length > new Set(long).size, "the long text must repeat a token");
  // Weights the reference must drop or merge exist, so the sparse checks below are not vacuous.
  assert.ok(reference.every((r) => r.sparse.size > 0 && r.colbert.length > 0));
});

test("the .pt heads hold the default model's head weights rounded to float16", async () => {
  const files = locateModelFiles(path.join(root, "backbone"));
  const config = JSON.parse(await fs.readFile(path.join(files.dir, "config.json"), "utf8"));
  const o = config._generated_test_model.options;
  const exact = generateHeadWeights(o, false);
  const half = generateHeadWeights(o);
  assert.deepEqual([...heads.sparse.weight], [...half.sparseWeight]);
  assert.deepEqual([...heads.colbert.weight], [...transposed(half.colbertWeight, o.hidden, o.colbertDim)]);
  assert.deepEqual([...heads.colbert.bias], [...half.colbertBias]);
  exact.colbertWeight.forEach((v, i) => assert.ok(Math.abs(v - half.colbertWeight[i]) <= Math.abs(v) / 1024));
  assert.ok(
    exact.colbertWeight.some((v, i) => v !== half.colbertWeight[i]),
    "rounding must change some values",
  );
});

/** Inputs and outputs a layout's ONNX file declares: name → [element type, dims]. */
interface Declared {
  inputs: Map<string, number>;
  outputs: Map<string, [number, string[]]>;
  external: string[];
}

async function declared(modelPath: string): Promise<Declared> {
  const model = onnx.ModelProto.decode(await fs.readFile(modelPath));
  const g = model.graph!;
  const dims = (v: onnxProto.onnx.IValueInfoProto) =>
    v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : String(d.dimValue)));
  const external = g
    .initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)
    .map((t) => t.externalData!.find((e) => e.key === "location")!.value!);
  return {
    inputs: new Map(g.input!.map((v) => [v.name!, v.type!.tensorType!.elemType!])),
    outputs: new Map(g.output!.map((v) => [v.name!, [v.type!.tensorType!.elemType!, dims(v)]])),
    external: [...new Set(external)],
  };
}

test("each layout declares the published names, shapes and element types", async () => {
  const want: Record<string, Record<string, string>> = {
    vecs: { dense_vecs: "batch,32", sparse_vecs: "batch,sequence,1", colbert_vecs: "batch,sequence_minus_1,32" },
    "raw-cls": { dense: "batch,32", sparse: "batch,sequence", colbert: "batch,sequence,32" },
    renamed: {
      dense_embeddings: "batch,32",
      sparse_weights: "batch,sequence,1",
      colbert_vectors: "batch,sequence_minus_1,32",
    },
    "sentence-transformers": { token_embeddings: "batch,sequence,32", sentence_embedding: "batch,32" },
    backbone: { last_hidden_state: "batch,sequence,32" },
  };
  want["vecs-fp16"] = want["vecs-int32"] = want.vecs;
  want["backbone-fp16"] = want.backbone;
  for (const layout of EXPORT_LAYOUTS) {
    const spec = LAYOUT_SPECS[layout];
    const d = await declared(path.join(root, layout, spec.file));
    const outType = spec.float16Outputs ? TensorType.FLOAT16 : TensorType.FLOAT;
    const shapes = Object.fromEntries(
      [...d.outputs].map(([name, [type, dims]]) => {
        assert.equal(type, outType, `${layout} ${name} element type`);
        return [name, dims.join(",")];
      }),
    );
    assert.deepEqual(shapes, want[layout], layout);
    const inType = spec.int32Inputs ? TensorType.INT32 : TensorType.INT64;
    assert.deepEqual(
      [...d.inputs],
      [
        ["input_ids", inType],
        ["attention_mask", inType],
      ],
      layout,
    );
    assert.deepEqual(d.external, spec.externalData ? [spec.externalData] : [], `${layout} external data`);
    const pt = await fs.readdir(path.join(root, layout)).then((f) => f.filter((n) => n.endsWith(".pt")).sort());
    assert.deepEqual(pt, spec.headFiles ? ["colbert_linear.pt", "sparse_linear.pt"] : [], `${layout} head files`);
  }
});

test("every layout folder holds the default test model's tokenizer and config files", async () => {
  const base = await testModel();
  const read = (file: string) => fs.readFile(file, "utf8");
  const config = async (file: string) => {
    const c = JSON.parse(await read(file));
    delete c._generated_test_model.optionsHash;
    return c;
  };
  const want = await config(base.configPath);
  for (const layout of EXPORT_LAYOUTS) {
    const dir = path.join(root, layout);
    assert.equal(await read(path.join(dir, "tokenizer.json")), await read(base.tokenizerPath), layout);
    assert.equal(await read(path.join(dir, "tokenizer_config.json")), await read(base.tokenizerConfigPath), layout);
    const got = await config(path.join(dir, "config.json"));
    assert.equal(got._generated_test_model.layout, layout);
    delete got._generated_test_model.layout;
    assert.deepEqual(got, want, layout);
  }
});

test("gen-model --layout writes a layout folder (in onnx/ on request); an unknown layout is refused", async () => {
  const cli = path.join(repoRoot, "dist", "kit", "test-model", "cli.js");
  const out = path.join(root, "cli-renamed");
  const { stdout } = await promisify(execFile)(process.execPath, [cli, "--out", out, "--layout", "renamed"]);
  assert.match(stdout, /bge_m3_model\.onnx_data/);
  const files = await fs.readdir(out);
  for (const f of ["bge_m3_model.onnx", "bge_m3_model.onnx_data", "tokenizer.json", "config.json"]) {
    assert.ok(files.includes(f), `${f} in ${files}`);
  }
  const sub = path.join(root, "cli-backbone");
  await promisify(execFile)(process.execPath, [cli, "--out", sub, "--layout", "backbone", "--onnx-subfolder"]);
  assert.equal(locateModelFiles(sub).modelPath, path.join(sub, "onnx", "model.onnx"));
  await fs.access(path.join(sub, "sparse_linear.pt"));
  await assert.rejects(promisify(execFile)(process.execPath, [cli, "--out", out, "--layout", "nope"]), (err: Error) => {
    assert.match(String((err as Error & { stderr: string }).stderr), /expected one of vecs, vecs-fp16/);
    return true;
  });
});

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** The worst agreement seen in one layout's comparison, reported as a test diagnostic. */
class Worst {
  abs = 0;
  cosine = 1;
  sparse = 0;

  toString(): string {
    return (
      `max |Δ| ${this.abs.toExponential(1)}, max 1 - cosine ${(1 - this.cosine).toExponential(1)}, ` +
      `max sparse |Δ| ${this.sparse.toExponential(1)}`
    );
  }
}

type Vector = ArrayLike<number>;

function assertVectorClose(actual: Vector, expected: Vector, tol: Tolerance, what: string, worst: Worst): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const c = cosine(actual, expected);
  worst.cosine = Math.min(worst.cosine, c);
  let max = 0;
  for (let i = 0; i < actual.length; i++) max = Math.max(max, Math.abs(actual[i] - expected[i]));
  worst.abs = Math.max(worst.abs, max);
  if (tol.cosine !== undefined) assert.ok(c >= tol.cosine, `${what}: cosine ${c} < ${tol.cosine}`);
  else assert.ok(max <= tol.abs!, `${what}: max |Δ| ${max.toExponential(2)} > ${tol.abs}`);
}

/** Sparse weights over the union of ids (an id one side lacks weighs 0). */
function assertSparseClose(
  actual: ChunkEmbedding["sparse"],
  expected: Map<number, number>,
  tol: number,
  what: string,
  worst: Worst,
): void {
  const got = new Map<number, number>();
  actual!.indices.forEach((id, k) => got.set(id, actual!.values[k]));
  for (const id of new Set([...got.keys(), ...expected.keys()])) {
    const a = got.get(id) ?? 0;
    const e = expected.get(id) ?? 0;
    worst.sparse = Math.max(worst.sparse, Math.abs(a - e));
    assert.ok(Math.abs(a - e) <= tol, `${what} id ${id}: ${a} vs ${e}`);
  }
}

function assertMatchesReference(out: ChunkEmbedding[], provides: LayoutOutput[], tol: Tolerance): Worst {
  const worst = new Worst();
  out.forEach((e, i) => {
    const ref = reference[i];
    assertVectorClose(e.dense!, ref.dense, tol, `text ${i} dense`, worst);
    if (provides.includes("sparse")) assertSparseClose(e.sparse, ref.sparse, tol.sparse, `text ${i} sparse`, worst);
    else assert.equal(e.sparse, undefined);
    if (!provides.includes("colbert")) return assert.equal(e.colbert, undefined);
    const d = e.colbertDim!;
    assert.equal(e.colbert!.length / d, ref.colbert.length, `text ${i}: ColBERT rows (length - 1, </s> included)`);
    ref.colbert.forEach((row, r) => {
      assertVectorClose(e.colbert!.subarray(r * d, (r + 1) * d), row, tol, `text ${i} colbert ${r}`, worst);
    });
  });
  return worst;
}

for (const layout of EXPORT_LAYOUTS) {
  const spec = LAYOUT_SPECS[layout];
  const tol = spec.float16Outputs ? FP16 : FP32;
  const bound = tol.abs !== undefined ? `within ${tol.abs}` : `cosine ≥ ${tol.cosine}, sparse within ${tol.sparse}`;
  const name = `${layout}: the worker's ${spec.provides.join(", ")} equal FlagEmbedding's post-processing (${bound})`;
  test(name, async (t) => {
    const dir = path.join(root, layout);
    const files = locateModelFiles(dir);
    assert.equal(files.modelPath, path.join(dir, spec.file));
    const model = await OnnxModel.load(testConfig({ MODEL_DIR: dir, OUTPUTS: spec.provides.join(",") }), files);
    try {
      assert.deepEqual(model.info.outputs, spec.provides);
      const out = await model.embed({ sequences, paddedLength: padTo(Math.max(...sequences.map((s) => s.length)), 8) });
      t.diagnostic(`${layout}: ${assertMatchesReference(out, spec.provides, tol)}`);
    } finally {
      await model.close();
    }
  });
}

for (const layout of EXPORT_LAYOUTS.filter((l) => LAYOUT_SPECS[l].heads === "backbone")) {
  test(`${layout}: asking for sparse fails at start-up, naming the output and prepare-model`, async () => {
    const dir = path.join(root, layout);
    await assert.rejects(
      OnnxModel.load(testConfig({ MODEL_DIR: dir, OUTPUTS: "dense,sparse" }), locateModelFiles(dir)),
      (err: Error) => {
        assert.ok(err instanceof ModelLoadError, `${err.name}: ${err.message}`);
        assert.match(err.message, /sparse/);
        assert.match(err.message, /last_hidden_state/);
        assert.match(err.message, /prepare-model/);
        return true;
      },
    );
  });
}
