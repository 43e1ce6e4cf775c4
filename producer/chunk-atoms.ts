/**
 * Turns a document into "atoms": the smallest pieces the chunker packs.
 *
 *  - transcript: one atom per segment (speaker turn / cue);
 *  - text: one atom per sentence (Intl.Segmenter, sentence granularity);
 *  - a unit over the token budget is broken into words (split on
 *    whitespace), and a word still over budget into runs of grapheme
 *    clusters, so every atom fits the budget on its own (except a single
 *    grapheme cluster larger than the budget, which cannot be split).
 *
 * Each atom records the separator that goes before it when it follows
 * another atom in the same chunk: "\n" at a segment boundary (so segment
 * boundaries survive in chunk text), " " between sentences or words of one
 * segment, "" between pieces of one split word (so the word is rebuilt)
 * and between sentences the source did not separate with whitespace.
 *
 * Trade-off: word and character pieces are counted on their own, which for
 * Metaspace tokenizers (XLM-R) matches the count in context for words but
 * only approximately for mid-word pieces; the chunker recounts every final
 * chunk text, so approximations can only cost packing density, not budget.
 *
 * Atoms are produced lazily (`atomStream`), and a unit longer than
 * `budget * MAX_GRAPHEMES_PER_TOKEN` characters is split without being
 * counted whole: one 20 MiB cue once cost minutes and gigabytes in a single
 * tokenizer call (issue 13). Memory is bounded by a window of graphemes, not
 * by the unit's length.
 */
import { boundedSegments } from "./bounded-segments.js";
import type { SourceDocument } from "./document.js";

export interface Atom {
  text: string;
  /** Content tokens of `text` counted alone. */
  tokens: number;
  /** Index of the document segment this atom comes from. */
  segment: number;
  /** Placed before this atom when it is not the first atom of a chunk. */
  separator: "\n" | " " | "";
}

interface Piece {
  text: string;
  tokens: number;
  glued: boolean; // continues the previous piece's word
}

/** Upper bound on grapheme clusters per token used to bound the split search; larger only means shorter pieces. */
const MAX_GRAPHEMES_PER_TOKEN = 16;

const sentenceSegmenter = new Intl.Segmenter(undefined, { granularity: "sentence" });
const graphemeSegmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** Characters segmented at a time (bounded-segments.ts); a longer sentence or grapheme cluster is cut. */
const SENTENCE_WINDOW = 4096;
const GRAPHEME_WINDOW = 1024;

/** Trimmed, non-empty sentences of a text, each keeping its original inner text. */
export function splitSentences(text: string, maxSentenceChars = SENTENCE_WINDOW): string[] {
  return Array.from(sentencesWithSpacing(text, maxSentenceChars), (s) => s.text);
}

/**
 * Sentences plus whether whitespace separated each one from the previous in
 * the original. The segmenter sometimes breaks where the source has no space
 * (e.g. "…!eh¡"); joining those with "" keeps the original text intact.
 */
function* sentencesWithSpacing(text: string, maxChars: number): Generator<{ text: string; spaced: boolean }> {
  let spaced = true;
  const maxWindow = Math.max(SENTENCE_WINDOW, maxChars);
  for (const segment of boundedSegments(text, sentenceSegmenter, SENTENCE_WINDOW, maxWindow)) {
    const s = segment.trim();
    if (s !== "") yield { text: s, spaced: spaced || /^\s/.test(segment) };
    spaced = s === "" || /\s$/.test(segment);
  }
}

/** Counts tried by proportional steps before falling back to a binary search. */
const MAX_SCALED_PROBES = 4;

