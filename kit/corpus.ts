/** Generated corpora for backfill tests: JSONL files of short documents (a few words per
 *  sentence, so chunks stay tiny and many), written as streams so a large corpus never sits in
 *  memory, plus a few whole-file documents. Content is a pure function of the arguments. */
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { once } from "node:events";

const WORDS = [
  "alpha",
  "beta",
  "gamma",
  "delta",
  "river",
  "stone",
  "meeting",
  "budget",
  "plan",
  "cloud",
  "north",
  "window",
];

export function sentence(doc: number, s: number): string {
  return `${WORDS[(doc + s) % WORDS.length]} ${WORDS[(doc * 7 + s * 3) % WORDS.length]} ${s}.`;
}

export function docText(doc: number, sentences: number): string {
  return Array.from({ length: sentences }, (_, s) => sentence(doc, s)).join(" ");
}

export interface JsonlCorpusOptions {
  files: number;
  docsPerFile: number;
  sentencesPerDoc: number;
  /** Sub-folder per file index modulo this (exercises folder walking). */
  folders?: number;
  /** Every n-th line is malformed JSON (0 = none). */
  badEvery?: number;
  idPrefix?: string;
}

/** Writes the corpus; returns the JSONL paths and the ids of the valid documents in order. */
export async function writeJsonlCorpus(
  dir: string,
  o: JsonlCorpusOptions,
): Promise<{ files: string[]; ids: string[] }> {
  const files: string[] = [];
  const ids: string[] = [];
  let doc = 0;
  for (let f = 0; f < o.files; f++) {
    const sub = o.folders ? path.join(dir, `part-${String(f % o.folders).padStart(2, "0")}`) : dir;
    await mkdir(sub, { recursive: true });
    const file = path.join(sub, `shard-${String(f).padStart(4, "0")}.jsonl`);
    files.push(file);
    const out = createWriteStream(file);
    for (let i = 0; i < o.docsPerFile; i++, doc++) {
      let line: string;
      if (o.badEvery && (i + 1) % o.badEvery === 0) line = `{"id": "broken-${doc}", "text": `;
      else {
        const id = `${o.idPrefix ?? "d"}${doc}`;
        ids.push(id);
        line = JSON.stringify({ id, text: docText(doc, o.sentencesPerDoc), metadata: { shard: f } });
      }
      if (!out.write(line + "\n")) await once(out, "drain");
    }
    out.end();
    await once(out, "finish");
  }
  return { files, ids };
}

/** A few plain-text documents (a whole-file format) beside the JSONL. */
export async function writeTextDocs(dir: string, n: number, sentences: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const file = path.join(dir, `note-${i}.txt`);
    await writeFile(file, docText(10_000 + i, sentences));
    files.push(file);
  }
  return files;
}
