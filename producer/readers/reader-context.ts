/**
 * Settings every format reader receives from `readDocuments`, and the small
 * helpers they share for naming documents. Kept separate so each reader
 * depends on one narrow interface instead of on the dispatcher.
 */
import { basename, extname } from "node:path";
import type { JsonValue } from "../document.js";

export interface ReaderContext {
  /** Prepended to every document id (e.g. a corpus name), so ids from different sources cannot collide. */
  idPrefix: string;
  /** Size cap for formats that are read whole. */
  maxFileBytes: number;
  /** Size cap for one JSONL line. */
  maxLineBytes: number;
  /** Where line-oriented formats start reading: a byte offset at a line start and the lines before it. */
  start?: { offset: number; line: number };
  /** Report later records that repeat an id within one JSONL file (default true). Costs memory per record. */
  detectDuplicateIds?: boolean;
}

/** The id a whole-file document gets when the file carries none: prefix + basename without extension. */
export function idFromFileName(file: string, ctx: ReaderContext): string {
  const base = basename(file);
  return ctx.idPrefix + base.slice(0, base.length - extname(base).length);
}

/**
 * Reader-owned metadata keys. They are applied *after* any metadata found in
 * the input, so `format` and `invalid_utf8` always mean what the readers say.
 * `invalid_utf8` is only present when true, keeping clean documents' payloads small.
 */
export function readerMetadata(
  format: string,
  invalidUtf8: boolean,
  extra: Record<string, JsonValue> = {},
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = { format, ...extra };
  if (invalidUtf8) out.invalid_utf8 = true;
  return out;
}
