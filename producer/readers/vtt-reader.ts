/**
 * WebVTT (.vtt) reader. Handles the `WEBVTT` header block, NOTE / STYLE /
 * REGION blocks, optional cue identifiers, cue settings after the timing
 * ("align:start position:10%"), optional hours (`mm:ss.ttt`), voice tags
 * (`<v Speaker>` / `<v.class Speaker>`) which become the segment's speaker,
 * and strips all other markup (<i>, <b>, <c.x>, <lang>, <ruby>, inline
 * timestamps) while decoding the character references VTT allows.
 *
 * A cue whose lines carry different voices becomes one segment per voice,
 * all with the cue's timing: that keeps "who said what" exact at the cost of
 * segments sharing a time range.
 */
import type { ReadEvent, Segment } from "../document.js";
import { parseVttTime, type Block, type RawCue } from "./cue-blocks.js";
import type { ReaderContext } from "./reader-context.js";
import { joinCueLines, readSubtitles, type SubtitleFormat } from "./subtitle-reader.js";

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00A0",
  lrm: "\u200E",
  rlm: "\u200F",
};

/** Decodes the named and numeric character references that appear in VTT payloads. */
export function decodeVttEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref.startsWith("#")) {
      const code = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : "\uFFFD";
    }
    return ENTITIES[ref] ?? whole;
  });
}

/** Splits a cue payload into (speaker, text) runs following `<v>` tags; other tags are dropped. */
export function parseVttPayload(payload: string): Segment[] {
  const runs: { speaker?: string; text: string }[] = [];
  let speaker: string | undefined;
  let text = "";
  const flush = (): void => {
    const clean = joinCueLines(decodeVttEntities(text));
    const last = runs[runs.length - 1];
    if (clean !== "" && last && last.speaker === speaker) last.text += ` ${clean}`;
    else if (clean !== "") runs.push({ speaker, text: clean });
    text = "";
  };
  // [^<>]: with [^>] a run of "<" without ">" made the scan quadratic (issue 13).
  const TAG = /<([^<>]*)>/g;
  let pos = 0;
  for (let m = TAG.exec(payload); m !== null; m = TAG.exec(payload)) {
    text += payload.slice(pos, m.index);
    pos = m.index + m[0].length;
    const voice = /^v(?:\.[^\s>]*)?(?:[ \t]+([^>]*))?$/.exec(m[1]);
    if (voice) {
      flush();
      speaker = voice[1]?.trim() || undefined;
    } else if (m[1].trim() === "/v") {
      flush();
      speaker = undefined;
    }
  }
  text += payload.slice(pos);
  flush();
  return runs.map((r) => (r.speaker === undefined ? { text: r.text } : { text: r.text, speaker: r.speaker }));
}

function vttCueSegments(cue: RawCue): Segment[] {
  return parseVttPayload(cue.textLines.join("\n")).map((s) => ({ ...s, start: cue.start, end: cue.end }));
}

/** Drops the header and NOTE/STYLE/REGION blocks; rejects files without a WEBVTT signature. */
function vttCueBlocks(blocks: Block[]): Block[] | { notThisFormat: string } {
  const [header, ...rest] = blocks;
  if (!header || header.line !== 1 || !/^WEBVTT([ \t].*)?$/.test(header.lines[0])) {
    return { notThisFormat: `not a WebVTT file: the first line must be "WEBVTT"` };
  }
  const out: Block[] = [];
  // Tolerate a missing blank line after the header: cues inside the header block are parsed, not lost.
  const firstTiming = header.lines.findIndex((l) => l.includes("-->"));
  if (firstTiming > 0) out.push({ line: header.line + firstTiming, lines: header.lines.slice(firstTiming) });
  for (const block of rest) {
    if (/^(NOTE|STYLE|REGION)([ \t]|$)/.test(block.lines[0])) continue;
    out.push(block);
  }
  return out;
}

export const VTT_FORMAT: SubtitleFormat = {
  name: "vtt",
  parseTime: parseVttTime,
  isIdentifier: (line) => !line.includes("-->"),
  cueBlocks: vttCueBlocks,
  cueSegments: vttCueSegments,
};

/** Reads a WebVTT file as one transcript document. */
export function readVtt(file: string, ctx: ReaderContext): AsyncGenerator<ReadEvent> {
  return readSubtitles(file, ctx, VTT_FORMAT);
}
