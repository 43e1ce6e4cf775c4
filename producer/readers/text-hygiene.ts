/**
 * Input hygiene for everything a reader produces: UTF-8 decoding that never
 * throws, line-ending normalisation, control-character stripping and lone
 * surrogate repair.
 *
 * Why: one bad byte or a stray NUL must not crash a batch or poison a Redis
 * payload / Qdrant point. We replace rather than reject so the rest of the
 * record survives, and we *report* invalid UTF-8 (callers put
 * `invalid_utf8: true` in the document metadata) so nothing is hidden.
 * Trade-off: decoding invalid input twice (strict, then lenient) costs a
 * second pass, but only for the rare bad file or line.
 */
import type { JsonValue } from "../document.js";

export interface DecodedText {
  text: string;
  /** True when the bytes were not valid UTF-8 and U+FFFD replacements were made. */
  invalidUtf8: boolean;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const lenientDecoder = new TextDecoder("utf-8", { fatal: false });

/** Decodes UTF-8 (dropping a leading BOM); invalid sequences become U+FFFD and are flagged. */
export function decodeUtf8(bytes: Uint8Array): DecodedText {
  try {
    return { text: strictDecoder.decode(bytes), invalidUtf8: false };
  } catch {
    return { text: lenientDecoder.decode(bytes), invalidUtf8: true };
  }
}

// C0 controls except \t (09) and \n (0A), plus DEL. \r is handled first by
// line-ending normalisation so CRLF files keep their line structure.
const CONTROL_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F]/g;
// Without the `u` flag the regex works on UTF-16 code units, which is exactly
// what is needed to find a high surrogate with no low partner and vice versa.
const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Normalises CRLF / CR to LF, strips a leading BOM, removes C0 control
 * characters except tab and newline, and replaces lone surrogates with U+FFFD.
 */
export function cleanText(text: string): string {
  let out = text;
  if (out.charCodeAt(0) === 0xfeff) out = out.slice(1);
  return out.replace(/\r\n?/g, "\n").replace(CONTROL_CHARS, "").replace(LONE_SURROGATES, "\uFFFD");
}

/** True for strings that are empty or only whitespace. */
export function isBlank(text: string): boolean {
  return !/\S/.test(text);
}

/**
 * Applies `cleanText` to every string (keys included) inside a parsed JSON
 * value. JSON escapes such as "\u0000" or "\ud800" survive JSON.parse, so
 * parsed metadata needs the same treatment as raw text.
 */
export function cleanJsonValue(value: JsonValue): JsonValue {
  if (typeof value === "string") return cleanText(value);
  if (Array.isArray(value)) return value.map(cleanJsonValue);
  if (value !== null && typeof value === "object") {
    const out: { [k: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) out[cleanText(k)] = cleanJsonValue(v);
    return out;
  }
  return value;
}

/** True for a non-null, non-array object (what JSON calls an object). */
export function isJsonObject(value: unknown): value is { [k: string]: JsonValue } {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Short human description of a JSON value's type, for error messages. */
export function describeJsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** Truncates text for quoting in an error message, so reasons stay one readable line. */
export function excerpt(text: string, max = 60): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}
