/** The formatter check (issue 14): every file that `.prettier-scope` names is as Prettier would
 *  write it with `.prettierrc` (printWidth 120). The scope lists globs, so it can grow from the
 *  files written since the formatter came to the whole tree once that has been formatted in one
 *  commit; files `.prettierignore` excludes are left out, as `npm run format:check` leaves them.
 *  Static: reads files only. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import * as prettier from "prettier";
import { glob } from "tinyglobby";

/** The checkout: the nearest folder above this file with a .prettier-scope (wherever the test layers put it). */
function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, ".prettier-scope"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no .prettier-scope above ${from}`);
  }
}
const root = findRoot(path.dirname(fileURLToPath(import.meta.url)));

async function scopeGlobs(): Promise<string[]> {
  const text = await readFile(path.join(root, ".prettier-scope"), "utf8");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/** The files one glob names that Prettier would format (not ignored, with a known parser). */
async function filesOf(pattern: string): Promise<string[]> {
  const files = await glob(pattern, { cwd: root, dot: true, onlyFiles: true, ignore: ["node_modules/**", "dist/**"] });
  const kept: string[] = [];
  for (const f of files.sort()) {
    const info = await prettier.getFileInfo(path.join(root, f), {
      ignorePath: [path.join(root, ".gitignore"), path.join(root, ".prettierignore")],
    });
    if (!info.ignored && info.inferredParser) kept.push(f);
  }
  return kept;
}

test("files in .prettier-scope are formatted with .prettierrc (run npm run format to fix)", async () => {
  const globs = await scopeGlobs();
  assert.ok(globs.length > 0, ".prettier-scope lists no files");
  const unformatted: string[] = [];
  for (const pattern of globs) {
    const files = await filesOf(pattern);
    assert.ok(files.length > 0, `.prettier-scope: "${pattern}" names no file the formatter checks`);
    for (const f of files) {
      const file = path.join(root, f);
      const options = await prettier.resolveConfig(file, { editorconfig: false });
      assert.equal(options?.printWidth, 120, `${f}: .prettierrc not found or printWidth not 120`);
      const source = await readFile(file, "utf8");
      if (!(await prettier.check(source, { ...options, filepath: file }))) unformatted.push(f);
    }
  }
  assert.deepEqual(unformatted, [], `not formatted: ${unformatted.join(", ")}`);
});
