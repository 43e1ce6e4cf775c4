/*
 * Builds a small XLM-RoBERTa-shaped encoder as ONNX bytes, with BGE-M3 heads.
 *
 * The graph has the same inputs, outputs and numerics-relevant structure as
 * the community BGE-M3 ONNX exports (mask-derived positions with
 * padding_idx 1, post-LayerNorm blocks, exact Erf GELU, L2-normalised dense
 * and ColBERT heads, ReLU sparse head), so the worker can be exercised end to
 * end without the 2 GB real model. Weights are seeded Gaussian noise: outputs
 * are reproducible and input-sensitive but carry no meaning. Trade-off: there
 * are no graph optimisations or fused ops, which is fine at test sizes.
 */
import { FloatAttr, GraphBuilder, TensorType, type Dim } from "./onnx-graph-builder.js";
import { deriveSeed, fillNormal } from "./prng.js";

export type TestModelOutputs = "bge-m3" | "last_hidden_state";

export interface TestModelOptions {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  /** ColBERT projection size; defaults to `hidden` as in BGE-M3. */
  colbertDim?: number;
  seed?: number;
  outputs: TestModelOutputs;
  withTokenTypeIds?: boolean;
}

export const DEFAULT_SEED = 42;
export const LAYER_NORM_EPS = 1e-5;
/** XLM-R reserves position 1 for padding; real positions start at 2. */
export const PADDING_IDX = 1;
/** Additive attention bias for padded keys, as in the HF BERT family. */
const MASK_BIAS = -10000;
export const INT64_MAX = 0x7fffffffffffffffn;

/*
 * Random-weight encoders collapse toward one shared direction (every text
 * starts with <s> at position 2, and the CLS residual dominates), which would
 * make all dense vectors near-identical. These gains were tuned so unrelated
 * short texts land around cosine 0.3-0.9 rather than 0.99: positions are
 * kept quiet, attention is sharper than uniform (Q and K each scaled by √2,
 * so logits double), and the attention output outweighs the residual.
 */
const POSITION_STD = 0.1;
const QK_GAIN = Math.SQRT2;
const ATTENTION_OUT_GAIN = 2;

export const BATCH: Dim = "batch";
export const SEQUENCE: Dim = "sequence";
export const SEQUENCE_MINUS_1: Dim = "sequence_minus_1";

/** Generates weights; one independent stream per tensor name. */
class WeightFactory {
  constructor(
    private readonly g: GraphBuilder,
    private readonly seed: number,
  ) {}

  normal(name: string, dims: number[], std: number, mean = 0): string {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    return this.g.weight(name, dims, fillNormal(data, deriveSeed(this.seed, name), std, mean));
  }

  /** Embedding table whose `zeroRow` is all zeros, like nn.Embedding(padding_idx). */
  embedding(name: string, rows: number, dim: number, std: number, zeroRow?: number): string {
    const data = fillNormal(new Float32Array(rows * dim), deriveSeed(this.seed, name), std);
    if (zeroRow !== undefined && zeroRow < rows) data.fill(0, zeroRow * dim, (zeroRow + 1) * dim);
    return this.g.weight(name, [rows, dim], data);
  }

  /** Linear layer x·W + b; gain 1 is Xavier-like scaling that keeps activations O(1). */
  linear(x: string, name: string, inDim: number, outDim: number, gain = 1, biasStd = 0.02): string {
    const w = this.normal(`${name}.weight`, [inDim, outDim], gain / Math.sqrt(inDim));
    const b = this.normal(`${name}.bias`, [outDim], biasStd);
    return this.g.node("Add", [this.g.node("MatMul", [x, w]), b]);
  }

  /** LayerNorm over the last axis, with gamma near 1 and beta near 0 as after training. */
  layerNorm(x: string, name: string, size: number): string {
    const gamma = this.normal(`${name}.weight`, [size], 0.05, 1);
    const beta = this.normal(`${name}.bias`, [size], 0.02);
    return this.g.node("LayerNormalization", [x, gamma, beta], { axis: -1, epsilon: new FloatAttr(LAYER_NORM_EPS) });
  }
}

