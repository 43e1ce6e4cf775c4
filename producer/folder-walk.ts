/** The producer's one folder walk, shared by `ingest` (input-files.ts) and `backfill`
 *  (backfill/input-walk.ts), so both read a folder's files in the same order: depth first over
 *  listings sorted by UTF-16 code unit. Code-unit order is the same on every machine, where
 *  locale order (`localeCompare`) depends on the ICU data and the locale (issue 14). Reads one
 *  listing at a time, so memory is bounded by the largest folder, not the tree. What happens
 *  to each entry (read, walked, ignored, skipped with a reason; symlink rules) is input-entry.ts. */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { classifyEntry } from "./input-entry.js";

export type FolderEntry = { kind: "file"; file: string } | { kind: "skipped"; file: string; reason: string };

/** A path as its segments, without empty and `.` ones, for position comparisons. */
export const pathSegments = (p: string): string[] =>
  path
    .normalize(p)
    .split(path.sep)
    .filter((s) => s !== "" && s !== ".");

/** Code-unit comparison of segment lists; a prefix sorts first (a folder before its contents). */
export function compareSegments(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length;
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Walks `dir` depth first over code-unit-sorted listings. With `target` (a path's segments), entries
 *  and whole subtrees that sort before it are passed over without being read (a resumed backfill). */
export async function* walkFolder(dir: string, target?: string[]): AsyncGenerator<FolderEntry> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort(byName);
  for (const e of entries) {
    const full = path.join(dir, e.name);
    let t = target;
    if (t) {
      const s = pathSegments(full);
      const isAncestor = e.isDirectory() && s.length < t.length && compareSegments(s, t.slice(0, s.length)) === 0;
      if (!isAncestor && compareSegments(s, t) < 0) continue;
      if (!isAncestor) t = undefined; // past the target: everything after is kept
    }
    const verdict = await classifyEntry(full, e);
    if (verdict.kind === "folder") yield* walkFolder(full, t);
    else if (verdict.kind === "file") yield { kind: "file", file: full };
    else if (verdict.kind === "skipped") yield { kind: "skipped", file: full, reason: verdict.reason };
  }
}
