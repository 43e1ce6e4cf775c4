/*
 * Deterministic Unigram vocabulary builder for the synthetic test tokenizer.
 *
 * Instead of running SentencePiece EM training, it counts whole words and
 * short substrings in a small embedded corpus and scores every piece with its
 * log relative frequency. That is enough for the Viterbi segmentation to
 * prefer one piece for known words and frequent substrings for unknown ones,
 * and a full single-character alphabet guarantees Latin text never falls back
 * to <unk>. Trade-off: the scores are not a trained language model, so the
 * segmentations are plausible rather than optimal.
 */

/** SentencePiece's word-boundary marker, prepended to word-initial pieces. */
export const METASPACE = "\u2581";

/** A vocabulary entry as it appears in tokenizer.json: [piece, log-probability]. */
export type ScoredPiece = [string, number];

const MIN_SUBSTRING = 2;
const MAX_SUBSTRING = 6;
/** Substrings seen once are just fragments of a single word; they add nothing. */
const MIN_SUBSTRING_COUNT = 2;
/**
 * A tiny per-rank penalty keeps every score distinct, so no two segmentations
 * tie exactly and both tokenizer libraries pick the same Viterbi path.
 */
const RANK_EPSILON = 1e-7;
/** Pseudo-count for alphabet characters absent from the corpus. */
const UNSEEN_CHAR_COUNT = 0.5;

const LETTER_RUN = /[\p{L}\p{M}\p{N}]+/gu;

/** Characters that make up the always-present alphabet, in a stable order. */
export function alphabet(extra: string): string[] {
  const chars: string[] = [];
  const seen = new Set<string>();
  const push = (c: string): void => {
    // A piece whose text changes under NFKC could never be matched.
    if (c.normalize("NFKC") !== c || /\s/u.test(c) || seen.has(c)) return;
    seen.add(c);
    chars.push(c);
  };
  for (let cp = 0x21; cp <= 0x7e; cp++) push(String.fromCodePoint(cp));
  for (let cp = 0xa1; cp <= 0xff; cp++) {
    if (cp !== 0xad) push(String.fromCodePoint(cp));
  }
  for (const c of extra) push(c);
  return chars;
}

/** Counts of word-initial pieces, inner substrings and characters in the corpus. */
interface CorpusCounts {
  words: Map<string, number>;
  substrings: Map<string, number>;
  chars: Map<string, number>;
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

function countSubstrings(run: string, wordInitial: boolean, into: Map<string, number>): void {
  const cps = Array.from(run);
  for (let len = MIN_SUBSTRING; len <= MAX_SUBSTRING; len++) {
    for (let i = 0; i + len <= cps.length; i++) bump(into, cps.slice(i, i + len).join(""));
  }
  if (!wordInitial) return;
  // Word-initial prefixes carry the marker, exactly as the pre-tokenizer emits them.
  for (let len = 1; len < MAX_SUBSTRING && len <= cps.length; len++) {
    bump(into, METASPACE + cps.slice(0, len).join(""));
  }
}

function countCorpus(corpus: string): CorpusCounts {
  const counts: CorpusCounts = { words: new Map(), substrings: new Map(), chars: new Map() };
  const words = corpus
    .normalize("NFKC")
    .split(/\s+/u)
    .filter((w) => w.length > 0);
  for (const word of words) {
    const marked = METASPACE + word;
    for (const c of marked) bump(counts.chars, c);
    bump(counts.chars, METASPACE + Array.from(word)[0]);
    for (const match of word.matchAll(LETTER_RUN)) {
      const wordInitial = match.index === 0;
      if (wordInitial) bump(counts.words, METASPACE + match[0]);
      countSubstrings(match[0], wordInitial, counts.substrings);
    }
  }
  return counts;
}

/** Most frequent first; longer first on ties; then code-unit order, for determinism. */
function byFrequency(a: [string, number], b: [string, number]): number {
  if (a[1] !== b[1]) return b[1] - a[1];
  if (a[0].length !== b[0].length) return b[0].length - a[0].length;
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * Builds the scored piece list (without special tokens).
 *
 * Order: the alphabet (bare and marker-prefixed, plus the bare marker), then
 * whole corpus words, then frequent substrings, truncated to `maxPieces`.
 * The alphabet is never truncated, because it is what rules out <unk>.
 */
export function buildUnigramVocab(corpus: string, extraChars: string, maxPieces: number): ScoredPiece[] {
  const counts = countCorpus(corpus);
  const chosen: Array<[string, number]> = [];
  const taken = new Set<string>();
  const take = (piece: string, count: number): void => {
    if (taken.has(piece)) return;
    taken.add(piece);
    chosen.push([piece, count]);
  };
  const charCount = (p: string): number => (counts.chars.get(p) ?? 0) + UNSEEN_CHAR_COUNT;

  take(METASPACE, charCount(METASPACE));
  for (const c of alphabet(extraChars)) {
    take(c, charCount(c));
    take(METASPACE + c, charCount(METASPACE + c));
  }
  const words = [...counts.words].sort(byFrequency);
  const substrings = [...counts.substrings]
    .filter(([p, n]) => n >= MIN_SUBSTRING_COUNT && Array.from(p).length >= MIN_SUBSTRING)
    .sort(byFrequency);
  for (const [piece, count] of [...words, ...substrings]) {
    if (chosen.length >= maxPieces) break;
    // A short word is also a frequent word-initial prefix ("▁he" in "here");
    // scoring it by its word count alone would undervalue it.
    take(piece, Math.max(count, counts.substrings.get(piece) ?? 0));
  }
  return scorePieces(chosen);
}

function scorePieces(chosen: Array<[string, number]>): ScoredPiece[] {
  const total = chosen.reduce((sum, [, n]) => sum + n, 0);
  return chosen.map(([piece, count], rank): ScoredPiece => {
    const logp = Math.log(count / total) - rank * RANK_EPSILON;
    // Rounded so the JSON text is short and identical on every platform.
    return [piece, Math.round(logp * 1e9) / 1e9];
  });
}
