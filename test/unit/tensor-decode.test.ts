/** Output decoding by element type (issue 12): every float16 bit pattern decodes to the value
 *  an independent encoder maps back to the same bits, bfloat16 is the float32 upper half,
 *  float32 passes through uncopied, a Float16Array (newer Node) is accepted, and data that
 *  does not match its declared type, or a type the heads cannot read, is refused by name. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { float16Bits } from "../../kit/test-model/float16.js";
import { halfToFloatTable, isDecodable, rowsToFloat32, toFloat32 } from "../../worker/core/tensor-decode.js";

test("float16: every finite bit pattern round-trips through an independent encoder", () => {
  const table = halfToFloatTable();
  let checked = 0;
  for (let h = 0; h < 65536; h++) {
    const exp = (h >> 10) & 0x1f;
    if (exp === 31) continue; // infinities and NaN: below
    assert.equal(float16Bits(table[h]), h, `bits ${h} decoded to ${table[h]}`);
    checked++;
  }
  assert.equal(checked, 63488);
});

test("float16: known values, including the issue's 10860 = 0.0502 and the specials", () => {
  const bits = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 10860, 0x7c00, 0xfc00, 0x7e00]);
  const v = toFloat32("float16", bits);
  assert.deepEqual([...v.subarray(0, 5)], [1, -2, 65504, 2 ** -24, -0]);
  assert.ok(Math.abs(v[5] - 0.0502) < 1e-4, `10860 decoded to ${v[5]}`);
  assert.equal(v[6], Infinity);
  assert.equal(v[7], -Infinity);
  assert.ok(Number.isNaN(v[8]));
});

test("bfloat16: the upper 16 bits of a float32", () => {
  const f = Float32Array.from([1, -2.5, 3.140625, 1e-30, -65536, 0.3333333]);
  const u = new Uint32Array(f.buffer);
  const bits = Uint16Array.from([...u].map((x) => x >>> 16));
  const v = toFloat32("bfloat16", bits);
  const tiny = new Float32Array(new Uint32Array([u[3] & 0xffff0000]).buffer)[0];
  assert.deepEqual([...v.subarray(0, 5)], [1, -2.5, 3.140625, tiny, -65536]);
  assert.ok(Math.abs(v[5] - 0.3333333) < 2e-3 && v[5] !== f[5], "truncated, not exact");
});

test("float32 data is returned as is; a Float16Array is accepted when the runtime has one", () => {
  const f = Float32Array.from([1, 2, 3]);
  assert.equal(toFloat32("float32", f), f);
  const g = globalThis as { Float16Array?: unknown };
  const had = g.Float16Array;
  class FakeFloat16Array extends Float64Array {}
  if (!had) g.Float16Array = FakeFloat16Array;
  try {
    const F16 = g.Float16Array as new (a: number[]) => ArrayLike<number>;
    assert.deepEqual([...toFloat32("float16", new F16([0.5, -1, 2]))], [0.5, -1, 2]);
  } finally {
    if (!had) delete g.Float16Array;
  }
});

test("data of another array type than declared, and undecodable types, are refused by name", () => {
  assert.throws(
    () => toFloat32("float16", new Float32Array(2), "dense_vecs"),
    /dense_vecs: declared float16 but its data is a Float32Array/,
  );
  assert.throws(
    () => toFloat32("int8", new Int8Array(2), "sparse"),
    /sparse: element type int8 is not decodable; use float32, float16, bfloat16/,
  );
  assert.ok(isDecodable("bfloat16") && !isDecodable("float64"));
});

test("rows only: the CLS rows of a [B, L, H] hidden state, for every element type", () => {
  const hidden = Float32Array.from([1, 2, 9, 9, 9, 9, 3, 4, 9, 9, 9, 9]); // B 2, L 3, H 2
  assert.deepEqual([...rowsToFloat32("float32", hidden, 6, 2)], [1, 2, 3, 4]);
  const half = Uint16Array.from([...hidden].map((v) => float16Bits(v)));
  assert.deepEqual([...rowsToFloat32("float16", half, 6, 2)], [1, 2, 3, 4]);
  const bf = Uint16Array.from([...new Uint32Array(hidden.buffer)].map((x) => x >>> 16));
  assert.deepEqual([...rowsToFloat32("bfloat16", bf, 6, 2)], [1, 2, 3, 4]);
});
