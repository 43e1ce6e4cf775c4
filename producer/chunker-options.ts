/**
 * Options of the token-aware chunker, their validation, and the typed errors
 * for bad options or a misbehaving token counter.
 *
 * The chunker trusts `countTokens` for every decision, so a counter that
 * returns NaN or a negative number would silently produce wrong chunks;
 * wrapping it in `checkedCounter` turns that into an immediate, explicit error.
 */

import { ProducerError } from "./producer-errors.js";

/** Tokens the model adds around every sequence (`<s>` … `</s>` for XLM-RoBERTa / BGE-M3). */
export const SPECIAL_TOKENS = 2;
/** Smallest target that leaves room for useful content next to the special tokens. */
export const MIN_TARGET_TOKENS = 8;

export interface ChunkerOptions {
  /** Maximum model tokens per chunk, special tokens included. */
  targetTokens: number;
  /** Maximum content tokens repeated from the end of one chunk at the start of the next. */
  overlapTokens: number;
  /** Content tokens of `text`, without special tokens. Must be deterministic. */
  countTokens: (text: string) => number;
  /** Called after each chunk, so a caller can report progress through a long document. */
  onProgress?: (p: ChunkProgress) => void;
}

/** How far chunking of one document has got, in characters of its segments. */
export interface ChunkProgress {
  chars: number;
  totalChars: number;
  chunks: number;
}

/** An option is out of range; `option` names it, `value` is what was passed. */
export class ChunkerOptionsError extends ProducerError {
  readonly kind = "options";
  readonly option: keyof ChunkerOptions;
  readonly value: unknown;

  constructor(option: keyof ChunkerOptions, value: unknown, requirement: string) {
    super(`invalid chunker option ${option}=${String(value)}: ${requirement}`);
    this.option = option;
    this.value = value;
  }
}

/** `countTokens` returned something that is not a non-negative integer. */
export class TokenCountError extends ProducerError {
  readonly kind = "token_count";
  readonly textPreview: string;
  readonly value: unknown;

  constructor(text: string, value: unknown) {
    const preview = text.length > 40 ? `${text.slice(0, 39)}…` : text;
    super(
      `countTokens returned ${String(value)} for "${preview}"; it must return a non-negative integer ` +
        `(the number of content tokens, without special tokens)`,
    );
    this.textPreview = preview;
    this.value = value;
  }
}

/** Throws `ChunkerOptionsError` unless the options are usable. */
export function validateChunkerOptions(opts: ChunkerOptions): void {
  const { targetTokens, overlapTokens, countTokens } = opts;
  if (!Number.isInteger(targetTokens) || targetTokens < MIN_TARGET_TOKENS) {
    throw new ChunkerOptionsError("targetTokens", targetTokens, `must be an integer >= ${MIN_TARGET_TOKENS}`);
  }
  const budget = targetTokens - SPECIAL_TOKENS;
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= budget) {
    throw new ChunkerOptionsError(
      "overlapTokens",
      overlapTokens,
      `must be an integer >= 0 and < targetTokens - ${SPECIAL_TOKENS} (= ${budget}), otherwise chunks could not make progress`,
    );
  }
  if (typeof countTokens !== "function") {
    throw new ChunkerOptionsError("countTokens", countTokens, "must be a function (text) => number of content tokens");
  }
}

/** Wraps a counter so a bad return value fails loudly instead of corrupting chunk sizes. */
export function checkedCounter(countTokens: (text: string) => number): (text: string) => number {
  return (text) => {
    const n = countTokens(text);
    if (!Number.isInteger(n) || n < 0) throw new TokenCountError(text, n);
    return n;
  };
}
