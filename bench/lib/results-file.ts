/** Where a bench run's results go: `<dir>/<timestamp>-<commit>.json` with the Markdown summary
 *  beside it, for any results shape that has a start time and a commit (see results-schema.ts).
 *  Acts only when a bench finishes and is allowed to write. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { RunHeader } from "./results-schema.js";

export function resultsBaseName(r: Pick<RunHeader, "startedAt" | "git">): string {
  const ts = r.startedAt.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  return `${ts}-${r.git.commit}`;
}

/** Writes `<dir>/<timestamp>-<commit>.json` and the Markdown beside it. */
export function writeResults(
  dir: string,
  r: Pick<RunHeader, "startedAt" | "git">,
  markdown: string,
): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const base = path.join(dir, resultsBaseName(r));
  writeFileSync(`${base}.json`, JSON.stringify(r, null, 2) + "\n");
  writeFileSync(`${base}.md`, markdown);
  return { json: `${base}.json`, md: `${base}.md` };
}
