/**
 * Writes the ONNX graph of the tiny BGE-M3-shaped encoder.
 *
 * The structure follows XLM-RoBERTa + the BGE-M3 heads closely enough that
 * the runtime behaviour a worker depends on is real:
 *  - position ids come from `input_ids != pad` (cumsum), exactly as XLM-R
 *    derives them, so the position table overflows past maxPositions - 2 tokens;
 *  - attention honours `attention_mask` with an additive bias, so right
 *    padding does not change the vectors of real tokens;
 *  - ids outside [0, vocabSize) make ORT fail like an out-of-range Gather on
 *    the real 250002-row table.
 * Trade-off: the word table is *hashed* (two small coprime tables) instead of
 * 250002 rows, keeping the file small while still giving every XLM-R id a
 * distinct embedding. That is also the one place a bounds check must be
 * added explicitly (the vocab guard below).
 */
import { OnnxGraphBuilder, type Dim } from "./onnx-graph-builder.js";
import type { TinyBgeM3Config } from "./tiny-bge-m3-config.js";
import type { Matrix, TinyBgeM3LayerWeights, TinyBgeM3Weights } from "./tiny-bge-m3-weights.js";

export const INPUT_NAMES = ["input_ids", "attention_mask"] as const;
export const M3_OUTPUT_NAMES = ["dense_vecs", "sparse_vecs", "colbert_vecs"] as const;
export const HIDDEN_STATE_OUTPUT_NAMES = ["last_hidden_state"] as const;

/** Additive attention bias for masked keys; large enough that exp() underflows to 0. */
export const MASKED_ATTENTION_BIAS = -1e9;
/** Floor of the L2 norm before dividing, as torch.nn.functional.normalize does. */
export const NORMALIZE_EPS = 1e-12;

const INT64_MAX = 9223372036854775807n;
const BATCH: Dim = "batch_size";
const SEQ: Dim = "sequence_length";

const SHARED_CONSTANTS = {
  one: 1,
  half: 0.5,
  inv_sqrt2: Math.SQRT1_2,
  normalize_eps: NORMALIZE_EPS,
  masked_attention_bias: MASKED_ATTENTION_BIAS,
} as const;

class TinyBgeM3GraphWriter {
  private readonly g = new OnnxGraphBuilder();
  private readonly constants = new Map<keyof typeof SHARED_CONSTANTS, string>();

  constructor(
    private readonly config: TinyBgeM3Config,
    private readonly w: TinyBgeM3Weights,
  ) {}

  /** Shared scalar, added on first use so no layout carries unused initializers. */
  private constant(name: keyof typeof SHARED_CONSTANTS): string {
    let tensor = this.constants.get(name);
    if (tensor === undefined) {
      tensor = this.g.floatScalar(`const.${name}`, SHARED_CONSTANTS[name]);
      this.constants.set(name, tensor);
    }
    return tensor;
  }

  private linear(x: string, m: Matrix, bias: Float32Array, name: string): string {
    const wName = this.g.floatTensor(`${name}.weight`, [m.rows, m.cols], m.data);
    const bName = this.g.floatTensor(`${name}.bias`, [bias.length], bias);
    return this.g.op("Add", [this.g.op("MatMul", [x, wName], {}, name), bName], {}, `${name}_bias`);
  }

  private layerNorm(x: string, gainV: Float32Array, biasV: Float32Array, name: string): string {
    const s = this.g.floatTensor(`${name}.gain`, [gainV.length], gainV);
    const b = this.g.floatTensor(`${name}.bias`, [biasV.length], biasV);
    return this.g.op("LayerNormalization", [x, s, b], { axis: -1, epsilon: { float: this.config.layerNormEps } }, name);
  }

  private l2Normalize(x: string, name: string): string {
    const norm = this.g.op("ReduceL2", [x], { axes: [-1], keepdims: 1 }, `${name}_norm`);
    const safe = this.g.op("Max", [norm, this.constant("normalize_eps")], {}, `${name}_norm_floor`);
    return this.g.op("Div", [x, safe], {}, name);
  }

