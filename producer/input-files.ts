/** Expands the paths given on a command line into the list of files to read: files as
 *  given, folders walked recursively for supported extensions, in sorted order so two runs
 *  over the same tree read the same files in the same order. Entries of a folder that are not
 *  regular files come out as skips with a reason (input-entry.ts); a path named on the command
 *  line is passed on as given, and the reader refuses it if it is not a regular file. */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { classifyEntry } from "./input-entry.js";

export type InputEntry = { kind: "file"; file: string } | { kind: "skipped"; file: string; reason: string };

export async function* inputEntries(paths: string[]): AsyncGenerator<InputEntry> {
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch {
      yield { kind: "file", file: p }; // the reader reports it as a skipped, unreadable file
      continue;
    }
    if (st.isDirectory()) yield* walk(p);
    else yield { kind: "file", file: p };
  }
}

/** The files of `inputEntries`, without the skips (callers that only need something to read). */
export async function* expandInputs(paths: string[]): AsyncGenerator<string> {
  for await (const e of inputEntries(paths)) if (e.kind === "file") yield e.file;
}

async function* walk(dir: string): AsyncGenerator<InputEntry> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    const verdict = await classifyEntry(full, e);
    if (verdict.kind === "folder") yield* walk(full);
    else if (verdict.kind === "file") yield { kind: "file", file: full };
    else if (verdict.kind === "skipped") yield { kind: "skipped", file: full, reason: verdict.reason };
  }
}
