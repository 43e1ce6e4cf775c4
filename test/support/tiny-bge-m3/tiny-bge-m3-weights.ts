/**
 * Deterministic parameters of the tiny BGE-M3-shaped model.
 *
 * Every tensor gets its own PRNG stream keyed by (seed, tensor name), so the
 * ONNX graph builder and the plain-JavaScript reference forward pass read the
 * very same numbers without either one depending on the other's draw order.
 * Trade-off: scales are picked to keep activations lively (std ~ 1/sqrt(fan-in))
 * rather than to imitate a trained checkpoint.
 */
import { streamFor } from "./seeded-random.js";
import type { TinyBgeM3Config } from "./tiny-bge-m3-config.js";

/** A row-major float32 matrix `[rows, cols]` (ONNX MatMul right operand). */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

export interface TinyBgeM3LayerWeights {
  readonly query: Matrix;
  readonly queryBias: Float32Array;
  readonly key: Matrix;
  readonly keyBias: Float32Array;
  readonly value: Matrix;
  readonly valueBias: Float32Array;
  readonly attentionOut: Matrix;
  readonly attentionOutBias: Float32Array;
  readonly attentionNormGain: Float32Array;
  readonly attentionNormBias: Float32Array;
  readonly intermediate: Matrix;
  readonly intermediateBias: Float32Array;
  readonly output: Matrix;
  readonly outputBias: Float32Array;
  readonly outputNormGain: Float32Array;
  readonly outputNormBias: Float32Array;
}

export interface TinyBgeM3Weights {
  /** Two hashed word tables, `[hashModuli[i], hidden]`. */
  readonly wordTables: readonly [Matrix, Matrix];
  readonly positionTable: Matrix;
  readonly embeddingNormGain: Float32Array;
  readonly embeddingNormBias: Float32Array;
  readonly layers: readonly TinyBgeM3LayerWeights[];
  /** BGE-M3 `sparse_linear`: hidden -> 1. */
  readonly sparseLinear: Matrix;
  readonly sparseBias: Float32Array;
  /** BGE-M3 `colbert_linear`: hidden -> hidden. */
  readonly colbertLinear: Matrix;
  readonly colbertBias: Float32Array;
}

function matrix(seed: number, name: string, rows: number, cols: number, std: number): Matrix {
  return { rows, cols, data: streamFor(seed, name).weights(rows * cols, std) };
}

function vector(seed: number, name: string, size: number, std: number): Float32Array {
  return streamFor(seed, name).weights(size, std);
}

function gain(seed: number, name: string, size: number): Float32Array {
  return streamFor(seed, name).weightsAround(size, 1, 0.1);
}

function layerWeights(config: TinyBgeM3Config, index: number): TinyBgeM3LayerWeights {
  const { seed, hiddenSize: h, intermediateSize: inter } = config;
  const p = `layer.${index}.`;
  const hStd = 1 / Math.sqrt(h);
  return {
    query: matrix(seed, `${p}query`, h, h, hStd),
    queryBias: vector(seed, `${p}query.bias`, h, 0.02),
    key: matrix(seed, `${p}key`, h, h, hStd),
    keyBias: vector(seed, `${p}key.bias`, h, 0.02),
    value: matrix(seed, `${p}value`, h, h, hStd),
    valueBias: vector(seed, `${p}value.bias`, h, 0.02),
    attentionOut: matrix(seed, `${p}attention.out`, h, h, hStd),
    attentionOutBias: vector(seed, `${p}attention.out.bias`, h, 0.02),
    attentionNormGain: gain(seed, `${p}attention.norm.gain`, h),
    attentionNormBias: vector(seed, `${p}attention.norm.bias`, h, 0.02),
    intermediate: matrix(seed, `${p}intermediate`, h, inter, hStd),
    intermediateBias: vector(seed, `${p}intermediate.bias`, inter, 0.02),
    output: matrix(seed, `${p}output`, inter, h, 1 / Math.sqrt(inter)),
    outputBias: vector(seed, `${p}output.bias`, h, 0.02),
    outputNormGain: gain(seed, `${p}output.norm.gain`, h),
    outputNormBias: vector(seed, `${p}output.norm.bias`, h, 0.02),
  };
}

/** Draw every parameter for `config`. Pure: same config, same numbers. */
export function generateTinyBgeM3Weights(config: TinyBgeM3Config): TinyBgeM3Weights {
  const { seed, hiddenSize: h } = config;
  const [m0, m1] = config.hashModuli;
  const layers: TinyBgeM3LayerWeights[] = [];
  for (let i = 0; i < config.numHiddenLayers; i++) layers.push(layerWeights(config, i));
  return {
    wordTables: [
      matrix(seed, "embeddings.word.0", m0, h, 1),
      matrix(seed, "embeddings.word.1", m1, h, 1),
    ],
    positionTable: matrix(seed, "embeddings.position", config.maxPositionEmbeddings, h, 0.5),
    embeddingNormGain: gain(seed, "embeddings.norm.gain", h),
    embeddingNormBias: vector(seed, "embeddings.norm.bias", h, 0.02),
    layers,
    // LayerNorm output is ~unit scale, so this gives per-token logits of
    // mean 0.5 / std 0.5: most tokens survive the ReLU (as in the real model,
    // where nearly every token carries some lexical weight) yet a few do not,
    // so code that drops zero weights still gets exercised.
    sparseLinear: matrix(seed, "sparse_linear", h, 1, 0.5 / Math.sqrt(h)),
    sparseBias: Float32Array.of(0.5),
    colbertLinear: matrix(seed, "colbert_linear", h, h, 1 / Math.sqrt(h)),
    colbertBias: vector(seed, "colbert_linear.bias", h, 0.02),
  };
}
