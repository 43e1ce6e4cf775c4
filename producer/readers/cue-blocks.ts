/**
 * Shared machinery for subtitle formats (SRT, WebVTT): splitting a file into
 * blank-line separated blocks, parsing timestamps, and turning a block into
 * timed cues.
 *
 * The parser is tolerant in the ways real subtitle files are broken: a
 * missing blank line between two cues (the next cue's index/identifier line
 * is recognised because it sits right above a timing line), a cue settings
 * tail after the timing, stray text. Anything it cannot use is returned as a
 * `CueProblem` with its line number instead of being dropped silently.
 */

/** A run of non-blank lines; `line` is the 1-based line number of the first one. */
export interface Block {
  line: number;
  lines: string[];
}

/** A cue with valid timing; text lines are still raw (tags not yet processed). */
export interface RawCue {
  line: number;
  start: number;
  end: number;
  textLines: string[];
}

/** Something in the file that could not become a cue, with a reason a person can act on. */
export interface CueProblem {
  line: number;
  reason: string;
}

/** Parses one timestamp to seconds, or undefined if malformed. */
export type TimeParser = (stamp: string) => number | undefined;

/** Splits (already cleaned, "\n"-separated) text into blocks of non-blank lines. */
export function splitBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  let current: Block | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trimEnd(); // not /\s+$/: quadratic on long whitespace runs (issue 13)
    if (line.trim() === "") {
      current = undefined;
      return;
    }
    if (!current) {
      current = { line: i + 1, lines: [] };
      blocks.push(current);
    }
    current.lines.push(line);
  });
  return blocks;
}

function toSeconds(h: string | undefined, m: string, s: string, ms: string): number | undefined {
  const minutes = Number(m);
  const seconds = Number(s);
  if (minutes > 59 || seconds > 59) return undefined;
  const totalMs = ((Number(h ?? "0") * 60 + minutes) * 60 + seconds) * 1000 + Number(ms);
  // Integer milliseconds divided once: gives exactly the double nearest the decimal literal (1.234, not 1.2339999).
  return totalMs / 1000;
}

/** SRT `HH:MM:SS,mmm`; a "." instead of "," is accepted because many real files use it. */
export const parseSrtTime: TimeParser = (stamp) => {
  const m = /^(\d{1,3}):(\d{1,2}):(\d{1,2})[,.](\d{3})$/.exec(stamp.trim());
  return m ? toSeconds(m[1], m[2], m[3], m[4]) : undefined;
};

/** WebVTT `[hh:]mm:ss.ttt` (hours optional, at least two digits when present). */
export const parseVttTime: TimeParser = (stamp) => {
  const m = /^(?:(\d{2,}):)?(\d{2}):(\d{2})\.(\d{3})$/.exec(stamp.trim());
  return m ? toSeconds(m[1], m[2], m[3], m[4]) : undefined;
};

const TIMING = /^\s*(\S+)\s+-->\s+(\S+)/;

function isTimingLine(line: string | undefined): boolean {
  return line !== undefined && line.includes("-->");
}

/**
 * Parses one block into cues. `isIdentifier` says whether a line directly
 * above a timing line is that cue's index/identifier (SRT: digits only;
 * VTT: any text) rather than text of the previous cue.
 */
export function parseCueBlock(
  block: Block,
  parseTime: TimeParser,
  isIdentifier: (line: string) => boolean,
): { cues: RawCue[]; problems: CueProblem[] } {
  const cues: RawCue[] = [];
  const problems: CueProblem[] = [];
  let current: RawCue | undefined;
  let skipping = false; // inside a cue we already reported as broken: ignore its text lines
  block.lines.forEach((line, i) => {
    const lineNo = block.line + i;
    const next = block.lines[i + 1];
    if (isTimingLine(line)) {
      current = undefined;
      skipping = false;
      const m = TIMING.exec(line);
      const start = m ? parseTime(m[1]) : undefined;
      const end = m ? parseTime(m[2]) : undefined;
      if (start === undefined || end === undefined) {
        problems.push({ line: lineNo, reason: `line ${lineNo}: malformed cue timing: "${line.trim()}"` });
        skipping = true;
      } else if (end < start) {
        problems.push({ line: lineNo, reason: `line ${lineNo}: cue ends (${end}s) before it starts (${start}s)` });
        skipping = true;
      } else {
        current = { line: lineNo, start, end, textLines: [] };
        cues.push(current);
      }
    } else if (isTimingLine(next) && isIdentifier(line)) {
      // Index / identifier of the cue starting on the next line.
      current = undefined;
      skipping = false;
    } else if (current) {
      current.textLines.push(line);
    } else if (!skipping) {
      problems.push({
        line: lineNo,
        reason: `line ${lineNo}: text outside any cue (no timing line above it): "${line.trim().slice(0, 60)}"`,
      });
      skipping = true;
    }
  });
  return { cues, problems };
}
