/**
 * Transcript JSON reader (.json). Two shapes are recognised:
 *  - generic: `{"id"?, "segments": [{"speaker"?, "start"?, "end"?, "text"}], "metadata"?}`
 *    (id falls back to the file name);
 *  - QMSum meetings: `{"meeting_transcripts": [{"speaker", "content"}], …}`
 *    (no timestamps; id is the file name; the QA annotations are ignored).
 * Any other JSON is skipped with a reason naming the keys found.
 *
 * A bad segment is skipped (reported with its index) and the rest of the
 * transcript is kept; blank segments carry no text and are only counted
 * (`empty_segments`), since dropping nothing-at-all loses nothing.
 */
import { documentEvent, skippedEvent, type JsonValue, type ReadEvent, type Segment } from "../document.js";
import { readWholeFile } from "./file-input.js";
import { InvalidStructureError } from "./reader-errors.js";
import { idFromFileName, readerMetadata, type ReaderContext } from "./reader-context.js";
import { jsonIsIllFormed } from "../unicode-guard.js";
import { cleanJsonValue, cleanText, describeJsonType, isBlank, isJsonObject } from "./text-hygiene.js";

type SegmentResult = { segment: Segment } | { empty: true } | { reason: string };

function optionalTime(value: unknown, field: string): number | undefined | { reason: string } {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    return { reason: `"${field}" must be a non-negative number of seconds, got ${JSON.stringify(value)}` };
  }
  return value;
}

/** Validates one generic segment. */
export function validateSegment(value: unknown, textField: "text" | "content"): SegmentResult {
  if (!isJsonObject(value)) return { reason: `expected an object, got ${describeJsonType(value)}` };
  const text = value[textField];
  if (typeof text !== "string") return { reason: `"${textField}" must be a string, got ${describeJsonType(text)}` };
  const speaker = value.speaker;
  if (speaker !== undefined && speaker !== null && typeof speaker !== "string" && typeof speaker !== "number") {
    return { reason: `"speaker" must be a string, got ${describeJsonType(speaker)}` };
  }
  const start = optionalTime(value.start, "start");
  const end = optionalTime(value.end, "end");
  if (typeof start === "object") return start;
  if (typeof end === "object") return end;
  if (start !== undefined && end !== undefined && end < start) {
    return { reason: `"end" (${end}) is before "start" (${start})` };
  }
  const clean = cleanText(text).trim();
  if (isBlank(clean)) return { empty: true };
  const segment: Segment = { text: clean };
  const speakerText = speaker === undefined || speaker === null ? "" : cleanText(String(speaker)).trim();
  if (speakerText !== "") segment.speaker = speakerText;
  if (start !== undefined) segment.start = start;
  if (end !== undefined) segment.end = end;
  return { segment };
}

interface Shape {
  format: "transcript-json" | "qmsum";
  items: unknown[];
  arrayName: string;
  textField: "text" | "content";
}

function detectShape(value: unknown): Shape | { reason: string } {
  if (isJsonObject(value) && Array.isArray(value.segments)) {
    return { format: "transcript-json", items: value.segments, arrayName: "segments", textField: "text" };
  }
  if (isJsonObject(value) && Array.isArray(value.meeting_transcripts)) {
    return {
      format: "qmsum",
      items: value.meeting_transcripts,
      arrayName: "meeting_transcripts",
      textField: "content",
    };
  }
  const found = isJsonObject(value)
    ? `object with keys: ${Object.keys(value).slice(0, 8).join(", ") || "(none)"}`
    : describeJsonType(value);
  return {
    reason:
      `not a transcript: expected an object with a "segments" array (or a QMSum "meeting_transcripts" array), ` +
      `found ${found}`,
  };
}

function documentId(file: string, ctx: ReaderContext, value: unknown, shape: Shape): string | { reason: string } {
  if (shape.format !== "transcript-json" || !isJsonObject(value) || value.id === undefined)
    return idFromFileName(file, ctx);
  if (typeof value.id !== "string" && typeof value.id !== "number") {
    return { reason: `"id" must be a string or a number, got ${describeJsonType(value.id)}` };
  }
  const id = cleanText(String(value.id)).trim();
  return id === "" ? { reason: `"id" is empty` } : ctx.idPrefix + id;
}

/** Reads one transcript JSON file. */
export async function* readTranscriptJson(file: string, ctx: ReaderContext): AsyncGenerator<ReadEvent> {
  const decoded = await readWholeFile(file, ctx.maxFileBytes);
  let value: unknown;
  try {
    value = JSON.parse(cleanText(decoded.text));
  } catch (err) {
    throw new InvalidStructureError(file, "transcript-json", `invalid JSON: ${(err as Error).message}`);
  }
  const shape = detectShape(value);
  if ("reason" in shape) throw new InvalidStructureError(file, "transcript-json", shape.reason);
  const id = documentId(file, ctx, value, shape);
  if (typeof id !== "string") throw new InvalidStructureError(file, shape.format, id.reason);
  const userMeta = shape.format === "transcript-json" && isJsonObject(value) ? value.metadata : undefined;
  if (userMeta !== undefined && !isJsonObject(userMeta)) {
    throw new InvalidStructureError(
      file,
      shape.format,
      `"metadata" must be an object, got ${describeJsonType(userMeta)}`,
    );
  }

  const segments: Segment[] = [];
  let skipped = 0;
  let empty = 0;
  for (const [i, item] of shape.items.entries()) {
    const result = validateSegment(item, shape.textField);
    if ("segment" in result) segments.push(result.segment);
    else if ("empty" in result) empty += 1;
    else {
      skipped += 1;
      yield skippedEvent(file, `${shape.arrayName}[${i}]: ${result.reason}`);
    }
  }
  if (segments.length === 0) {
    yield skippedEvent(file, "empty text");
    return;
  }
  const extra: Record<string, JsonValue> = {
    segments: segments.length,
    skipped_segments: skipped,
    empty_segments: empty,
  };
  yield documentEvent({
    id,
    kind: "transcript",
    segments,
    metadata: {
      ...(userMeta === undefined ? {} : (cleanJsonValue(userMeta) as Record<string, JsonValue>)),
      ...readerMetadata(shape.format, decoded.invalidUtf8 || jsonIsIllFormed(value as JsonValue), extra),
    },
    source: { file },
  });
}
