/** Expands the paths given on a command line into the list of files to read: files as
 *  given, folders walked recursively for supported extensions, in code-unit order (folder-walk.ts,
 *  the same walk as backfill's) so two runs over the same tree read the same files in the same
 *  order. Entries of a folder that are not regular files come out as skips with a reason
 *  (input-entry.ts); a path named on the command line is passed on as given, and the reader
 *  refuses it if it is not a regular file. */
import { stat } from "node:fs/promises";
import { walkFolder, type FolderEntry } from "./folder-walk.js";

export type InputEntry = FolderEntry;

export async function* inputEntries(paths: string[]): AsyncGenerator<InputEntry> {
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch {
      yield { kind: "file", file: p }; // the reader reports it as a skipped, unreadable file
      continue;
    }
    if (st.isDirectory()) yield* walkFolder(p);
    else yield { kind: "file", file: p };
  }
}

/** The files of `inputEntries`, without the skips (callers that only need something to read). */
export async function* expandInputs(paths: string[]): AsyncGenerator<string> {
  for await (const e of inputEntries(paths)) if (e.kind === "file") yield e.file;
}
