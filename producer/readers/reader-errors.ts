/**
 * Typed failures the readers can hit. Readers never let these escape to the
 * caller: `readDocuments` turns each into a `skipped` event whose reason is
 * the error message. Having classes (with fields) rather than bare strings
 * lets tests and callers tell the failure modes apart, and keeps each message
 * written once, in a form a person can act on.
 */

import { ProducerError } from "../producer-errors.js";

/** Base class: every reader failure names the file and, when known, a 1-based line. */
export abstract class ReaderError extends ProducerError {
  readonly kind = "input";
  readonly file: string;
  readonly line?: number;

  constructor(file: string, message: string, line?: number) {
    super(message);
    this.file = file;
    this.line = line;
  }
}

/** The file could not be opened or read (missing, a directory, permission denied, I/O error). */
export class UnreadableFileError extends ReaderError {
  readonly code?: string;

  constructor(file: string, cause: unknown) {
    const err = cause as NodeJS.ErrnoException | undefined;
    const osMessage = err?.message ?? String(cause);
    super(file, `cannot read file: ${osMessage}`);
    this.code = err?.code;
  }
}

/** The path is a FIFO, a device, a socket or a folder: reading it could block or never end (issue 13). */
export class NotRegularFileError extends ReaderError {
  readonly fileType: string;

  constructor(file: string, fileType: string) {
    super(file, `not a regular file: ${fileType}; only regular files are read`);
    this.fileType = fileType;
  }
}

/** A whole-file format is above the size cap; reading it would risk the producer's memory. */
export class FileTooLargeError extends ReaderError {
  readonly sizeBytes: number;
  readonly limitBytes: number;

  constructor(file: string, sizeBytes: number, limitBytes: number) {
    super(
      file,
      `file is ${formatBytes(sizeBytes)}, above the ${formatBytes(limitBytes)} limit for whole-file formats; ` +
        `split it, or convert it to JSONL (which is streamed line by line)`,
    );
    this.sizeBytes = sizeBytes;
    this.limitBytes = limitBytes;
  }
}

/** The file's extension maps to no reader and no explicit format was given. */
export class UnsupportedFormatError extends ReaderError {
  readonly extension: string;

  constructor(file: string, extension: string) {
    super(
      file,
      `unsupported file extension "${extension || "(none)"}"; expected .jsonl, .ndjson, .txt, .md, .srt, .vtt or .json, ` +
        `or pass an explicit format`,
    );
    this.extension = extension;
  }
}

/** The file parsed as a whole but is not the structure its format requires (e.g. a .json that is not a transcript). */
export class InvalidStructureError extends ReaderError {
  readonly format: string;

  constructor(file: string, format: string, detail: string, line?: number) {
    super(file, detail, line);
    this.format = format;
  }
}

/** Renders a byte count as MiB/KiB for messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
