/**
 * The last check on what the producer puts into a job: every string (document id, segment text,
 * speakers, metadata keys and values) must be well-formed Unicode, because the worker's job schema
 * rejects ill-formed strings and a lone surrogate once crashed the worker in id derivation (issue 13).
 * The readers already repair their input; this guards library callers that build documents themselves.
 * Text is repaired (each lone surrogate becomes U+FFFD, and the document is flagged `invalid_utf8`,
 * which the summary counts); an id is never repaired, since that would silently change which points
 * it writes: such a document is refused with a reason.
 */
import type { JsonValue, SourceDocument } from "./document.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** True when `text` holds a UTF-16 surrogate without its partner. */
export const isIllFormed = (text: string): boolean => LONE_SURROGATE.test(text);

const repairText = (text: string): string => text.replace(LONE_SURROGATES, "\uFFFD");

function repairJson(value: JsonValue): JsonValue {
  if (typeof value === "string") return repairText(value);
  if (Array.isArray(value)) return value.map(repairJson);
  if (value === null || typeof value !== "object") return value;
  const out: { [k: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(value)) out[repairText(k)] = repairJson(v);
  return out;
}

/** True when any string inside a JSON value (keys included) is ill-formed. */
export function jsonIsIllFormed(value: JsonValue): boolean {
  if (typeof value === "string") return isIllFormed(value);
  if (Array.isArray(value)) return value.some(jsonIsIllFormed);
  if (value === null || typeof value !== "object") return false;
  return Object.entries(value).some(([k, v]) => isIllFormed(k) || jsonIsIllFormed(v));
}

/**
 * Repairs `doc` in place; returns a reason to refuse it when its id is ill-formed. Metadata must
 * already be plain JSON (`toJsonMetadata`).
 */
export function ensureWellFormed(doc: SourceDocument): string | undefined {
  if (isIllFormed(doc.id)) {
    return "document id is not well-formed Unicode (it holds a lone surrogate); ids are not repaired, fix the source";
  }
  const segmentsBad = doc.segments.some((s) => isIllFormed(s.text) || isIllFormed(s.speaker ?? ""));
  const metadataBad = jsonIsIllFormed(doc.metadata) || isIllFormed(doc.source.file);
  if (!segmentsBad && !metadataBad) return undefined;
  doc.segments = doc.segments.map((s) => ({
    ...s,
    text: repairText(s.text),
    ...(s.speaker === undefined ? {} : { speaker: repairText(s.speaker) }),
  }));
  doc.metadata = { ...(repairJson(doc.metadata) as Record<string, JsonValue>), invalid_utf8: true };
  doc.source = { ...doc.source, file: repairText(doc.source.file) };
  return undefined;
}
