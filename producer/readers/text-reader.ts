/**
 * Plain text / Markdown reader: one document per file, one segment per
 * paragraph (paragraphs are separated by blank lines).
 *
 * Paragraphs are kept as segments so the chunker can keep a paragraph
 * boundary as a newline; line wraps inside a paragraph are left as they are
 * (whitespace is irrelevant to the tokenizer). Trade-off: Markdown syntax
 * (#, *, links) is not stripped; it costs a few tokens but never loses text.
 */
import { documentEvent, skippedEvent, type ReadEvent } from "../document.js";
import { readWholeFile } from "./file-input.js";
import { idFromFileName, readerMetadata, type ReaderContext } from "./reader-context.js";
import { cleanText, isBlank } from "./text-hygiene.js";

/** Splits cleaned text into trimmed, non-empty paragraphs. */
export function splitParagraphs(text: string): string[] {
  return text
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => !isBlank(p));
}

/** Reads a whole text file as one document. */
export async function* readPlainText(file: string, ctx: ReaderContext): AsyncGenerator<ReadEvent> {
  const decoded = await readWholeFile(file, ctx.maxFileBytes);
  const paragraphs = splitParagraphs(cleanText(decoded.text));
  if (paragraphs.length === 0) {
    yield skippedEvent(file, "empty text");
    return;
  }
  yield documentEvent({
    id: idFromFileName(file, ctx),
    kind: "text",
    segments: paragraphs.map((text) => ({ text })),
    metadata: readerMetadata("text", decoded.invalidUtf8, { paragraphs: paragraphs.length }),
    source: { file },
  });
}
