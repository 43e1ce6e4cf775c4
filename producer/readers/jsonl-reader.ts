/**
 * JSONL / NDJSON reader: one `{"id", "text", "metadata"?}` object per line,
 * streamed so memory stays flat regardless of file size.
 *
 * Every line that does not become a document becomes a `skipped` event with
 * its 1-based line number and a reason ("line 7: invalid JSON: …"); blank
 * lines are ignored. Duplicate ids within one file are skipped too (the later
 * one), because two records with one id would overwrite each other
 * downstream. Trade-off: remembering seen ids costs memory proportional to
 * the number of records (not their size), which is acceptable for batch files;
 * backfills turn it off (`detectDuplicateIds: false`) to keep memory flat.
 * Every event carries the byte offset just past its line, where a resumed read
 * (`ctx.start`) can pick up.
 */
import { atOffset, documentEvent, skippedEvent, type JsonValue, type ReadEvent } from "../document.js";
import { readLines, type LineRecord } from "./file-input.js";
import { formatBytes } from "./reader-errors.js";
import { readerMetadata, type ReaderContext } from "./reader-context.js";
import { jsonIsIllFormed } from "../unicode-guard.js";
import { cleanJsonValue, cleanText, describeJsonType, excerpt, isBlank, isJsonObject } from "./text-hygiene.js";

interface ValidRecord {
  id: string;
  text: string;
  metadata: Record<string, JsonValue>;
}

/** Validates one parsed line; returns the record or a reason (without the "line N:" prefix). */
export function validateJsonlRecord(value: unknown): ValidRecord | { reason: string } {
  if (!isJsonObject(value)) {
    return { reason: `expected a JSON object with "id" and "text", got ${describeJsonType(value)}` };
  }
  const { id, text, metadata } = value;
  if (id === undefined) return { reason: `missing "id"` };
  if (typeof id !== "string" && typeof id !== "number") {
    return { reason: `"id" must be a string or a number, got ${describeJsonType(id)}` };
  }
  const idText = cleanText(String(id)).trim();
  if (idText === "") return { reason: `"id" is empty` };
  if (text === undefined) return { reason: `missing "text"` };
  if (typeof text !== "string") return { reason: `"text" must be a string, got ${describeJsonType(text)}` };
  if (metadata !== undefined && !isJsonObject(metadata)) {
    return { reason: `"metadata" must be an object, got ${describeJsonType(metadata)}` };
  }
  const cleanMeta = metadata === undefined ? {} : (cleanJsonValue(metadata) as Record<string, JsonValue>);
  return { id: idText, text: cleanText(text), metadata: cleanMeta };
}

/** Streams documents from a JSONL file. */
export async function* readJsonl(file: string, ctx: ReaderContext): AsyncGenerator<ReadEvent> {
  const seen = ctx.detectDuplicateIds === false ? undefined : new Map<string, number>();
  for await (const rec of readLines(file, ctx.maxLineBytes, ctx.start)) {
    const ev = lineEvent(file, rec, ctx, seen);
    if (ev) yield atOffset(ev, rec.end);
  }
}

/** The event for one line, or null for a blank line. */
function lineEvent(
  file: string,
  rec: LineRecord,
  ctx: ReaderContext,
  seen: Map<string, number> | undefined,
): ReadEvent | null {
  const at = `line ${rec.line}:`;
  if (rec.tooLongBytes !== undefined) {
    const size = formatBytes(rec.tooLongBytes);
    return skippedEvent(file, `${at} line is ${size}, above the ${formatBytes(ctx.maxLineBytes)} line limit`, rec.line);
  }
  const raw = cleanText(rec.text);
  if (isBlank(raw)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return skippedEvent(file, `${at} invalid JSON: ${(err as Error).message}`, rec.line);
  }
  const valid = validateJsonlRecord(parsed);
  if ("reason" in valid) return skippedEvent(file, `${at} ${valid.reason}`, rec.line);
  if (isBlank(valid.text)) return skippedEvent(file, `${at} empty text (id "${excerpt(valid.id)}")`, rec.line);
  const id = ctx.idPrefix + valid.id;
  const firstLine = seen?.get(id);
  if (firstLine !== undefined) {
    return skippedEvent(file, `${at} duplicate id "${excerpt(id)}" (first seen on line ${firstLine})`, rec.line);
  }
  seen?.set(id, rec.line);
  const repaired = rec.invalidUtf8 || jsonIsIllFormed(parsed as JsonValue);
  return documentEvent({
    id,
    kind: "text",
    segments: [{ text: valid.text.trim() }],
    metadata: { ...valid.metadata, ...readerMetadata("jsonl", repaired) },
    source: { file, line: rec.line },
  });
}
