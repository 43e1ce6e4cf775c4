/**
 * Entry point of the producer's input side: `readDocuments(file)` picks a
 * reader by extension (or an explicit format) and yields `ReadEvent`s.
 *
 * Contract: it never throws for bad input. Missing or unreadable files,
 * oversized files, unsupported extensions, malformed records and unexpected
 * parser failures all become `skipped` events with a reason, so one bad file
 * cannot stop a batch and nothing is dropped without a trace.
 * JSONL is streamed line by line; the other formats are read whole, under a
 * size cap (64 MiB by default).
 */
import { extname } from "node:path";
import { skippedEvent, type ReadEvent } from "../document.js";
import { DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_LINE_BYTES } from "./file-input.js";
import { readJsonl } from "./jsonl-reader.js";
import { cleanText } from "./text-hygiene.js";
import { ReaderError, UnsupportedFormatError } from "./reader-errors.js";
import type { ReaderContext } from "./reader-context.js";
import { readSrt } from "./srt-reader.js";
import { readPlainText } from "./text-reader.js";
import { readTranscriptJson } from "./transcript-json-reader.js";
import { readVtt } from "./vtt-reader.js";

export type InputFormat = "jsonl" | "text" | "srt" | "vtt" | "transcript-json";

export interface ReadOptions {
  /** "auto" (default) picks by extension. */
  format?: "auto" | InputFormat;
  /** Prepended to every document id. */
  idPrefix?: string;
  /** Size cap for whole-file formats (default 64 MiB). */
  maxFileBytes?: number;
  /** Size cap for one JSONL line (default 16 MiB). */
  maxLineBytes?: number;
  /** JSONL: start at this byte offset (a line start) after `line` lines; events carry `offset`. Other formats ignore it. */
  start?: { offset: number; line: number };
  /** JSONL: report records that repeat an id within the file (default true; memory per record). */
  detectDuplicateIds?: boolean;
}

const BY_EXTENSION: Record<string, InputFormat> = {
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".txt": "text",
  ".md": "text",
  ".srt": "srt",
  ".vtt": "vtt",
  ".json": "transcript-json",
};

const READERS: Record<InputFormat, (file: string, ctx: ReaderContext) => AsyncGenerator<ReadEvent>> = {
  jsonl: readJsonl,
  text: readPlainText,
  srt: readSrt,
  vtt: readVtt,
  "transcript-json": readTranscriptJson,
};

/** Formats read line by line, whose events carry a byte offset to resume from. */
export const LINE_FORMATS: ReadonlySet<InputFormat> = new Set(["jsonl"]);

/** The format `readDocuments` would use for a file name in "auto" mode, or undefined. */
export function formatForFile(file: string): InputFormat | undefined {
  return BY_EXTENSION[extname(file).toLowerCase()];
}

/** Reads one file, yielding its documents and a `skipped` event for everything that could not be used. */
export async function* readDocuments(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadEvent> {
  const format = opts.format && opts.format !== "auto" ? opts.format : formatForFile(file);
  if (!format) {
    yield skippedEvent(file, new UnsupportedFormatError(file, extname(file)).message);
    return;
  }
  const ctx: ReaderContext = {
    idPrefix: opts.idPrefix ?? "",
    maxFileBytes: opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    maxLineBytes: opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    start: opts.start,
    detectDuplicateIds: opts.detectDuplicateIds,
  };
  try {
    for await (const ev of READERS[format](file, ctx)) yield ev.kind === "skipped" ? cleanReason(ev) : ev;
  } catch (err) {
    if (err instanceof ReaderError) yield cleanReason(skippedEvent(file, err.message, err.line));
    // A parser bug must not take down the batch; report it like any other skip, with enough detail to file a bug.
    else {
      const reason = `unexpected ${format} reader failure (please report it): ${describeUnexpected(err)}`;
      yield cleanReason(skippedEvent(file, reason));
    }
  }
}

/** Reasons quote input (JSON.parse cuts its excerpt mid surrogate pair): keep them well-formed for logs. */
function cleanReason(ev: ReadEvent): ReadEvent {
  if (ev.kind === "skipped") ev.reason = cleanText(ev.reason);
  return ev;
}

function describeUnexpected(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export type { ReaderContext } from "./reader-context.js";
export {
  ReaderError,
  UnreadableFileError,
  NotRegularFileError,
  FileTooLargeError,
  UnsupportedFormatError,
  InvalidStructureError,
} from "./reader-errors.js";
