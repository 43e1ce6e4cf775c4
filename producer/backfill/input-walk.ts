/** Expands backfill inputs (files, folders, globs) lazily into files, in an order that is the
 *  same on every run and machine: inputs in the order given; inside an input, paths compared
 *  segment by segment in UTF-16 code-unit order (not locale order), which is the order of a
 *  depth-first walk over sorted directory listings. A checkpoint names a place in this order
 *  (`WalkPosition`), and a resumed walk skips whole subtrees before it without reading them.
 *  Folders are read one listing at a time (memory: the largest directory); only files with a
 *  supported extension are taken from folders; entries that are not regular files are skips with a
 *  reason, and symlinks to folders are not followed (input-entry.ts). A glob is expanded by tinyglobby, which returns
 *  all matches at once (about 100 bytes per file): for millions of files pass the folder. */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { classifyEntry } from "../input-entry.js";

export interface WalkPosition {
  /** Index of the input (as given) the file came from. */
  input: number;
  file: string;
}

export type WalkedEntry =
  | { kind: "file"; input: number; file: string }
  /** A glob that matched nothing, or a path that does not exist (reported, not fatal). */
  | { kind: "missing"; input: number; file: string; reason: string }
  /** A folder entry that is not read: a FIFO, device, socket, symlink to a folder, broken symlink (counted). */
  | { kind: "skipped"; input: number; file: string; reason: string };

export interface WalkOptions {
  /** Start at this position: files before it are skipped, and so is the position itself unless `inclusive`. */
  from?: { position: WalkPosition; inclusive: boolean };
}

const segments = (p: string) => path.normalize(p).split(path.sep).filter((s) => s !== "" && s !== ".");

/** Code-unit comparison of segment lists; a prefix sorts first (a folder before its contents). */
function compareSegments(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length;
}

export function compareWalkPositions(a: WalkPosition, b: WalkPosition): number {
  return a.input !== b.input ? a.input - b.input : compareSegments(segments(a.file), segments(b.file));
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export async function* walkInputs(inputs: string[], opts: WalkOptions = {}): AsyncGenerator<WalkedEntry> {
  const from = opts.from;
  for (let input = 0; input < inputs.length; input++) {
    if (from && input < from.position.input) continue;
    const target = from && input === from.position.input ? { segs: segments(from.position.file), inclusive: from.inclusive } : undefined;
    const keep = (file: string) => {
      if (!target) return true;
      const c = compareSegments(segments(file), target.segs);
      return c > 0 || (c === 0 && target.inclusive);
    };
    for await (const e of expandOne(inputs[input], input, target?.segs)) if (e.kind === "missing" || keep(e.file)) yield e;
  }
}

async function* expandOne(p: string, input: number, target: string[] | undefined): AsyncGenerator<WalkedEntry> {
  let st;
  try {
    st = await stat(p);
  } catch {
    st = undefined;
  }
  if (st?.isDirectory()) {
    yield* walkFolder(p, input, target);
  } else if (st) {
    yield { kind: "file", input, file: p };
  } else if (isDynamicPattern(p)) {
    const files = await glob(p, { onlyFiles: true, absolute: path.isAbsolute(p), expandDirectories: false });
    if (files.length === 0) yield { kind: "missing", input, file: p, reason: "glob matched no files" };
    const sorted = files.map((f) => ({ f, s: segments(f) })).sort((a, b) => compareSegments(a.s, b.s));
    for (const { f } of sorted) yield { kind: "file", input, file: f };
  } else {
    yield { kind: "missing", input, file: p, reason: "no such file or folder" };
  }
}

/** Depth-first over sorted listings; skips entries (and whole subtrees) that sort before `target`. */
async function* walkFolder(dir: string, input: number, target: string[] | undefined): AsyncGenerator<WalkedEntry> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort(byName);
  for (const e of entries) {
    const full = path.join(dir, e.name);
    let t = target;
    if (t) {
      const s = segments(full);
      const isAncestor = e.isDirectory() && s.length < t.length && compareSegments(s, t.slice(0, s.length)) === 0;
      if (!isAncestor && compareSegments(s, t) < 0) continue;
      if (!isAncestor) t = undefined; // past the target: everything after is kept
    }
    const verdict = await classifyEntry(full, e);
    if (verdict.kind === "folder") yield* walkFolder(full, input, t);
    else if (verdict.kind === "file") yield { kind: "file", input, file: full };
    else if (verdict.kind === "skipped") yield { kind: "skipped", input, file: full, reason: verdict.reason };
  }
}

/** Files and bytes the inputs hold (what `walkInputs` would yield), for progress and ETA. */
export async function measureInputs(inputs: string[], signal?: AbortSignal): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for await (const e of walkInputs(inputs)) {
    if (signal?.aborted) break;
    if (e.kind !== "file") continue;
    files++;
    bytes += await stat(e.file).then((s) => s.size, () => 0);
  }
  return { files, bytes };
}
