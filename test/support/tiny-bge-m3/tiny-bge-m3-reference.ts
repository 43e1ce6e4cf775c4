/**
 * Plain-JavaScript forward pass of the tiny BGE-M3-shaped model, in float64.
 *
 * It is written from the architecture description (XLM-R embeddings, post-LN
 * encoder layers, FlagEmbedding's dense/sparse/ColBERT heads), not from the
 * ONNX graph, and shares only the parameters with it. Tests use it as an
 * oracle: if a node in the graph is mis-wired, ORT and this function disagree.
 * Trade-off: it is slow (naive loops) and meant for a handful of short
 * sequences, never for benchmarks.
 */
import type { TinyBgeM3Config } from "./tiny-bge-m3-config.js";
import type { Matrix, TinyBgeM3LayerWeights, TinyBgeM3Weights } from "./tiny-bge-m3-weights.js";

type Vec = Float64Array;

export interface ReferenceOutputs {
  /** Per sequence, per token hidden vector `[S][H]`. */
  readonly lastHiddenState: Vec[][];
  /** `[B][H]`, unit length. */
  readonly denseVecs: Vec[];
  /** `[B][S]` ReLU weights, pads included (the model does not mask them). */
  readonly sparseVecs: number[][];
  /** `[B][S-1][H]`, zero where attention_mask is 0. */
  readonly colbertVecs: Vec[][];
}

/** Thrown when the reference is given ids the real model would reject. */
export class ReferenceInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReferenceInputError";
  }
}

function affine(x: Vec, m: Matrix, bias: Float32Array): Vec {
  const out = new Float64Array(m.cols);
  for (let j = 0; j < m.cols; j++) {
    let acc = bias[j];
    for (let i = 0; i < m.rows; i++) acc += x[i] * m.data[i * m.cols + j];
    out[j] = acc;
  }
  return out;
}

function layerNorm(x: Vec, gain: Float32Array, bias: Float32Array, eps: number): Vec {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2;
  variance /= x.length;
  const inv = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * inv * gain[i] + bias[i]);
}

/** erf via Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, ample for a 1e-4 comparison). */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-a * a));
}

function l2Normalize(x: Vec, eps: number): Vec {
  let sq = 0;
  for (const v of x) sq += v * v;
  const norm = Math.max(Math.sqrt(sq), eps);
  return x.map((v) => v / norm);
}

function row(m: Matrix, index: number): Vec {
  return Float64Array.from(m.data.subarray(index * m.cols, (index + 1) * m.cols));
}

function embed(ids: readonly number[], config: TinyBgeM3Config, w: TinyBgeM3Weights): Vec[] {
  let running = 0;
  return ids.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      throw new ReferenceInputError(`token id ${id} is outside [0, ${config.vocabSize})`);
    }
    // XLM-R: positions count non-pad tokens and start after padding_idx; pads sit at padding_idx.
    const isPad = id === config.padTokenId;
    if (!isPad) running++;
    const position = isPad ? config.padTokenId : running + config.padTokenId;
    if (position >= config.maxPositionEmbeddings) {
      throw new ReferenceInputError(`position ${position} exceeds the ${config.maxPositionEmbeddings}-row table`);
    }
    const a = row(w.wordTables[0], id % config.hashModuli[0]);
    const b = row(w.wordTables[1], id % config.hashModuli[1]);
    const p = row(w.positionTable, position);
    const sum = a.map((v, i) => v + b[i] + p[i]);
    return layerNorm(sum, w.embeddingNormGain, w.embeddingNormBias, config.layerNormEps);
  });
}

function attention(xs: Vec[], mask: readonly number[], lw: TinyBgeM3LayerWeights, config: TinyBgeM3Config): Vec[] {
  const nh = config.numAttentionHeads;
  const dh = config.hiddenSize / nh;
  const q = xs.map((x) => affine(x, lw.query, lw.queryBias));
  const k = xs.map((x) => affine(x, lw.key, lw.keyBias));
  const v = xs.map((x) => affine(x, lw.value, lw.valueBias));
  return xs.map((x, t) => {
    const context = new Float64Array(config.hiddenSize);
    for (let head = 0; head < nh; head++) {
      const off = head * dh;
      // Masked keys get probability exactly 0 in float32 ORT as well, so skip them.
      const scores = k.map((kk, s) => {
        if (mask[s] === 0) return -Infinity;
        let dot = 0;
        for (let d = 0; d < dh; d++) dot += q[t][off + d] * kk[off + d];
        return dot / Math.sqrt(dh);
      });
      const max = Math.max(...scores);
      const exps = scores.map((s) => (s === -Infinity ? 0 : Math.exp(s - max)));
      const total = exps.reduce((a, b) => a + b, 0);
      exps.forEach((e, s) => {
        for (let d = 0; d < dh; d++) context[off + d] += (e / total) * v[s][off + d];
      });
    }
    const projected = affine(context, lw.attentionOut, lw.attentionOutBias);
    return layerNorm(projected.map((p, i) => p + x[i]), lw.attentionNormGain, lw.attentionNormBias, config.layerNormEps);
  });
}

function feedForward(x: Vec, lw: TinyBgeM3LayerWeights, eps: number): Vec {
  const pre = affine(x, lw.intermediate, lw.intermediateBias);
  const act = pre.map((u) => 0.5 * u * (1 + erf(u / Math.SQRT2)));
  const out = affine(act, lw.output, lw.outputBias);
  return layerNorm(out.map((o, i) => o + x[i]), lw.outputNormGain, lw.outputNormBias, eps);
}

/**
 * Run one batch. `inputIds` and `attentionMask` are `[B][S]` with equal
 * lengths per row, exactly what would be fed to ORT.
 */
export function runTinyBgeM3Reference(
  config: TinyBgeM3Config,
  weights: TinyBgeM3Weights,
  inputIds: readonly (readonly number[])[],
  attentionMask: readonly (readonly number[])[],
): ReferenceOutputs {
  const eps = 1e-12;
  const lastHiddenState = inputIds.map((ids, b) => {
    const mask = attentionMask[b];
    if (!mask || mask.length !== ids.length) {
      throw new ReferenceInputError(`row ${b}: attention_mask length differs from input_ids length`);
    }
    if (!mask.includes(1)) {
      throw new ReferenceInputError(`row ${b}: attention_mask has no 1; the reference does not model fully masked rows`);
    }
    let xs = embed(ids, config, weights);
    for (const lw of weights.layers) xs = attention(xs, mask, lw, config).map((x) => feedForward(x, lw, config.layerNormEps));
    return xs;
  });
  const denseVecs = lastHiddenState.map((xs) => l2Normalize(xs[0], eps));
  const sparseVecs = lastHiddenState.map((xs) =>
    xs.map((x) => Math.max(0, affine(x, weights.sparseLinear, weights.sparseBias)[0])),
  );
  const colbertVecs = lastHiddenState.map((xs, b) =>
    xs.slice(1).map((x, i) => {
      const projected = affine(x, weights.colbertLinear, weights.colbertBias);
      const keep = attentionMask[b][i + 1];
      return l2Normalize(projected.map((p) => p * keep), eps);
    }),
  );
  return { lastHiddenState, denseVecs, sparseVecs, colbertVecs };
}