/** Longest fitting prefix (at least one grapheme) by binary search, assuming counts grow with length. */
function bisectPrefix(graphemes: string[], hi: number, budget: number, count: (t: string) => number): number {
  let lo = 1;
  let best = 1; // one grapheme always makes progress, even if it alone is over budget
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (count(graphemes.slice(0, mid).join("")) <= budget) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/**
 * A long prefix of `graphemes` whose count fits, starting from `hint` (the
 * previous piece's length) and scaling the length by budget / count: text of
 * one kind has a steady graphemes-per-token ratio, so this takes one or two
 * counts per piece where a binary search over the whole window took about
 * twelve, each of up to the window's length (issue 13: a 1 MiB word took
 * minutes). The result fits; it may be a little shorter than the longest fit.
 */
function fittingPrefix(graphemes: string[], hint: number, budget: number, count: (t: string) => number): number {
  let fit = 0; // longest length known to fit
  let over = graphemes.length + 1; // shortest length known not to fit
  let len = Math.min(Math.max(hint, 1), graphemes.length);
  for (let probe = 0; probe < MAX_SCALED_PROBES && len > fit && len < over; probe++) {
    const tokens = count(graphemes.slice(0, len).join(""));
    const scaled = Math.floor((len * budget) / Math.max(tokens, 1));
    if (tokens <= budget) fit = len;
    else over = len;
    len = tokens <= budget ? Math.min(scaled, over - 1) : Math.min(scaled, len - 1);
  }
  return fit > 0 ? fit : bisectPrefix(graphemes, over - 1, budget, count);
}

/**
 * Splits a word over budget into runs of grapheme clusters, each a long run
 * whose count fits (if counts do not grow with length a piece is merely
 * shorter than it could be). Holds at most `budget * MAX_GRAPHEMES_PER_TOKEN`
 * graphemes at a time, however long the word.
 */
export function* splitLongWord(word: string, budget: number, count: (t: string) => number): Generator<Piece> {
  const window = budget * MAX_GRAPHEMES_PER_TOKEN;
  const source = boundedSegments(word, graphemeSegmenter, GRAPHEME_WINDOW);
  let buffered: string[] = [];
  let exhausted = false;
  let hint = budget;
  for (let glued = false; ; glued = true) {
    while (!exhausted && buffered.length < window) {
      const next = source.next();
      if (next.done) exhausted = true;
      else buffered.push(next.value);
    }
    if (buffered.length === 0) return;
    hint = fittingPrefix(buffered, hint, budget, count);
    const text = buffered.slice(0, hint).join("");
    buffered = buffered.slice(hint);
    yield { text, tokens: count(text), glued };
  }
}

/** Length (UTF-16 units) above which a unit or word is split without counting it whole first. */
const longTextChars = (budget: number): number => budget * MAX_GRAPHEMES_PER_TOKEN;

/** Splits a unit over budget at whitespace; words still over budget are split by characters. */
export function* splitUnit(unit: string, budget: number, count: (t: string) => number): Generator<Piece> {
  const words = /\S+/g;
  for (let m = words.exec(unit); m !== null; m = words.exec(unit)) {
    const word = m[0];
    const tokens = word.length > longTextChars(budget) ? budget + 1 : count(word);
    if (tokens <= budget) yield { text: word, tokens, glued: false };
    else yield* splitLongWord(word, budget, count);
  }
}

/** The pieces of one unit: itself when it fits, else its words (or parts of words). */
function unitPieces(text: string, budget: number, count: (t: string) => number): Iterable<Piece> {
  if (text.length > longTextChars(budget)) return splitUnit(text, budget, count);
  const tokens = count(text);
  return tokens <= budget ? [{ text, tokens, glued: false }] : splitUnit(text, budget, count);
}

/** The document's atoms in reading order, produced as the chunker asks for them. */
export function* atomStream(doc: SourceDocument, budget: number, count: (t: string) => number): Generator<Atom> {
  for (const [index, segment] of doc.segments.entries()) {
    const units =
      doc.kind === "transcript"
        ? [{ text: segment.text.trim(), spaced: true }]
        : sentencesWithSpacing(segment.text, longTextChars(budget));
    let first = true;
    for (const unit of units) {
      if (unit.text === "") continue;
      let leading = true;
      for (const piece of unitPieces(unit.text, budget, count)) {
        const glued = piece.glued || (leading && !unit.spaced);
        leading = false;
        yield { text: piece.text, tokens: piece.tokens, segment: index, separator: first ? "\n" : glued ? "" : " " };
        first = false;
      }
    }
  }
}
