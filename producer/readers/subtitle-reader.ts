/**
 * Generic subtitle-file reader that SRT and WebVTT plug into: reads the file,
 * splits it into blocks, turns cues into timed segments, and reports every
 * cue it could not use as a `skipped` event (with the cue's line number)
 * while still yielding the document built from the good cues.
 *
 * Trade-off: cue problems are emitted before the document, because the
 * document is only complete once the whole file has been parsed; consumers
 * should not assume any ordering between the two kinds of events.
 */
import { documentEvent, skippedEvent, type ReadEvent, type Segment } from "../document.js";
import { parseCueBlock, splitBlocks, type Block, type CueProblem, type RawCue, type TimeParser } from "./cue-blocks.js";
import { readWholeFile } from "./file-input.js";
import { InvalidStructureError } from "./reader-errors.js";
import { idFromFileName, readerMetadata, type ReaderContext } from "./reader-context.js";
import { cleanText } from "./text-hygiene.js";

/** What a concrete subtitle format provides. */
export interface SubtitleFormat {
  name: "srt" | "vtt";
  parseTime: TimeParser;
  /** Whether a line right above a timing line is the cue's index/identifier. */
  isIdentifier: (line: string) => boolean;
  /**
   * Drops format-level blocks (VTT header, NOTE/STYLE/REGION) and returns the
   * cue blocks, or a reason the file is not of this format at all.
   */
  cueBlocks: (blocks: Block[]) => Block[] | { notThisFormat: string };
  /** Converts one cue's raw text lines to zero or more segments (VTT voices can split a cue). */
  cueSegments: (cue: RawCue) => Segment[];
}

/** Reads a subtitle file with the given format definition. */
export async function* readSubtitles(
  file: string,
  ctx: ReaderContext,
  format: SubtitleFormat,
): AsyncGenerator<ReadEvent> {
  const decoded = await readWholeFile(file, ctx.maxFileBytes);
  const blocks = format.cueBlocks(splitBlocks(cleanText(decoded.text)));
  if (!Array.isArray(blocks)) throw new InvalidStructureError(file, format.name, blocks.notThisFormat);

  const segments: Segment[] = [];
  const problems: CueProblem[] = [];
  let cues = 0;
  for (const block of blocks) {
    const parsed = parseCueBlock(block, format.parseTime, format.isIdentifier);
    problems.push(...parsed.problems);
    for (const cue of parsed.cues) {
      const cueSegments = format.cueSegments(cue);
      if (cueSegments.length === 0) {
        problems.push({ line: cue.line, reason: `line ${cue.line}: cue has no text` });
        continue;
      }
      cues += 1;
      segments.push(...cueSegments);
    }
  }
  for (const p of problems) yield skippedEvent(file, p.reason, p.line);
  if (segments.length === 0) {
    yield skippedEvent(
      file,
      problems.length > 0 ? `empty text (no usable cues; ${problems.length} skipped)` : "empty text",
    );
    return;
  }
  yield documentEvent({
    id: idFromFileName(file, ctx),
    kind: "transcript",
    segments,
    metadata: readerMetadata(format.name, decoded.invalidUtf8, { cues, skipped_cues: problems.length }),
    source: { file },
  });
}

/** Collapses a cue's lines into one line of text: subtitle line breaks are layout, not meaning. */
export function joinCueLines(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
