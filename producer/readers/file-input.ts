/**
 * Getting text off disk, in the two shapes the readers need:
 *  - `readWholeFile` for formats that must be parsed as a whole (JSON, SRT,
 *    VTT, plain text), capped in size so a stray multi-GB file cannot take
 *    the producer down;
 *  - `readLines` for JSONL, streaming line by line with constant memory.
 *
 * `readLines` splits raw bytes on "\n" itself instead of using node:readline:
 * readline decodes through a StringDecoder that silently turns invalid UTF-8
 * into U+FFFD, and we need to know *which* line was invalid to flag it. It
 * also caps line length, so a file with no newlines degrades into one
 * `skipped` line rather than an out-of-memory crash.
 *
 * Both open the file without blocking and check the opened descriptor is a
 * regular file before reading: a FIFO, a device such as /dev/zero (or a
 * symlink to one) would otherwise hang the producer or feed it forever
 * (issue 13). Checking the descriptor, not the path, leaves no window for
 * the path to be swapped between the check and the read.
 */
import { constants, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { decodeUtf8, type DecodedText } from "./text-hygiene.js";
import { FileTooLargeError, NotRegularFileError, UnreadableFileError } from "./reader-errors.js";

/** Default cap for whole-file formats. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Default cap for one JSONL line. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

type TypeProbe = Pick<Stats, "isDirectory" | "isFIFO" | "isCharacterDevice" | "isBlockDevice" | "isSocket">;

/** What a non-regular file is, for skip reasons ("a FIFO (named pipe)"); takes `Stats` or a `Dirent`. */
export function describeFileType(info: TypeProbe): string {
  if (info.isDirectory()) return "a folder";
  if (info.isFIFO()) return "a FIFO (named pipe)";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  return info.isSocket() ? "a socket" : "not a regular file";
}

/**
 * Opens `file` for reading without blocking (a FIFO would block in open) and returns the handle and size
 * if it is a regular file; throws `UnreadableFileError` or `NotRegularFileError` (handle closed).
 */
export async function openRegularFile(file: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new UnreadableFileError(file, err);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new NotRegularFileError(file, describeFileType(info));
    return { handle, size: info.size };
  } catch (err) {
    await handle.close();
    throw err instanceof NotRegularFileError ? err : new UnreadableFileError(file, err);
  }
}

/** Reads and decodes a whole file; throws `UnreadableFileError`, `NotRegularFileError` or `FileTooLargeError`. */
export async function readWholeFile(file: string, maxBytes: number): Promise<DecodedText> {
  const { handle, size } = await openRegularFile(file);
  try {
    if (size > maxBytes) throw new FileTooLargeError(file, size, maxBytes);
    return decodeUtf8(await handle.readFile().catch((err) => Promise.reject(new UnreadableFileError(file, err))));
  } finally {
    await handle.close();
  }
}

/** One line of a streamed file. `tooLongBytes` is set (and `text` empty) when the line exceeded the cap. */
export interface LineRecord extends DecodedText {
  line: number;
  tooLongBytes?: number;
  /** Byte offset just past this line and its "\n": where the next line starts. */
  end: number;
}

/**
 * Streams a file's lines (1-based numbers, "\n"-terminated; a trailing "\r"
 * is left for text cleaning), from `start` (a line start; default the top).
 * Throws `UnreadableFileError` if the file cannot be opened or a read fails part-way.
 */
export async function* readLines(
  file: string,
  maxLineBytes: number,
  start = { offset: 0, line: 0 },
): AsyncGenerator<LineRecord> {
  const { handle } = await openRegularFile(file);
  const stream = handle.createReadStream({ highWaterMark: 64 * 1024, start: start.offset }); // closes the handle
  let parts: Buffer[] = [];
  let lineBytes = 0;
  let line = start.line + 1;
  let base = start.offset; // file offset of the current buffer's first byte
  let lineEnd = start.offset;
  const finish = (): LineRecord => {
    const record: LineRecord =
      lineBytes > maxLineBytes
        ? { line, text: "", invalidUtf8: false, tooLongBytes: lineBytes, end: lineEnd }
        : { line, ...decodeUtf8(Buffer.concat(parts)), end: lineEnd };
    parts = [];
    lineBytes = 0;
    return record;
  };
  const iterator = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw new UnreadableFileError(file, err);
      }
      if (next.done) break;
      const chunk = next.value;
      let pos = 0;
      while (pos < chunk.length) {
        const nl = chunk.indexOf(0x0a, pos);
        const end = nl === -1 ? chunk.length : nl;
        lineBytes += end - pos;
        // Once over the cap, stop buffering but keep counting, so the report says how long the line was.
        if (lineBytes <= maxLineBytes) parts.push(chunk.subarray(pos, end));
        else parts = [];
        if (nl === -1) break;
        lineEnd = base + nl + 1;
        yield finish();
        line += 1;
        pos = nl + 1;
      }
      base += chunk.length;
    }
    lineEnd = base;
    if (lineBytes > 0) yield finish();
  } finally {
    stream.destroy();
  }
}
