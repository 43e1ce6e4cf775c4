/**
 * What a folder walk (`ingest`'s and `backfill`'s) does with one directory entry. Regular files with a
 * supported extension are read; folders are walked; other regular files are ignored, as before. Entries
 * that are not regular files are never opened by the walk: a FIFO, socket or device with a supported
 * extension is skipped with a counted reason (reading one could block or never end, issue 13).
 *
 * Symbolic links: a link to a regular file is followed (the reader checks again, on the opened file, that
 * it is still a regular file); a link to a folder is not followed, so a walk can never loop, and is
 * reported so the user can pass the folder itself; a broken link is reported.
 */
import type { Dirent } from "node:fs";
import { stat } from "node:fs/promises";
import { formatForFile } from "./readers/index.js";
import { describeFileType } from "./readers/file-input.js";

export type EntryVerdict =
  { kind: "file" } | { kind: "folder" } | { kind: "ignored" } | { kind: "skipped"; reason: string };

const notRegular = (type: string): EntryVerdict => ({
  kind: "skipped",
  reason: `not a regular file: ${type}; only regular files are read`,
});

export async function classifyEntry(full: string, entry: Dirent): Promise<EntryVerdict> {
  if (entry.isDirectory()) return { kind: "folder" };
  const supported = formatForFile(entry.name) !== undefined;
  if (entry.isFile()) return supported ? { kind: "file" } : { kind: "ignored" };
  if (!entry.isSymbolicLink()) return supported ? notRegular(describeFileType(entry)) : { kind: "ignored" };
  let target;
  try {
    target = await stat(full);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return supported ? { kind: "skipped", reason: `broken symbolic link: ${code}` } : { kind: "ignored" };
  }
  if (target.isDirectory()) {
    return { kind: "skipped", reason: "symbolic link to a folder: not followed (pass the folder itself to read it)" };
  }
  if (!supported) return { kind: "ignored" };
  return target.isFile() ? { kind: "file" } : notRegular(`symbolic link to ${describeFileType(target)}`);
}
