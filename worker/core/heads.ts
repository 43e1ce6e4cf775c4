/** Turns raw model outputs into the three BGE-M3 representations, per chunk of a padded
 *  batch. Mirrors FlagEmbedding's post-processing: dense = L2-normalised CLS vector; sparse =
 *  per-token relu weights with special tokens dropped and the max kept per token id (never
 *  a [batch, seq, vocab] tensor); ColBERT = one normalised vector per real token after CLS
 *  (padding rows removed). Pure functions over typed arrays; no allocation per token beyond
 *  the result. */

export interface SparseVector {
  indices: Uint32Array;
  values: Float32Array;
}

export interface ChunkEmbedding {
  dense?: Float32Array;
  sparse?: SparseVector;
  /** `rows x colbertDim`, row-major. */
  colbert?: Float32Array;
  colbertDim?: number;
  /** The chunk's vectors already written as the JSON a sink sends (Qdrant's `"vector"` object,
   *  UTF-8), when the batch asked for it (`ModelBatch.encodeVectors`); the typed arrays above stay
   *  the source of truth. */
  vectorJson?: Uint8Array;
}

/** L2-normalises `v` in place; a zero vector stays zero. */
export function normalizeInPlace(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s);
  if (n > 1e-12) for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

/** Row `row` of a [batch, dim] tensor, copied and normalised. */
export function denseRow(data: Float32Array, row: number, dim: number): Float32Array {
  return normalizeInPlace(data.slice(row * dim, (row + 1) * dim));
}

/** CLS (position 0) of row `row` of a [batch, seq, dim] last_hidden_state, normalised. */
export function clsRow(hidden: Float32Array, row: number, seq: number, dim: number): Float32Array {
  const start = row * seq * dim;
  return normalizeInPlace(hidden.slice(start, start + dim));
}

/** Sparse lexical weights of one sequence.
 *  @param ids the sequence's token ids (unpadded length = ids.length)
 *  @param weights [seq] weights for this row (sparse_vecs[row, :, 0])
 *  @param special ids to drop (<s>, <pad>, </s>, <unk>) */
export function sparseRow(
  ids: ArrayLike<number>,
  weights: ArrayLike<number>,
  special: ReadonlySet<number>,
): SparseVector {
  const best = new Map<number, number>();
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    const w = weights[t];
    if (special.has(id) || !(w > 0)) continue;
    const prev = best.get(id);
    if (prev === undefined || w > prev) best.set(id, w);
  }
  const keys = [...best.keys()].sort((a, b) => a - b);
  const indices = new Uint32Array(keys.length);
  const values = new Float32Array(keys.length);
  keys.forEach((k, i) => {
    indices[i] = k;
    values[i] = best.get(k)!;
  });
  return { indices, values };
}

/** ColBERT vectors of one sequence from a [batch, seq-1, dim] tensor (tokens after CLS):
 *  keeps the first `length - 1` rows (real tokens incl. </s>), each normalised. Exports that
 *  keep the CLS row give [batch, seq, dim]: `skipRows` 1 starts after it. */
export function colbertRow(
  data: Float32Array,
  row: number,
  seqRows: number,
  dim: number,
  length: number,
  skipRows = 0,
): Float32Array {
  const rows = Math.max(0, length - 1);
  const start = (row * seqRows + skipRows) * dim;
  const out = data.slice(start, start + rows * dim);
  for (let r = 0; r < rows; r++) normalizeInPlace(out.subarray(r * dim, (r + 1) * dim));
  return out;
}

/** Row `row` of sparse_vecs as one weight per token. Exports give [batch, seq, 1]
 *  (lastDim 1); a [batch, seq] tensor reads the same way. */
export function sparseWeightsFromTensor(data: Float32Array, row: number, seq: number, lastDim: number): Float32Array {
  const start = row * seq * lastDim;
  const w = new Float32Array(seq);
  for (let t = 0; t < seq; t++) w[t] = data[start + t * lastDim];
  return w;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na) * Math.sqrt(nb) || 1);
}

/** ColBERT vectors as one array per token (the JSON form Qdrant and the query API use). */
export function colbertRows(e: ChunkEmbedding): number[][] {
  const rows: number[][] = [];
  const dim = e.colbertDim ?? 0;
  if (!e.colbert || dim === 0) return rows;
  for (let o = 0; o < e.colbert.length; o += dim) rows.push(Array.from(e.colbert.subarray(o, o + dim)));
  return rows;
}
