/*
 * BGE-M3's two head layers for the generated export layouts, as plain arrays.
 *
 * One source for three consumers: the layout graphs that embed the heads, the
 * `.pt` head files written beside backbone-only layouts, and the tests'
 * from-scratch reference. Names, seeds and spreads are those of the default
 * model's heads (onnx-model-gen.ts), so the streams are the same; the values
 * are then rounded to float16, because BAAI ships the heads as float16 and a
 * graph computing with them must equal what the `.pt` files hold. Trade-off:
 * layout graphs differ from the default model in the last bits of the heads,
 * which keeps the default model's bytes (and its cache key) unchanged.
 */
import { roundToFloat16 } from "./float16.js";
import type { TestModelOptions } from "./onnx-model-gen.js";
import { deriveSeed, fillNormal } from "./prng.js";

export interface HeadWeights {
  hidden: number;
  colbertDim: number;
  /** sparse_linear (Linear hidden→1): weight [hidden], bias [1]. */
  sparseWeight: Float32Array;
  sparseBias: Float32Array;
  /** colbert_linear (Linear hidden→colbertDim) as used in x·W: [hidden, colbertDim], row-major. */
  colbertWeight: Float32Array;
  colbertBias: Float32Array;
}

/** Same spreads as the default model: Xavier-like weights; a positive sparse bias so most tokens get a weight. */
const SPARSE_BIAS_MEAN = 0.5;
const BIAS_STD = 0.02;

function normal(seed: number, name: string, size: number, std: number, mean = 0): Float32Array {
  return fillNormal(new Float32Array(size), deriveSeed(seed, name), std, mean);
}

/** The heads of a model built from `o`; `float16: false` gives the default model's exact values. */
export function generateHeadWeights(o: Required<TestModelOptions>, float16 = true): HeadWeights {
  const std = 1 / Math.sqrt(o.hidden);
  const heads: HeadWeights = {
    hidden: o.hidden,
    colbertDim: o.colbertDim,
    sparseWeight: normal(o.seed, "sparse_linear.weight", o.hidden, std),
    sparseBias: normal(o.seed, "sparse_linear.bias", 1, BIAS_STD, SPARSE_BIAS_MEAN),
    colbertWeight: normal(o.seed, "colbert_linear.weight", o.hidden * o.colbertDim, std),
    colbertBias: normal(o.seed, "colbert_linear.bias", o.colbertDim, BIAS_STD),
  };
  if (float16) {
    for (const a of [heads.sparseWeight, heads.sparseBias, heads.colbertWeight, heads.colbertBias]) roundToFloat16(a);
  }
  return heads;
}

/** An [in, out] row-major matrix as PyTorch's nn.Linear stores it: [out, in]. */
export function transposed(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}
