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
 */
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

/** Trimmed, non-empty sentences of a text, each keeping its original inner text. */
export function splitSentences(text: string): string[] {
  return sentencesWithSpacing(text).map((s) => s.text);
}

/**
 * Sentences plus whether whitespace separated each one from the previous in
 * the original. The segmenter sometimes breaks where the source has no space
 * (e.g. "…!eh¡"); joining those with "" keeps the original text intact.
 */
function sentencesWithSpacing(text: string): { text: string; spaced: boolean }[] {
  const out: { text: string; spaced: boolean }[] = [];
  let spaced = true;
  for (const { segment } of sentenceSegmenter.segment(text)) {
    const s = segment.trim();
    if (s !== "") out.push({ text: s, spaced: spaced || /^\s/.test(segment) });
    spaced = s === "" || /\s$/.test(segment);
  }
  return out;
}

/**
 * Splits a word over budget into runs of grapheme clusters, each the longest
 * run whose count fits (binary search; assumes counts grow with length, and
 * if they do not the piece is merely shorter than it could be).
 */
export function splitLongWord(word: string, budget: number, count: (t: string) => number): Piece[] {
  const graphemes = Array.from(graphemeSegmenter.segment(word), (g) => g.segment);
  const pieces: Piece[] = [];
  let i = 0;
  while (i < graphemes.length) {
    let lo = 1;
    let hi = Math.min(graphemes.length - i, budget * MAX_GRAPHEMES_PER_TOKEN);
    let best = 1; // one grapheme always makes progress, even if it alone is over budget
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (count(graphemes.slice(i, i + mid).join("")) <= budget) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const text = graphemes.slice(i, i + best).join("");
    pieces.push({ text, tokens: count(text), glued: pieces.length > 0 });
    i += best;
  }
  return pieces;
}

/** Splits a unit over budget at whitespace; words still over budget are split by characters. */
export function splitUnit(unit: string, budget: number, count: (t: string) => number): Piece[] {
  const pieces: Piece[] = [];
  for (const word of unit.split(/\s+/)) {
    if (word === "") continue;
    const tokens = count(word);
    if (tokens <= budget) pieces.push({ text: word, tokens, glued: false });
    else pieces.push(...splitLongWord(word, budget, count));
  }
  return pieces;
}

/** The document's atoms in reading order. */
export function buildAtoms(doc: SourceDocument, budget: number, count: (t: string) => number): Atom[] {
  const atoms: Atom[] = [];
  doc.segments.forEach((segment, index) => {
    const units =
      doc.kind === "transcript" ? [{ text: segment.text.trim(), spaced: true }] : sentencesWithSpacing(segment.text);
    let first = true;
    for (const unit of units) {
      if (unit.text === "") continue;
      const tokens = count(unit.text);
      const pieces = tokens <= budget ? [{ text: unit.text, tokens, glued: false }] : splitUnit(unit.text, budget, count);
      if (!unit.spaced && pieces.length > 0) pieces[0] = { ...pieces[0], glued: true };
      for (const piece of pieces) {
        atoms.push({ text: piece.text, tokens: piece.tokens, segment: index, separator: first ? "\n" : piece.glued ? "" : " " });
        first = false;
      }
    }
  });
  return atoms;
}

/** Text of atoms [from, to), joined with each atom's separator (the first atom's is dropped). */
export function joinAtoms(atoms: Atom[], from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += i === from ? atoms[i].text : atoms[i].separator + atoms[i].text;
  return text;
}
