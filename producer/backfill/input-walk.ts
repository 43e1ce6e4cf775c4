/** Expands backfill inputs (files, folders, globs) lazily into files, in an order that is the
 *  same on every run and machine: inputs in the order given; inside an input, paths compared
 *  segment by segment in UTF-16 code-unit order (not locale order), which is the order of a
 *  depth-first walk over sorted directory listings. A checkpoint names a place in this order
 *  (`WalkPosition`), and a resumed walk skips whole subtrees before it without reading them.
 *  Folders are walked by folder-walk.ts, the same walk as `ingest`'s (memory: the largest directory);
 *  only files with a supported extension are taken from folders; entries that are not regular files
 *  are skips with a reason, and symlinks to folders are not followed (input-entry.ts). A glob is
 *  expanded by tinyglobby, which returns all matches at once (about 100 bytes per file): for
 *  millions of files pass the folder. */
import { stat } from "node:fs/promises";
import path from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { compareSegments, pathSegments as segments, walkFolder } from "../folder-walk.js";

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

export function compareWalkPositions(a: WalkPosition, b: WalkPosition): number {
  return a.input !== b.input ? a.input - b.input : compareSegments(segments(a.file), segments(b.file));
}

export async function* walkInputs(inputs: string[], opts: WalkOptions = {}): AsyncGenerator<WalkedEntry> {
  const from = opts.from;
  for (let input = 0; input < inputs.length; input++) {
    if (from && input < from.position.input) continue;
    const target =
      from && input === from.position.input
        ? { segs: segments(from.position.file), inclusive: from.inclusive }
        : undefined;
    const keep = (file: string) => {
      if (!target) return true;
      const c = compareSegments(segments(file), target.segs);
      return c > 0 || (c === 0 && target.inclusive);
    };
    for await (const e of expandOne(inputs[input], input, target?.segs))
      if (e.kind === "missing" || keep(e.file)) yield e;
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
    yield* walkFolderOf(p, input, target);
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

/** The folder walk with the input's index on each entry. */
async function* walkFolderOf(dir: string, input: number, target: string[] | undefined): AsyncGenerator<WalkedEntry> {
  for await (const e of walkFolder(dir, target)) yield { ...e, input };
}

/** Files and bytes the inputs hold (what `walkInputs` would yield), for progress and ETA. */
export async function measureInputs(inputs: string[], signal?: AbortSignal): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for await (const e of walkInputs(inputs)) {
    if (signal?.aborted) break;
    if (e.kind !== "file") continue;
    files++;
    bytes += await stat(e.file).then(
      (s) => s.size,
      () => 0,
    );
  }
  return { files, bytes };
}
