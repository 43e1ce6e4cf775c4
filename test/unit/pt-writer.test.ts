/** The test kit's `.pt` writer against files written by real PyTorch (test/fixtures/pt, made by
 *  make-pt-fixtures.py with torch 1.13): given the same float16 values it writes the same bytes,
 *  zip layout and pickle included. Also pins the default generated model's bytes, which the
 *  export layouts reuse the generator for: a change there must bump GENERATOR_VERSION. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { float16Bits, float16Value, roundToFloat16 } from "../../kit/test-model/float16.js";
import { ptBytes, type PtTensor } from "../../kit/test-model/pt-writer.js";
import { GENERATOR_VERSION, writeTestModel } from "../../kit/test-model/write-test-model.js";
import { expectedPt, PT_FIXTURES } from "../support/pt-fixtures.js";

const dir = PT_FIXTURES;
const expected = expectedPt;

for (const file of ["sparse_linear_fp16.pt", "colbert_linear_fp16.pt"]) {
  test(`writes ${file} byte for byte as torch.save did`, () => {
    const tensors = Object.entries(expected.files[file]).map(([key, t]) => {
      assert.equal(t.dtype, "float16");
      return [key, { data: Float32Array.from(t.values), shape: t.shape }] as [string, PtTensor];
    });
    // The fixtures come from `module.state_dict()`, which carries `_metadata`.
    const mine = ptBytes(tensors, { archiveName: path.basename(file, ".pt"), moduleMetadata: true });
    const real = readFileSync(path.join(dir, file));
    const first = mine.findIndex((b, i) => b !== real[i]);
    assert.equal(first, -1, `first differing byte at ${first}`);
    assert.equal(mine.length, real.length);
  });
}

test("without module metadata the pickle ends after the items, as FlagEmbedding's saved heads do", () => {
  const t = { data: Float32Array.of(0.5, -0.25), shape: [1, 2] };
  const b = { data: Float32Array.of(0.125), shape: [1] };
  const withMeta = ptBytes(
    [
      ["weight", t],
      ["bias", b],
    ],
    { archiveName: "x", moduleMetadata: true },
  );
  const without = ptBytes(
    [
      ["weight", t],
      ["bias", b],
    ],
    { archiveName: "x" },
  );
  assert.ok(withMeta.includes(Buffer.from("_metadata")));
  assert.ok(!without.includes(Buffer.from("_metadata")));
});

test("float16 rounding is round-to-nearest-even and exact on representable values", () => {
  assert.equal(float16Bits(1), 0x3c00);
  assert.equal(float16Bits(65504), 0x7bff);
  assert.equal(float16Bits(65520), 0x7c00); // halfway to the next step past the max rounds to Inf
  assert.equal(float16Bits(-(2 ** -24)), 0x8001); // smallest subnormal
  assert.equal(float16Bits(2 ** -25), 0); // halfway to the smallest subnormal: ties to even (zero)
  assert.equal(float16Bits(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2^-10: even wins
  assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie between odd and even mantissa: even wins
  assert.ok(Number.isNaN(float16Value(float16Bits(NaN))));
  for (const key of Object.keys(expected.files["colbert_linear_fp16.pt"])) {
    const values = Float32Array.from(expected.files["colbert_linear_fp16.pt"][key].values);
    assert.deepEqual([...roundToFloat16(values.slice())], [...values], "torch's float16 values survive rounding");
  }
});

test(`the default test model's bytes are those of GENERATOR_VERSION ${GENERATOR_VERSION}`, async () => {
  const out = await fs.mkdtemp(path.join(os.tmpdir(), "default-model-"));
  try {
    const files = await writeTestModel(out);
    const sha = createHash("sha256")
      .update(await fs.readFile(files.modelPath))
      .digest("hex");
    // Changing the generator's default output means bumping GENERATOR_VERSION and this hash together.
    assert.equal(GENERATOR_VERSION, 1);
    assert.equal(sha, "ca36797c691cafa07fded797c14a554cf6eae19ed41fa8af604f20d9b59ef3f4");
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
});