  /** Hashed word embedding + XLM-R position embedding + LayerNorm. */
  private embeddings(ids: string): string {
    const { hashModuli, vocabSize, padTokenId } = this.config;
    const g = this.g;
    let sum = "";
    this.w.wordTables.forEach((table, i) => {
      const mod = g.int64Scalar(`embeddings.word.${i}.modulus`, BigInt(hashModuli[i]));
      const row = g.op("Mod", [ids, mod], { fmod: 0 }, `word_${i}_row`);
      const tableName = g.floatTensor(`embeddings.word.${i}.table`, [table.rows, table.cols], table.data);
      const emb = g.op("Gather", [tableName, row], { axis: 0 }, `word_${i}_embedding`);
      sum = sum === "" ? emb : g.op("Add", [sum, emb], {}, "word_embedding");
    });
    // Vocab guard: floor(id / vocabSize) must index a 1-row table, so ids >= vocabSize fail.
    const vocab = g.int64Scalar("embeddings.vocab_size", BigInt(vocabSize));
    const bucket = g.op("Div", [ids, vocab], {}, "vocab_bucket");
    const guardTable = g.floatTensor("embeddings.vocab_guard", [1], Float32Array.of(0));
    const guard = g.op("Gather", [guardTable, bucket], { axis: 0 }, "vocab_guard");
    const guardAxes = g.int64Tensor("embeddings.vocab_guard.axes", [1], [2n]);
    sum = g.op("Add", [sum, g.op("Unsqueeze", [guard, guardAxes], {}, "vocab_guard_3d")], {}, "word_embedding_checked");

    const pad = g.int64Scalar("embeddings.pad_token_id", BigInt(padTokenId));
    const notPad = g.op("Cast", [g.op("Not", [g.op("Equal", [ids, pad], {}, "is_pad")], {}, "not_pad")], { to: 7 }, "not_pad_i64");
    const axis = g.int64Scalar("embeddings.position_axis", 1n);
    const running = g.op("CumSum", [notPad, axis], {}, "position_running");
    const positions = g.op("Add", [g.op("Mul", [running, notPad], {}, "position_masked"), pad], {}, "position_ids");
    const posTable = g.floatTensor("embeddings.position.table", [this.w.positionTable.rows, this.w.positionTable.cols], this.w.positionTable.data);
    const posEmb = g.op("Gather", [posTable, positions], { axis: 0 }, "position_embedding");
    const total = g.op("Add", [sum, posEmb], {}, "embedding_sum");
    return this.layerNorm(total, this.w.embeddingNormGain, this.w.embeddingNormBias, "embeddings.norm");
  }

  /** `[B,S]` int64 mask -> `[B,1,1,S]` additive float bias. */
  private attentionBias(mask: string): string {
    const g = this.g;
    const maskF = g.op("Cast", [mask], { to: 1 }, "mask_float");
    const inverted = g.op("Sub", [this.constant("one"), maskF], {}, "mask_inverted");
    const bias = g.op("Mul", [inverted, this.constant("masked_attention_bias")], {}, "mask_bias");
    const axes = g.int64Tensor("attention.bias_axes", [2], [1n, 2n]);
    return g.op("Unsqueeze", [bias, axes], {}, "mask_bias_4d");
  }

  private attention(x: string, bias: string, lw: TinyBgeM3LayerWeights, p: string): string {
    const g = this.g;
    const { numAttentionHeads: nh, hiddenSize: h } = this.config;
    const dh = h / nh;
    const splitShape = g.int64Tensor(`${p}split_shape`, [4], [0n, 0n, BigInt(nh), BigInt(dh)]);
    const mergeShape = g.int64Tensor(`${p}merge_shape`, [3], [0n, 0n, BigInt(h)]);
    const heads = (t: string, perm: number[], name: string) =>
      g.op("Transpose", [g.op("Reshape", [t, splitShape], {}, `${name}_split`)], { perm }, `${name}_heads`);
    const q = heads(this.linear(x, lw.query, lw.queryBias, `${p}query`), [0, 2, 1, 3], `${p}q`);
    const kT = heads(this.linear(x, lw.key, lw.keyBias, `${p}key`), [0, 2, 3, 1], `${p}k`);
    const v = heads(this.linear(x, lw.value, lw.valueBias, `${p}value`), [0, 2, 1, 3], `${p}v`);
    const scale = g.floatScalar(`${p}score_scale`, 1 / Math.sqrt(dh));
    const scores = g.op("Mul", [g.op("MatMul", [q, kT], {}, `${p}scores_raw`), scale], {}, `${p}scores`);
    const probs = g.op("Softmax", [g.op("Add", [scores, bias], {}, `${p}scores_masked`)], { axis: -1 }, `${p}probs`);
    const ctx = g.op("MatMul", [probs, v], {}, `${p}context`);
    const merged = g.op("Reshape", [g.op("Transpose", [ctx], { perm: [0, 2, 1, 3] }, `${p}context_t`), mergeShape], {}, `${p}context_merged`);
    const projected = this.linear(merged, lw.attentionOut, lw.attentionOutBias, `${p}attention.out`);
    const residual = g.op("Add", [projected, x], {}, `${p}attention_residual`);
    return this.layerNorm(residual, lw.attentionNormGain, lw.attentionNormBias, `${p}attention.norm`);
  }