interface Ctx {
  g: GraphBuilder;
  w: WeightFactory;
  o: Required<TestModelOptions>;
  /** Shared constants, created once. */
  c: { one: string; sqrtTwo: string; half: string; oneI64: string };
}

function validate(o: Required<TestModelOptions>): void {
  for (const k of ["vocabSize", "hidden", "layers", "heads", "intermediate", "maxPositions", "colbertDim"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1)
      throw new Error(`TestModelOptions.${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.hidden % o.heads !== 0) throw new Error(`hidden (${o.hidden}) must be divisible by heads (${o.heads})`);
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff)
    throw new Error(`seed must be a 32-bit unsigned integer, got ${o.seed}`);
  if (o.outputs !== "bge-m3" && o.outputs !== "last_hidden_state")
    throw new Error(`unknown outputs kind ${String(o.outputs)}`);
  if (o.maxPositions < 3) throw new Error("maxPositions must leave room for padding_idx and at least one token");
}

export function resolveModelOptions(opts: TestModelOptions): Required<TestModelOptions> {
  // Fixed key order: the resolved object is hashed and written to config.json.
  const o: Required<TestModelOptions> = {
    vocabSize: opts.vocabSize,
    hidden: opts.hidden,
    layers: opts.layers,
    heads: opts.heads,
    intermediate: opts.intermediate,
    maxPositions: opts.maxPositions,
    colbertDim: opts.colbertDim ?? opts.hidden,
    seed: opts.seed ?? DEFAULT_SEED,
    outputs: opts.outputs,
    withTokenTypeIds: opts.withTokenTypeIds ?? false,
  };
  validate(o);
  return o;
}

function embeddings(ctx: Ctx, inputIds: string, mask: string, tokenTypeIds: string | undefined): string {
  const { g, w, o } = ctx;
  const words = g.node(
    "Gather",
    [w.embedding("embeddings.word_embeddings", o.vocabSize, o.hidden, 1, PADDING_IDX), inputIds],
    { axis: 0 },
  );
  // Positions come from the mask, so left or right padding never shifts real tokens.
  const cumsum = g.node("CumSum", [mask, g.int64s("cumsum_axis", [1], [])]);
  const positionIds = g.node("Add", [g.node("Mul", [cumsum, mask]), ctx.c.oneI64], {}, "position_ids");
  const posTable = w.embedding("embeddings.position_embeddings", o.maxPositions, o.hidden, POSITION_STD, PADDING_IDX);
  const positions = g.node("Gather", [posTable, positionIds], { axis: 0 });
  const typeTable = w.normal("embeddings.token_type_embeddings", [1, o.hidden], 0.1);
  const types = tokenTypeIds ? g.node("Gather", [typeTable, tokenTypeIds], { axis: 0 }) : typeTable;
  const sum = g.node("Add", [g.node("Add", [words, positions]), types]);
  return w.layerNorm(sum, "embeddings.LayerNorm", o.hidden);
}

function attention(ctx: Ctx, x: string, maskBias: string, p: string): string {
  const { g, w, o } = ctx;
  const headDim = o.hidden / o.heads;
  const split = g.int64s(`${p}.split_shape`, [0, 0, o.heads, headDim]);
  const heads = (name: string, perm: number[], gain: number): string =>
    g.node("Transpose", [g.node("Reshape", [w.linear(x, `${p}.self.${name}`, o.hidden, o.hidden, gain), split])], {
      perm,
    });
  const q = heads("query", [0, 2, 1, 3], QK_GAIN);
  const kT = heads("key", [0, 2, 3, 1], QK_GAIN);
  const v = heads("value", [0, 2, 1, 3], 1);
  const scale = g.scalarFloat(`${p}.scale`, 1 / Math.sqrt(headDim));
  const scores = g.node("Add", [g.node("Mul", [g.node("MatMul", [q, kT]), scale]), maskBias]);
  const probs = g.node("Softmax", [scores], { axis: -1 });
  const context = g.node("Transpose", [g.node("MatMul", [probs, v])], { perm: [0, 2, 1, 3] });
  const merged = g.node("Reshape", [context, g.int64s(`${p}.merge_shape`, [0, 0, o.hidden])]);
  const projected = w.linear(merged, `${p}.output.dense`, o.hidden, o.hidden, ATTENTION_OUT_GAIN);
  return w.layerNorm(g.node("Add", [projected, x]), `${p}.output.LayerNorm`, o.hidden);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)); the Gelu op itself only exists from opset 20. */
function gelu(ctx: Ctx, x: string): string {
  const { g, c } = ctx;
  const erf = g.node("Erf", [g.node("Div", [x, c.sqrtTwo])]);
  return g.node("Mul", [g.node("Mul", [x, c.half]), g.node("Add", [erf, c.one])]);
}

function encoderLayer(ctx: Ctx, x: string, maskBias: string, i: number): string {
  const { g, w, o } = ctx;
  const p = `encoder.layer.${i}`;
  const attended = attention(ctx, x, maskBias, `${p}.attention`);
  const inner = gelu(ctx, w.linear(attended, `${p}.intermediate.dense`, o.hidden, o.intermediate));
  const out = w.linear(inner, `${p}.output.dense`, o.intermediate, o.hidden);
  return w.layerNorm(g.node("Add", [out, attended]), `${p}.output.LayerNorm`, o.hidden);
}

/** x / max(‖x‖₂, 1e-12) along `axis`, like torch.nn.functional.normalize. */
export function l2Normalize(g: GraphBuilder, x: string, axis: number, name: string, outName?: string): string {
  const norm = g.node("ReduceL2", [x], { axes: [axis], keepdims: 1 });
  const safe = g.node("Max", [norm, g.scalarFloat(`${name}.min_norm`, 1e-12)]);
  return g.node("Div", [x, safe], {}, outName);
}

function bgeM3Heads(ctx: Ctx, hidden: string, maskF: string): void {
  const { g, w, o } = ctx;
  const cls = g.node("Gather", [hidden, g.int64s("cls_index", [0], [])], { axis: 1 });
  l2Normalize(g, cls, -1, "dense", "dense_vecs");
  g.output("dense_vecs", TensorType.FLOAT, [BATCH, o.hidden]);

  const sparseW = w.normal("sparse_linear.weight", [o.hidden, 1], 1 / Math.sqrt(o.hidden));
  // The positive bias makes most real tokens non-zero (as with the real model)
  // while leaving a seed-dependent minority at exactly zero.
  const sparseB = w.normal("sparse_linear.bias", [1], 0.02, 0.5);
  g.node("Relu", [g.node("Add", [g.node("MatMul", [hidden, sparseW]), sparseB])], {}, "sparse_vecs");
  g.output("sparse_vecs", TensorType.FLOAT, [BATCH, SEQUENCE, 1]);

  // ColBERT drops the CLS position; INT64_MAX as the end means "to the last token".
  const starts = g.int64s("colbert_starts", [1]);
  const ends = g.bigInt64s("colbert_ends", [INT64_MAX]);
  const axes = g.int64s("colbert_axes", [1]);
  const tokens = g.node("Slice", [hidden, starts, ends, axes]);
  const projected = w.linear(tokens, "colbert_linear", o.hidden, o.colbertDim);
  const tokenMask = g.node("Unsqueeze", [
    g.node("Slice", [maskF, starts, ends, axes]),
    g.int64s("colbert_mask_axes", [2]),
  ]);
  l2Normalize(g, g.node("Mul", [projected, tokenMask]), -1, "colbert", "colbert_vecs");
  g.output("colbert_vecs", TensorType.FLOAT, [BATCH, SEQUENCE_MINUS_1, o.colbertDim]);
}

/** What the encoder hands to a variant's output heads. */
export interface EncoderGraph {
  g: GraphBuilder;
  o: Required<TestModelOptions>;
  /** last_hidden_state, [batch, sequence, hidden], float32. */
  hidden: string;
  /** attention_mask as float32, [batch, sequence]. */
  maskF: string;
}

/**
 * How a graph differs from the default export (see export-layouts.ts): the inputs' element
 * type and the outputs. Without a variant the graph is the default model, byte for byte.
 */
export interface GraphVariant {
  /** int32 inputs are cast to int64 inside, as ORT's transformer optimizer's `input_int32` does. */
  inputType: typeof TensorType.INT64 | typeof TensorType.INT32;
  /** Adds the graph's outputs in place of `options.outputs`. */
  heads: (encoder: EncoderGraph) => void;
}

function modelInput(g: GraphBuilder, name: string, variant: GraphVariant | undefined): string {
  if (variant?.inputType !== TensorType.INT32) return g.input(name, TensorType.INT64, [BATCH, SEQUENCE]);
  return g.node("Cast", [g.input(name, TensorType.INT32, [BATCH, SEQUENCE])], { to: TensorType.INT64 });
}

/** Builds the graph; exposed separately so callers can read the parameter count. */
export function buildModelGraph(
  opts: TestModelOptions,
  variant?: GraphVariant,
): { graph: GraphBuilder; options: Required<TestModelOptions> } {
  const o = resolveModelOptions(opts);
  const g = new GraphBuilder();
  const w = new WeightFactory(g, o.seed);
  const c = {
    one: g.scalarFloat("const_one", 1),
    sqrtTwo: g.scalarFloat("const_sqrt_two", Math.SQRT2),
    half: g.scalarFloat("const_half", 0.5),
    oneI64: g.int64s("const_one_i64", [1], []),
  };
  const ctx: Ctx = { g, w, o, c };

  const inputIds = modelInput(g, "input_ids", variant);
  const mask = modelInput(g, "attention_mask", variant);
  const tokenTypeIds = o.withTokenTypeIds ? modelInput(g, "token_type_ids", variant) : undefined;

  const maskF = g.node("Cast", [mask], { to: TensorType.FLOAT });
  const extended = g.node("Unsqueeze", [maskF, g.int64s("mask_axes", [1, 2])]);
  const maskBias = g.node("Mul", [g.node("Sub", [c.one, extended]), g.scalarFloat("mask_bias", MASK_BIAS)]);

  let x = embeddings(ctx, inputIds, mask, tokenTypeIds);
  for (let i = 0; i < o.layers; i++) x = encoderLayer(ctx, x, maskBias, i);

  if (variant) {
    variant.heads({ g, o, hidden: x, maskF });
  } else if (o.outputs === "bge-m3") {
    bgeM3Heads(ctx, x, maskF);
  } else {
    g.node("Identity", [x], {}, "last_hidden_state");
    g.output("last_hidden_state", TensorType.FLOAT, [BATCH, SEQUENCE, o.hidden]);
  }
  return { graph: g, options: o };
}

/** Serialised ONNX model. Same options → byte-identical output. */
export function generateModelBytes(opts: TestModelOptions): Uint8Array {
  const { graph, options } = buildModelGraph(opts);
  const doc = `Synthetic XLM-RoBERTa-shaped test encoder (random weights, seed ${options.seed}); not a real embedding model.`;
  return graph.encode("bge_m3_test_encoder", doc);
}

/** Number of trainable weights the options imply, without building the model. */
export function countParameters(opts: TestModelOptions): number {
  const o = resolveModelOptions(opts);
  const { hidden: h, intermediate: f } = o;
  const ln = 2 * h;
  const emb = (o.vocabSize + o.maxPositions + 1) * h + ln;
  const layer = 4 * (h * h + h) + ln + (h * f + f) + (f * h + h) + ln;
  const heads = o.outputs === "bge-m3" ? h + 1 + h * o.colbertDim + o.colbertDim : 0;
  return emb + o.layers * layer + heads;
}
