/** The scores FlagEmbedding computes for BAAI/bge-m3 (`BGEM3FlagModel` / `M3Embedder`), as pure
 *  functions over the worker's own vectors, so `verify-model` can compare a model with the
 *  numbers BGE-M3 publishes. Dense similarity is the dot product of normalised CLS vectors;
 *  the lexical matching score sums, over token ids both sides share, the product of their
 *  weights (`compute_lexical_matching_score`); the ColBERT score is, for each query row, the
 *  best dot product with any passage row, summed and divided by the number of query rows
 *  (`colbert_score`: `sum(max(q @ p.T, -1)) / q.size(0)`; the rows include `</s>`, not CLS).
 *  Performs no I/O. */

export interface LexicalWeights {
  indices: ArrayLike<number>;
  values: ArrayLike<number>;
}

export interface Multivector {
  /** `rows x dim`, row-major. */
  data: ArrayLike<number>;
  dim: number;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>, aStart = 0, bStart = 0, length = a.length): number {
  let s = 0;
  for (let i = 0; i < length; i++) s += a[aStart + i] * b[bStart + i];
  return s;
}

/** `out[i][j] = a[i] · b[j]` (FlagEmbedding's `embeddings_1 @ embeddings_2.T`). */
export function denseSimilarity(a: ReadonlyArray<ArrayLike<number>>, b: ReadonlyArray<ArrayLike<number>>): number[][] {
  return a.map((x) =>
    b.map((y) => {
      if (x.length !== y.length) throw new RangeError(`dense vectors differ in length: ${x.length} vs ${y.length}`);
      return dot(x, y);
    }),
  );
}

/** Sum over token ids present in both of the product of their weights. */
export function lexicalMatchingScore(a: LexicalWeights, b: LexicalWeights): number {
  const other = new Map<number, number>();
  for (let i = 0; i < b.indices.length; i++) other.set(b.indices[i], b.values[i]);
  let score = 0;
  for (let i = 0; i < a.indices.length; i++) {
    const w = other.get(a.indices[i]);
    if (w !== undefined) score += a.values[i] * w;
  }
  return score;
}

/** Mean over query rows of the best dot product with any passage row; 0 for an empty query. */
export function colbertScore(q: Multivector, p: Multivector): number {
  if (q.dim !== p.dim) throw new RangeError(`ColBERT rows differ in width: ${q.dim} vs ${p.dim}`);
  const qRows = q.data.length / q.dim;
  const pRows = p.data.length / p.dim;
  if (qRows === 0) return 0;
  let sum = 0;
  for (let i = 0; i < qRows; i++) {
    let best = -Infinity;
    for (let j = 0; j < pRows; j++) best = Math.max(best, dot(q.data, p.data, i * q.dim, j * p.dim, q.dim));
    sum += best;
  }
  return sum / qRows;
}

/** A SentencePiece token as `tokenizer.decode([id])` prints it for XLM-R (Metaspace decoder):
 *  '▁' becomes a space and the leading space of the (only) token is dropped, so "▁What" is
 *  "What" and "GE" stays "GE". FlagEmbedding's `convert_id_to_token` keys weights this way. */
export function decodeToken(piece: string): string {
  const spaced = piece.replaceAll("\u2581", " ");
  return spaced.startsWith(" ") ? spaced.slice(1) : spaced;
}

/** Lexical weights keyed by decoded token, given the id → token piece pairs of the text. Two
 *  ids that decode alike (rare: "▁B" and "B" both print "B") keep the larger weight; Python's
 *  dict in `convert_id_to_token` keeps whichever id came last. */
export function weightsByToken(w: LexicalWeights, pieceOf: ReadonlyMap<number, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < w.indices.length; i++) {
    const id = w.indices[i];
    const piece = pieceOf.get(id);
    const key = piece === undefined ? `[id ${id}]` : decodeToken(piece);
    out.set(key, Math.max(out.get(key) ?? -Infinity, w.values[i]));
  }
  return out;
}