  /** Exact (erf) GELU feed-forward block, as XLM-R's hidden_act "gelu". */
  private feedForward(x: string, lw: TinyBgeM3LayerWeights, p: string): string {
    const g = this.g;
    const pre = this.linear(x, lw.intermediate, lw.intermediateBias, `${p}intermediate`);
    const erf = g.op("Erf", [g.op("Mul", [pre, this.constant("inv_sqrt2")], {}, `${p}gelu_scaled`)], {}, `${p}gelu_erf`);
    const gate = g.op("Mul", [g.op("Add", [erf, this.constant("one")], {}, `${p}gelu_gate`), this.constant("half")], {}, `${p}gelu_half`);
    const act = g.op("Mul", [pre, gate], {}, `${p}gelu`);
    const out = this.linear(act, lw.output, lw.outputBias, `${p}output`);
    const residual = g.op("Add", [out, x], {}, `${p}output_residual`);
    return this.layerNorm(residual, lw.outputNormGain, lw.outputNormBias, `${p}output.norm`);
  }

  /** FlagEmbedding's BGE-M3 heads: CLS dense, ReLU sparse, masked ColBERT. */
  private m3Heads(hidden: string, mask: string): void {
    const g = this.g;
    const h = this.config.hiddenSize;
    const cls = g.op("Gather", [hidden, g.int64Scalar("heads.cls_index", 0n)], { axis: 1 }, "cls");
    g.output(this.l2Normalize(cls, "dense"), "dense_vecs", "float32", [BATCH, h]);

    const sparse = g.op("Relu", [this.linear(hidden, this.w.sparseLinear, this.w.sparseBias, "sparse_linear")], {}, "sparse");
    g.output(sparse, "sparse_vecs", "float32", [BATCH, SEQ, 1]);

    const starts = g.int64Tensor("heads.colbert_starts", [1], [1n]);
    const ends = g.int64Tensor("heads.colbert_ends", [1], [INT64_MAX]);
    const axes = g.int64Tensor("heads.colbert_axes", [1], [1n]);
    const tokens = g.op("Slice", [hidden, starts, ends, axes], {}, "colbert_tokens");
    const projected = this.linear(tokens, this.w.colbertLinear, this.w.colbertBias, "colbert_linear");
    const maskTail = g.op("Cast", [g.op("Slice", [mask, starts, ends, axes], {}, "colbert_mask")], { to: 1 }, "colbert_mask_f");
    const maskAxes = g.int64Tensor("heads.colbert_mask_axes", [1], [2n]);
    const masked = g.op("Mul", [projected, g.op("Unsqueeze", [maskTail, maskAxes], {}, "colbert_mask_3d")], {}, "colbert_masked");
    g.output(this.l2Normalize(masked, "colbert"), "colbert_vecs", "float32", [BATCH, "colbert_length", h]);
  }

  build(): Uint8Array {
    const g = this.g;
    const ids = g.input("input_ids", "int64", [BATCH, SEQ]);
    const mask = g.input("attention_mask", "int64", [BATCH, SEQ]);
    let hidden = this.embeddings(ids);
    // With no layers nothing attends, and an unused bias would only draw ORT warnings.
    const bias = this.w.layers.length > 0 ? this.attentionBias(mask) : "";
    this.w.layers.forEach((lw, i) => {
      hidden = this.feedForward(this.attention(hidden, bias, lw, `layer.${i}.`), lw, `layer.${i}.`);
    });
    if (this.config.layout === "m3-heads") this.m3Heads(hidden, mask);
    else g.output(hidden, "last_hidden_state", "float32", [BATCH, SEQ, this.config.hiddenSize]);
    return g.build("tiny_bge_m3", {
      name: "tiny-bge-m3-test-generator",
      version: "1",
      docString: `Tiny BGE-M3-shaped test model (random weights, not for real retrieval): ${JSON.stringify(this.config)}`,
    });
  }
}

/** Serialise the tiny model for `config` with parameters `weights`. */
export function writeTinyBgeM3Graph(config: TinyBgeM3Config, weights: TinyBgeM3Weights): Uint8Array {
  return new TinyBgeM3GraphWriter(config, weights).build();
}
