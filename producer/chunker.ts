/**
 * Token-aware chunker: `chunkDocument(doc, opts)` packs a document's atoms
 * (segments for transcripts, sentences for text; see chunk-atoms.ts) greedily
 * into chunks of at most `targetTokens - 2` content tokens, repeating up to
 * `overlapTokens` of trailing atoms at the start of the next chunk.
 *
 * Guarantees: every chunk's recounted text fits the budget (the only
 * exception is a single unsplittable grapheme cluster larger than it); no
 * chunk is empty; every chunk adds at least one atom not in any previous
 * chunk, so the loop always terminates; atoms appear in document order so no
 * text is lost; output is a pure function of the input (no I/O, no clock).
 *
 * Trade-off: packing is greedy (first fit in order), not optimal; it needs
 * one count per atom plus one recount per chunk, which keeps it linear
 * with an expensive tokenizer-backed counter. Atoms are read lazily through a
 * window (atom-window.ts), so memory beyond the chunks returned is bounded by
 * one chunk, whatever the length of a single segment.
 */
import { atomStream } from "./chunk-atoms.js";
import { AtomWindow } from "./atom-window.js";
import type { Chunk, JsonValue, SourceDocument } from "./document.js";
import { checkedCounter, SPECIAL_TOKENS, validateChunkerOptions, type ChunkerOptions } from "./chunker-options.js";

export type { ChunkerOptions, ChunkProgress } from "./chunker-options.js";
export { ChunkerOptionsError, TokenCountError, SPECIAL_TOKENS, MIN_TARGET_TOKENS } from "./chunker-options.js";

interface Span {
  from: number; // first atom (may be overlap from the previous chunk)
  to: number; // one past the last atom
  text: string;
  tokens: number; // recounted content tokens of `text`
}

/**
 * Builds the chunk that starts with overlap atoms [from, next) and must take
 * at least atom `next`. Estimates with per-atom counts, then recounts the
 * real text and sheds trailing new atoms, then leading overlap atoms, until it fits.
 */
function packSpan(atoms: AtomWindow, from: number, next: number, budget: number, count: (t: string) => number): Span {
  let start = from;
  let sum = atoms.tokens(start, next);
  while (start < next && sum + atoms.at(next).tokens > budget) sum -= atoms.at(start++).tokens;
  let end = next + 1;
  sum += atoms.at(next).tokens;
  while (atoms.has(end) && sum + atoms.at(end).tokens <= budget) sum += atoms.at(end++).tokens;

  let text = atoms.join(start, end);
  let tokens = count(text);
  while (tokens > budget && (end - 1 > next || start < next)) {
    if (end - 1 > next)
      end -= 1; // move a trailing atom to the next chunk
    else start += 1; // only the mandatory new atom is left: give up overlap instead
    text = atoms.join(start, end);
    tokens = count(text);
  }
  return { from: start, to: end, text, tokens };
}

/**
 * First atom of the next chunk's overlap: the longest run of trailing atoms
 * of [from, to) whose recounted text is within `overlapTokens`, never the
 * whole chunk (that would only repeat it).
 */
function overlapStart(atoms: AtomWindow, span: Span, overlapTokens: number, count: (t: string) => number): number {
  let k = span.to;
  let sum = 0;
  while (k - 1 > span.from && sum + atoms.at(k - 1).tokens <= overlapTokens) sum += atoms.at(--k).tokens;
  while (k < span.to && count(atoms.join(k, span.to)) > overlapTokens) k += 1;
  return k;
}

/** Transcript metadata: speakers in order of appearance, first known start, last known end. */
function transcriptMetadata(doc: SourceDocument, atoms: AtomWindow, span: Span): Record<string, JsonValue> {
  const speakers: string[] = [];
  let start: number | undefined;
  let end: number | undefined;
  let lastSegment = -1;
  for (let i = span.from; i < span.to; i++) {
    if (atoms.at(i).segment === lastSegment) continue;
    lastSegment = atoms.at(i).segment;
    const seg = doc.segments[lastSegment];
    if (seg.speaker !== undefined && !speakers.includes(seg.speaker)) speakers.push(seg.speaker);
    if (start === undefined && seg.start !== undefined) start = seg.start;
    if (seg.end !== undefined) end = seg.end;
  }
  const meta: Record<string, JsonValue> = { speakers };
  if (start !== undefined) meta.start = start;
  if (end !== undefined) meta.end = end;
  return meta;
}

/** Splits one document into chunks that fit `opts.targetTokens` (special tokens included). */
export function chunkDocument(doc: SourceDocument, opts: ChunkerOptions): Chunk[] {
  validateChunkerOptions(opts);
  const count = checkedCounter(opts.countTokens);
  const budget = opts.targetTokens - SPECIAL_TOKENS;
  const atoms = new AtomWindow(atomStream(doc, budget, count));
  const chunks: Chunk[] = [];
  const totalChars = doc.segments.reduce((n, s) => n + s.text.length, 0);
  let doneChars = 0;
  let next = 0; // first atom not yet in any chunk
  let from = 0; // first atom of the chunk being built (< next when overlapping)
  while (atoms.has(next)) {
    const span = packSpan(atoms, from, next, budget, count);
    const metadata: Record<string, JsonValue> = doc.kind === "transcript" ? transcriptMetadata(doc, atoms, span) : {};
    metadata.chars = span.text.length;
    chunks.push({ index: chunks.length, text: span.text, tokens: span.tokens + SPECIAL_TOKENS, metadata });
    if (opts.onProgress) {
      for (let i = next; i < span.to; i++) doneChars += atoms.at(i).text.length + 1; // + its separator
      opts.onProgress({ chars: Math.min(doneChars, totalChars), totalChars, chunks: chunks.length });
    }
    next = span.to;
    from = opts.overlapTokens > 0 ? overlapStart(atoms, span, opts.overlapTokens, count) : next;
    atoms.release(from); // no later chunk starts before its overlap
  }
  return chunks;
}
