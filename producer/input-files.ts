/** Expands the paths given on a command line into the list of files to read: files as
 *  given, folders walked recursively for supported extensions, in sorted order so two runs
 *  over the same tree read the same files in the same order. */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { formatForFile } from "./readers/index.js";

export async function* expandInputs(paths: string[]): AsyncGenerator<string> {
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch {
      yield p; // the reader reports it as a skipped, unreadable file
      continue;
    }
    if (st.isDirectory()) yield* walk(p);
    else yield p;
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(full);
    else if (e.isFile() && formatForFile(e.name)) yield full;
  }
}
