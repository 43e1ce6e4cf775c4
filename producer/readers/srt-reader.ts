/**
 * SubRip (.srt) reader: numbered cues with `HH:MM:SS,mmm --> HH:MM:SS,mmm`
 * timing and one or more lines of text. Handles BOM and CRLF (via text
 * hygiene), optional/missing index lines, and strips the formatting markup
 * players accept in SRT: HTML-like tags (<i>, <b>, <font …>) and ASS override
 * blocks ({\an8}). SRT has no speaker convention, so segments carry none.
 */
import type { ReadEvent, Segment } from "../document.js";
import { parseSrtTime, type RawCue } from "./cue-blocks.js";
import type { ReaderContext } from "./reader-context.js";
import { joinCueLines, readSubtitles, type SubtitleFormat } from "./subtitle-reader.js";

/** Removes SRT formatting markup from cue text. */
export function stripSrtMarkup(text: string): string {
  // The classes exclude the opening character too, so unclosed runs cannot make the scan quadratic (issue 13).
  return text.replace(/<\/?[a-zA-Z][^<>]*>/g, "").replace(/\{\\[^{}]*\}/g, "");
}

function srtCueSegments(cue: RawCue): Segment[] {
  const text = joinCueLines(stripSrtMarkup(cue.textLines.join("\n")));
  return text === "" ? [] : [{ text, start: cue.start, end: cue.end }];
}

export const SRT_FORMAT: SubtitleFormat = {
  name: "srt",
  parseTime: parseSrtTime,
  isIdentifier: (line) => /^\s*\d+\s*$/.test(line),
  cueBlocks: (blocks) => blocks,
  cueSegments: srtCueSegments,
};

/** Reads an SRT file as one transcript document. */
export function readSrt(file: string, ctx: ReaderContext): AsyncGenerator<ReadEvent> {
  return readSubtitles(file, ctx, SRT_FORMAT);
}
