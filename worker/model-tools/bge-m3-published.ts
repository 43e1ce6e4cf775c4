/** BGE-M3's published examples and the numbers FlagEmbedding prints for them with BAAI/bge-m3
 *  and `use_fp16=True` (the BGE-M3 model card and FlagEmbedding's README), copied as printed,
 *  and the tolerances fp16 rounding allows. `verify-model` runs the same sentences through
 *  this worker's model path and compares. Data only. */

export const QUERIES = ["What is BGE M3?", "Defination of BM25"] as const;

export const PASSAGES = [
  "BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.",
  "BM25 is a bag-of-words retrieval function that ranks a set of documents based on the query terms appearing " +
    "in each document",
] as const;

/** `queries @ passages.T` of the dense vectors. */
export const DENSE_SIMILARITY = [
  [0.6265, 0.3477],
  [0.3499, 0.678],
] as const;

/** `convert_id_to_token(lexical_weights)` of each query: weights keyed by decoded token, in
 *  the published order (pairs, since a JS object would move "3" and "25" first). */
export const QUERY_LEXICAL_WEIGHTS: ReadonlyArray<ReadonlyArray<readonly [string, number]>> = [
  [
    ["What", 0.08356],
    ["is", 0.0814],
    ["B", 0.1296],
    ["GE", 0.252],
    ["M", 0.1702],
    ["3", 0.2695],
    ["?", 0.04092],
  ],
  [
    ["De", 0.05005],
    ["fin", 0.1368],
    ["ation", 0.04498],
    ["of", 0.0633],
    ["BM", 0.2515],
    ["25", 0.3335],
  ],
];

/** `compute_lexical_matching_score` of query 0 with passage 0 and with query 1. */
export const LEXICAL_SCORES = { q0p0: 0.19554901123046875, q0q1: 0.0 } as const;

/** `colbert_score` of query 0 with passage 0 and with passage 1. */
export const COLBERT_SCORES = { q0p0: 0.7797, q0p1: 0.462 } as const;

/** fp16 rounding moves similarities and scores by up to about 1e-3 and weights by less. */
export const TOLERANCES = { similarity: 0.01, score: 0.01, weight: 0.005 } as const;
