/*
 * Writes the published BGE-M3 ONNX export layouts, each from the same generated weights.
 *
 * Users bring exports that differ in output names, shapes, element types, input types, file
 * names and in whether the heads are in the graph at all (issue 12). Every layout here is the
 * same backbone (same seed and options as the default test model) with the same heads, so a
 * test can demand that the worker's vectors agree across layouts and with a from-scratch
 * reference. The heads are the float16-rounded values that the `.pt` files beside the
 * backbone-only layouts hold, so all layouts compute with exactly one set of weights.
 * Trade-off: always regenerates (a layout folder is small and takes well under a second).
 */
import path from "node:path";
import { generateHeadWeights, transposed, type HeadWeights } from "./head-weights.js";
import { TensorType, type Dim, type GraphBuilder } from "./onnx-graph-builder.js";
import {
  BATCH,
  INT64_MAX,
  SEQUENCE,
  SEQUENCE_MINUS_1,
  buildModelGraph,
  l2Normalize,
  type EncoderGraph,
} from "./onnx-model-gen.js";
import { writeLinearPt } from "./pt-writer.js";
import {
  optionsHash,
  planTokenizer,
  resolveOptions,
  writeModelFolder,
  type WriteTestModelOptions,
} from "./write-test-model.js";

export const EXPORT_LAYOUTS = [
  "vecs",
  "vecs-fp16",
  "vecs-int32",
  "raw-cls",
  "renamed",
  "sentence-transformers",
  "backbone",
  "backbone-fp16",
] as const;
export type ExportLayout = (typeof EXPORT_LAYOUTS)[number];

type HeadsKind = "vecs" | "raw" | "sentence-transformers" | "backbone";
export type LayoutOutput = "dense" | "sparse" | "colbert";

export interface LayoutSpec {
  /** ONNX file name inside the folder. */
  file: string;
  /** External-data file for the weights, as torch.onnx / onnx write for models past 2 GB. */
  externalData?: string;
  int32Inputs: boolean;
  float16Outputs: boolean;
  heads: HeadsKind;
  /** ONNX output names for dense, sparse and ColBERT (vecs and raw heads). */
  names?: Record<LayoutOutput, string>;
  /** What the worker can read from the graph alone (backbones need prepare-model for the rest). */
  provides: LayoutOutput[];
  /** sparse_linear.pt and colbert_linear.pt beside the graph, as in BAAI/bge-m3. */
  headFiles: boolean;
}

const VECS = { dense: "dense_vecs", sparse: "sparse_vecs", colbert: "colbert_vecs" };
const ALL: LayoutOutput[] = ["dense", "sparse", "colbert"];
const base = { file: "model.onnx", int32Inputs: false, float16Outputs: false, headFiles: false };

export const LAYOUT_SPECS: Record<ExportLayout, LayoutSpec> = {
  vecs: { ...base, heads: "vecs", names: VECS, provides: ALL },
  "vecs-fp16": { ...base, float16Outputs: true, heads: "vecs", names: VECS, provides: ALL },
  "vecs-int32": { ...base, int32Inputs: true, heads: "vecs", names: VECS, provides: ALL },
  "raw-cls": { ...base, heads: "raw", names: { dense: "dense", sparse: "sparse", colbert: "colbert" }, provides: ALL },
  renamed: {
    ...base,
    file: "bge_m3_model.onnx",
    externalData: "bge_m3_model.onnx_data",
    heads: "vecs",
    names: { dense: "dense_embeddings", sparse: "sparse_weights", colbert: "colbert_vectors" },
    provides: ALL,
  },
  "sentence-transformers": { ...base, heads: "sentence-transformers", provides: ["dense"] },
  backbone: { ...base, heads: "backbone", provides: ["dense"], headFiles: true },
  "backbone-fp16": { ...base, float16Outputs: true, heads: "backbone", provides: ["dense"], headFiles: true },
};

interface HeadCtx extends EncoderGraph {
  weights: HeadWeights;
  spec: LayoutSpec;
}

/** Declares `value` as the graph output `name`, cast to float16 when the layout says so. */
function emit(c: HeadCtx, value: string, name: string, dims: Dim[]): void {
  const fp16 = c.spec.float16Outputs;
  c.g.node(fp16 ? "Cast" : "Identity", [value], fp16 ? { to: TensorType.FLOAT16 } : {}, name);
  c.g.output(name, fp16 ? TensorType.FLOAT16 : TensorType.FLOAT, dims);
}

function cls(c: HeadCtx): string {
  return c.g.node("Gather", [c.hidden, c.g.int64s("cls_index", [0], [])], { axis: 1 });
}

/** x·W + b with the generated (float16-rounded) head weights. */
function linear(g: GraphBuilder, x: string, name: string, w: Float32Array, dims: number[], b: Float32Array): string {
  const weight = g.weight(`${name}.weight`, dims, w);
  const bias = g.weight(`${name}.bias`, [b.length], b);
  return g.node("Add", [g.node("MatMul", [x, weight]), bias]);
}

/** relu(h·w + b): [batch, sequence, 1]. */
function sparseHead(c: HeadCtx): string {
  const { g, o, weights: hw } = c;
  return g.node("Relu", [linear(g, c.hidden, "sparse_linear", hw.sparseWeight, [o.hidden, 1], hw.sparseBias)]);
}

function colbertLinear(c: HeadCtx, x: string): string {
  const { g, o, weights: hw } = c;
  return linear(g, x, "colbert_linear", hw.colbertWeight, [o.hidden, o.colbertDim], hw.colbertBias);
}

