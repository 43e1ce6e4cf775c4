/**
 * Options and resolved configuration for the tiny BGE-M3-shaped test model.
 *
 * The model keeps BGE-M3's *interface* (XLM-R 250,002-token id space, pad id
 * 1, learned absolute positions up to 8194, CLS dense pooling, sparse and
 * ColBERT heads, the same ONNX input/output names) while shrinking every
 * width so a model builds in milliseconds and runs on a laptop CPU. What it
 * trades: the numbers mean nothing linguistically; only shapes, masking,
 * padding behaviour and determinism are faithful.
 */

/** Which outputs the ONNX graph exposes. */
export type TinyBgeM3Layout =
  /** `dense_vecs`, `sparse_vecs`, `colbert_vecs`, like the FlagEmbedding-style exports. */
  | "m3-heads"
  /** Only `last_hidden_state`, like a plain Optimum/transformers export of XLMRobertaModel. */
  | "last-hidden-state";

export interface TinyBgeM3Options {
  /** PRNG seed; the same seed and options always give byte-identical files. */
  seed?: number;
  /** Size of the token-id space the model accepts. BGE-M3: 250002. */
  vocabSize?: number;
  /** Width of every hidden vector, and so of dense and ColBERT vectors. */
  hiddenSize?: number;
  numAttentionHeads?: number;
  numHiddenLayers?: number;
  intermediateSize?: number;
  /** Rows of the position table; usable sequence length is this minus 2. BGE-M3: 8194. */
  maxPositionEmbeddings?: number;
  layout?: TinyBgeM3Layout;
}

export interface TinyBgeM3Config {
  readonly seed: number;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numAttentionHeads: number;
  readonly numHiddenLayers: number;
  readonly intermediateSize: number;
  readonly maxPositionEmbeddings: number;
  readonly layout: TinyBgeM3Layout;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly layerNormEps: number;
  /**
   * Moduli of the hashed word embedding. Two coprime tables stand in for one
   * 250002-row table: ids below their product get distinct embedding pairs.
   */
  readonly hashModuli: readonly [number, number];
}

/** Thrown when the requested options cannot describe a valid model. */
export class TinyModelConfigError extends Error {
  constructor(message: string) {
    super(`Invalid tiny BGE-M3 model options: ${message}`);
    this.name = "TinyModelConfigError";
  }
}

/** BGE-M3's real special-token ids and limits (from its config.json). */
export const BGE_M3_INTERFACE = Object.freeze({
  vocabSize: 250002,
  maxPositionEmbeddings: 8194,
  padTokenId: 1,
  bosTokenId: 0,
  eosTokenId: 2,
  layerNormEps: 1e-5,
});

export const DEFAULT_TINY_BGE_M3_OPTIONS: Required<TinyBgeM3Options> = Object.freeze({
  seed: 1234,
  vocabSize: BGE_M3_INTERFACE.vocabSize,
  hiddenSize: 32,
  numAttentionHeads: 4,
  numHiddenLayers: 2,
  intermediateSize: 64,
  maxPositionEmbeddings: BGE_M3_INTERFACE.maxPositionEmbeddings,
  layout: "m3-heads",
});

const HASH_MODULI: readonly [number, number] = [1021, 1019];

function requireInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TinyModelConfigError(
      `${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
}

/** Fill defaults and check the combination; throws TinyModelConfigError. */
export function resolveTinyBgeM3Config(options: TinyBgeM3Options = {}): TinyBgeM3Config {
  const o = { ...DEFAULT_TINY_BGE_M3_OPTIONS, ...stripUndefined(options) };
  requireInt("seed", o.seed, 0, 0xffffffff);
  // Ids 0..3 are BGE-M3's special tokens; a smaller space would not fit them.
  requireInt("vocabSize", o.vocabSize, 4, HASH_MODULI[0] * HASH_MODULI[1]);
  requireInt("hiddenSize", o.hiddenSize, 1, 4096);
  requireInt("numAttentionHeads", o.numAttentionHeads, 1, o.hiddenSize);
  requireInt("numHiddenLayers", o.numHiddenLayers, 0, 48);
  requireInt("intermediateSize", o.intermediateSize, 1, 16384);
  // Positions start at padTokenId + 1 = 2, so at least one real token needs 3 rows.
  requireInt("maxPositionEmbeddings", o.maxPositionEmbeddings, 3, 1 << 20);
  if (o.hiddenSize % o.numAttentionHeads !== 0) {
    throw new TinyModelConfigError(
      `hiddenSize (${o.hiddenSize}) must be divisible by numAttentionHeads (${o.numAttentionHeads})`,
    );
  }
  if (o.layout !== "m3-heads" && o.layout !== "last-hidden-state") {
    throw new TinyModelConfigError(
      `layout must be "m3-heads" or "last-hidden-state", got ${JSON.stringify(o.layout)}`,
    );
  }
  return Object.freeze({
    seed: o.seed,
    vocabSize: o.vocabSize,
    hiddenSize: o.hiddenSize,
    numAttentionHeads: o.numAttentionHeads,
    numHiddenLayers: o.numHiddenLayers,
    intermediateSize: o.intermediateSize,
    maxPositionEmbeddings: o.maxPositionEmbeddings,
    layout: o.layout,
    padTokenId: BGE_M3_INTERFACE.padTokenId,
    bosTokenId: BGE_M3_INTERFACE.bosTokenId,
    eosTokenId: BGE_M3_INTERFACE.eosTokenId,
    layerNormEps: BGE_M3_INTERFACE.layerNormEps,
    hashModuli: HASH_MODULI,
  });
}

function stripUndefined(options: TinyBgeM3Options): TinyBgeM3Options {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as TinyBgeM3Options;
}

/** Longest input (special tokens included) the position table can hold. */
export function maxSequenceLength(config: TinyBgeM3Config): number {
  return config.maxPositionEmbeddings - config.padTokenId - 1;
}

/**
 * A Hugging Face style config.json for the tiny model, so code that reads
 * hidden_size / max_position_embeddings from the real BGE-M3 config works
 * unchanged against the test model.
 */
export function toHuggingFaceConfigJson(config: TinyBgeM3Config): Record<string, unknown> {
  return {
    _name_or_path: "tiny-bge-m3-test-model",
    architectures: ["XLMRobertaModel"],
    model_type: "xlm-roberta",
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    pad_token_id: config.padTokenId,
    hidden_act: "gelu",
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    layer_norm_eps: config.layerNormEps,
    max_position_embeddings: config.maxPositionEmbeddings,
    num_attention_heads: config.numAttentionHeads,
    num_hidden_layers: config.numHiddenLayers,
    position_embedding_type: "absolute",
    torch_dtype: "float32",
    type_vocab_size: 1,
    vocab_size: config.vocabSize,
    tiny_bge_m3: { seed: config.seed, layout: config.layout, hash_moduli: config.hashModuli },
  };
}
