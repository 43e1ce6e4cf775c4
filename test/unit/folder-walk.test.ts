/** `ingest` and `backfill` walk a folder in one order (issue 14): code-unit order, which puts
 *  upper case before lower case and accented names after ASCII ones on every machine, where
 *  locale order would not. Runs on a temporary tree; no Redis, no model. */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { walkInputs } from "../../producer/backfill/input-walk.js";
import { inputEntries } from "../../producer/input-files.js";

let dir = "";

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "folder-walk-"));
  for (const f of ["b.txt", "B.txt", "a.txt", "Z/z.txt", "é.txt", "e.txt", "a-b/x.txt", "a.b/y.txt", "skip.bin"]) {
    await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
    await writeFile(path.join(dir, f), "text\n");
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("ingest and backfill walk a folder in the same code-unit order", async () => {
  const ingest: string[] = [];
  for await (const e of inputEntries([dir])) ingest.push(path.relative(dir, e.file));
  const backfill: string[] = [];
  for await (const e of walkInputs([dir])) backfill.push(path.relative(dir, e.file));
  const expected = ["B.txt", "Z/z.txt", "a-b/x.txt", "a.b/y.txt", "a.txt", "b.txt", "e.txt", "é.txt"];
  assert.deepEqual(
    ingest,
    expected.map((f) => path.join(...f.split("/"))),
  );
  assert.deepEqual(backfill, ingest);
});