/** dense_vecs-style outputs: normalised CLS, sparse [B,L,1], ColBERT rows 1.. masked and normalised. */
function vecsHeads(c: HeadCtx, names: Record<LayoutOutput, string>): void {
  const { g, o } = c;
  emit(c, l2Normalize(g, cls(c), -1, "dense"), names.dense, [BATCH, o.hidden]);
  emit(c, sparseHead(c), names.sparse, [BATCH, SEQUENCE, 1]);
  const axes = g.int64s("colbert_axes", [1]);
  const after = (x: string) => g.node("Slice", [x, g.int64s("starts", [1]), g.bigInt64s("ends", [INT64_MAX]), axes]);
  const tokenMask = g.node("Unsqueeze", [after(c.maskF), g.int64s("colbert_mask_axes", [2])]);
  const masked = g.node("Mul", [colbertLinear(c, after(c.hidden)), tokenMask]);
  emit(c, l2Normalize(g, masked, -1, "colbert"), names.colbert, [BATCH, SEQUENCE_MINUS_1, o.colbertDim]);
}

/** newtechstudio-style raw heads: CLS not normalised, sparse [B,L], ColBERT over every row incl. CLS, unmasked. */
function rawHeads(c: HeadCtx, names: Record<LayoutOutput, string>): void {
  const { g, o } = c;
  emit(c, cls(c), names.dense, [BATCH, o.hidden]);
  emit(c, g.node("Squeeze", [sparseHead(c), g.int64s("sparse_squeeze_axes", [2])]), names.sparse, [BATCH, SEQUENCE]);
  emit(c, colbertLinear(c, c.hidden), names.colbert, [BATCH, SEQUENCE, o.colbertDim]);
}

function addHeads(c: HeadCtx): void {
  const { g, o, spec } = c;
  if (spec.heads === "vecs") vecsHeads(c, spec.names!);
  else if (spec.heads === "raw") rawHeads(c, spec.names!);
  else if (spec.heads === "sentence-transformers") {
    emit(c, c.hidden, "token_embeddings", [BATCH, SEQUENCE, o.hidden]);
    emit(c, l2Normalize(g, cls(c), -1, "sentence"), "sentence_embedding", [BATCH, o.hidden]);
  } else emit(c, c.hidden, "last_hidden_state", [BATCH, SEQUENCE, o.hidden]);
}

export interface ExportLayoutFiles {
  dir: string;
  layout: ExportLayout;
  modelPath: string;
  /** Files written, relative to `dir`, including tokenizer and config files. */
  files: string[];
}

/** Writes `layout` into `dir` from the weights `opts` selects (the default test model's when empty). */
export async function writeExportLayout(
  dir: string,
  layout: ExportLayout,
  opts: WriteTestModelOptions = {},
): Promise<ExportLayoutFiles> {
  const spec = LAYOUT_SPECS[layout];
  if (!spec) throw new Error(`unknown export layout "${layout}"; known: ${EXPORT_LAYOUTS.join(", ")}`);
  const tokenizer = await planTokenizer(opts);
  const o = resolveOptions(opts, tokenizer.vocabSize);
  const weights = generateHeadWeights(o);
  const inputType = spec.int32Inputs ? TensorType.INT32 : TensorType.INT64;
  const { graph } = buildModelGraph(o, { inputType, heads: (e) => addHeads({ ...e, weights, spec }) });
  const doc = `Synthetic BGE-M3 test encoder in the "${layout}" export layout (random weights, seed ${o.seed}).`;
  // onnxSubfolder: the graph (and its data) in onnx/, as in BAAI/bge-m3 and Xenova's repositories.
  const at = (file: string) => (opts.onnxSubfolder ? path.join("onnx", file) : file);
  const files: Array<[string, Uint8Array]> = [];
  if (spec.externalData) {
    const { model, data } = graph.encodeWithExternalData("bge_m3_test_encoder", doc, spec.externalData);
    files.push([at(spec.file), model], [at(spec.externalData), data]);
  } else files.push([at(spec.file), graph.encode("bge_m3_test_encoder", doc)]);
  const hash = optionsHash(o, tokenizer, opts.tokenizerVocabSize, opts.onnxSubfolder, layout);
  await writeModelFolder(dir, o, tokenizer, hash, { files, layout });
  const written = [...files.map(([rel]) => rel), "tokenizer.json", "tokenizer_config.json", "config.json"];
  if (spec.headFiles) written.push(...(await writeHeadFiles(dir, weights)));
  return { dir: path.resolve(dir), layout, modelPath: path.resolve(dir, files[0][0]), files: written };
}

/** sparse_linear.pt and colbert_linear.pt: nn.Linear state dicts in float16, weight [out, in]. */
async function writeHeadFiles(dir: string, hw: HeadWeights): Promise<string[]> {
  const { hidden, colbertDim } = hw;
  await writeLinearPt(
    path.join(dir, "sparse_linear.pt"),
    { data: hw.sparseWeight, shape: [1, hidden] },
    { data: hw.sparseBias, shape: [1] },
  );
  await writeLinearPt(
    path.join(dir, "colbert_linear.pt"),
    { data: transposed(hw.colbertWeight, hidden, colbertDim), shape: [colbertDim, hidden] },
    { data: hw.colbertBias, shape: [colbertDim] },
  );
  return ["sparse_linear.pt", "colbert_linear.pt"];
}

export function isExportLayout(value: string): value is ExportLayout {
  return (EXPORT_LAYOUTS as readonly string[]).includes(value);
}
