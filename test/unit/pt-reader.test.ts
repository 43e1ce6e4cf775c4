/** The `.pt` reader against files written by real PyTorch (test/fixtures/pt, made by
 *  make-pt-fixtures.py with Debian's python3-torch 1.13): values, dtypes, shapes and strided
 *  views match what torch reported, and a pickle naming any other callable is refused. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { unzipSync, zipSync } from "fflate";
import path from "node:path";
import { ptToFloat32, readPtStateDict } from "../../worker/model-tools/pt-reader.js";
import { PtFormatError, UnsafePickleError } from "../../worker/model-tools/model-tool-errors.js";
import { expectedPt, PT_FIXTURES } from "../support/pt-fixtures.js";

const dir = PT_FIXTURES;
const expected = expectedPt;

for (const [file, tensors] of Object.entries(expected.files)) {
  test(`reads ${file} as torch wrote it`, async () => {
    const sd = await readPtStateDict(path.join(dir, file));
    assert.deepEqual([...sd.keys()], Object.keys(tensors));
    for (const [key, want] of Object.entries(tensors)) {
      const t = sd.get(key)!;
      assert.equal(t.dtype, want.dtype, `${file} ${key} dtype`);
      assert.deepEqual(t.shape, want.shape, `${file} ${key} shape`);
      // Every value is exact: float16/bfloat16 widen to float32 losslessly, float32 is float32.
      assert.deepEqual(
        [...ptToFloat32(t)],
        want.values.map((v) => Math.fround(v)),
        `${file} ${key} values`,
      );
    }
  });
}

test("the BGE-M3-shaped head files hold an nn.Linear state dict: weight [out,in] and bias [out]", async () => {
  const colbert = await readPtStateDict(path.join(dir, "colbert_linear_fp16.pt"));
  assert.deepEqual(colbert.get("weight")!.shape, [6, 8]);
  assert.deepEqual(colbert.get("bias")!.shape, [6]);
  assert.equal(colbert.get("weight")!.bytes.length, 6 * 8 * 2);
});

test("a pickle that calls os.system is refused by name, with GLOBAL and with STACK_GLOBAL", async () => {
  await assert.rejects(readPtStateDict(path.join(dir, "malicious.pt")), (err: unknown) => {
    assert.ok(err instanceof UnsafePickleError);
    assert.match(err.message, /posix\.system/);
    assert.match(err.message, /^malicious\.pt: refused/);
    assert.equal(err.kind, "model");
    return true;
  });
  const stackGlobal = readPtStateDict(path.join(dir, "malicious_stack_global.pt"));
  await assert.rejects(stackGlobal, /refused: the pickle calls posix\.system/);
});

test("a storage missing from the zip is named", async () => {
  const entries = unzipSync(readFileSync(path.join(dir, "colbert_linear_fp16.pt")));
  delete entries["colbert_linear_fp16/data/1"];
  const tmp = mkdtempSync(path.join(os.tmpdir(), "pt-reader-"));
  try {
    writeFileSync(path.join(tmp, "truncated.pt"), zipSync(entries, { level: 0 }));
    await assert.rejects(
      readPtStateDict(path.join(tmp, "truncated.pt")),
      /truncated\.pt: not a readable PyTorch state dict: bias: storage data\/1 is missing from the zip/,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("a file that is not a torch zip gets a clear format error", async () => {
  await assert.rejects(readPtStateDict(path.join(dir, "expected.json")), (err: unknown) => {
    assert.ok(err instanceof PtFormatError);
    assert.match(err.message, /expected\.json: not a readable PyTorch state dict: not a zip archive/);
    return true;
  });
});
