/** A from-scratch reference of FlagEmbedding's BGE-M3 post-processing, for tests that check the
 *  worker's vectors on any export layout. It runs a float32 backbone (`last_hidden_state`)
 *  with onnxruntime-node directly, one unpadded sequence at a time, and applies the heads in
 *  float64 exactly as `BGEM3Model` does: dense = normalised CLS; sparse = relu(h·w + b) per
 *  token, `<s>`, `<pad>`, `</s>`, `<unk>` dropped, weights > 0 kept, max per id; ColBERT =
 *  normalise(h[1:L]·W + b), the `L - 1` rows after CLS (including `</s>`). Shares no code with
 *  the worker's heads, so a bug there cannot hide in both. Slow by design (per-element loops). */
import * as ort from "onnxruntime-node";

/** Head weights as an nn.Linear holds them: weight [out, in] row-major, bias [out]. */
export interface LinearWeights {
  weight: Float32Array;
  bias: Float32Array;
  out: number;
  in: number;
}

export interface ReferenceEmbedding {
  dense: Float64Array;
  /** token id → weight */
  sparse: Map<number, number>;
  /** `length - 1` rows of `colbertDim` values. */
  colbert: Float64Array[];
}

/** torch.nn.functional.normalize: x / max(‖x‖₂, 1e-12). */
function normalize(v: Float64Array): Float64Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.max(Math.sqrt(s), 1e-12);
  return v.map((x) => x / n);
}

/** `linear(h_t)` for one token row of `hidden` ([length, in] row-major). */
function apply(l: LinearWeights, hidden: Float32Array, t: number): Float64Array {
  const y = new Float64Array(l.out);
  for (let o = 0; o < l.out; o++) {
    let s = l.bias[o];
    for (let k = 0; k < l.in; k++) s += hidden[t * l.in + k] * l.weight[o * l.in + k];
    y[o] = s;
  }
  return y;
}

/** FlagEmbedding's three outputs for one sequence from its hidden states `[ids.length, in]`. */
export function flagEmbeddingOutputs(
  hidden: Float32Array,
  ids: ArrayLike<number>,
  heads: { sparse: LinearWeights; colbert: LinearWeights },
  specialIds: Iterable<number>,
): ReferenceEmbedding {
  const dim = heads.sparse.in;
  const special = new Set(specialIds);
  const dense = normalize(Float64Array.from(hidden.subarray(0, dim)));
  const sparse = new Map<number, number>();
  for (let t = 0; t < ids.length; t++) {
    const w = Math.max(0, apply(heads.sparse, hidden, t)[0]);
    if (special.has(ids[t]) || !(w > 0)) continue;
    if (!sparse.has(ids[t]) || w > sparse.get(ids[t])!) sparse.set(ids[t], w);
  }
  const colbert: Float64Array[] = [];
  for (let t = 1; t < ids.length; t++) colbert.push(normalize(apply(heads.colbert, hidden, t)));
  return { dense, sparse, colbert };
}

/** Runs each sequence alone through the float32 backbone at `modelPath` and applies the heads. */
export async function backboneReference(
  modelPath: string,
  sequences: Int32Array[],
  heads: { sparse: LinearWeights; colbert: LinearWeights },
  specialIds: number[],
): Promise<ReferenceEmbedding[]> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const out: ReferenceEmbedding[] = [];
    for (const ids of sequences) {
      const dims = [1, ids.length];
      const feeds = {
        input_ids: new ort.Tensor(
          "int64",
          BigInt64Array.from(ids, (id) => BigInt(id)),
          dims,
        ),
        attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), dims),
      };
      const t = (await session.run(feeds, ["last_hidden_state"])).last_hidden_state;
      if (t.type !== "float32") throw new Error(`the reference backbone must give float32, got ${t.type}`);
      out.push(flagEmbeddingOutputs(t.data as Float32Array, ids, heads, specialIds));
    }
    return out;
  } finally {
    await session.release();
  }
}
