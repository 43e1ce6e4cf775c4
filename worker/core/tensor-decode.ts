/** Turns an ONNX output tensor's data into float32 by its declared element type, before the
 *  heads read it (issue 12: casting a float16 `Uint16Array` to `Float32Array` by assertion
 *  stored zeros and raw bit patterns). Trades 256 KB of memory, a 65,536-entry table built
 *  on first use, for a float16 decode that is one indexed load per element with no closure
 *  in the loop; bfloat16 is the upper half of a float32, so it is a 16-bit shift into a
 *  Uint32Array view. float32 data is returned as is, without a copy; `rowsToFloat32` decodes only
 *  the rows the heads read (the CLS rows of a hidden state). Types other than these
 *  three are refused when the model is loaded (`checkDecodable`), never at run time. Pure. */

/** Element types the heads accept (onnxruntime-common's names). */
export const DECODABLE_TYPES = ["float32", "float16", "bfloat16"] as const;
export type DecodableType = (typeof DECODABLE_TYPES)[number];

export function isDecodable(type: string): type is DecodableType {
  return (DECODABLE_TYPES as readonly string[]).includes(type);
}

let halfTable: Float32Array | undefined;

/** float32 value of every float16 bit pattern (subnormals, infinities and NaN included). */
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

/** Newer Node versions have Float16Array; onnxruntime-node may hand float16 data back in one. */
function isFloat16Array(data: unknown): data is ArrayLike<number> {
  const F16 = (globalThis as { Float16Array?: abstract new (...a: never[]) => unknown }).Float16Array;
  return F16 !== undefined && data instanceof F16;
}

function decodeHalf(bits: Uint16Array): Float32Array {
  const table = halfToFloatTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

function decodeBfloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u32[i] = bits[i] << 16;
  return out;
}

/** The tensor's values as float32. Throws when the data does not have the array type its
 *  declared element type implies: that is a runtime contract broken, not bad input. */
export function toFloat32(type: string, data: unknown, name = "output"): Float32Array {
  if (type === "float32" && data instanceof Float32Array) return data;
  if (type === "float16" && data instanceof Uint16Array) return decodeHalf(data);
  if (type === "float16" && isFloat16Array(data)) return new Float32Array(data);
  if (type === "bfloat16" && data instanceof Uint16Array) return decodeBfloat16(data);
  const got = (data as object | undefined)?.constructor?.name ?? typeof data;
  if (!isDecodable(type)) {
    throw new TypeError(`${name}: element type ${type} is not decodable; use ${DECODABLE_TYPES.join(", ")}`);
  }
  throw new TypeError(`${name}: declared ${type} but its data is a ${got}`);
}

/** Elements [r * stride, r * stride + length) of every row r, packed: e.g. the CLS rows of a
 *  [B, L, H] hidden state (stride L*H, length H), so the other L-1 rows are never decoded. */
export function rowsToFloat32(
  type: string,
  data: unknown,
  stride: number,
  length: number,
  name = "output",
): Float32Array {
  if (!isTypedArray(data)) throw new TypeError(`${name}: ${type} data is not a typed array`);
  const rows = Math.floor(data.length / stride);
  const out = new Float32Array(rows * length);
  for (let r = 0; r < rows; r++) {
    out.set(toFloat32(type, data.subarray(r * stride, r * stride + length), name), r * length);
  }
  return out;
}

interface TypedArrayLike {
  length: number;
  subarray(begin: number, end: number): unknown;
}

function isTypedArray(data: unknown): data is TypedArrayLike {
  return ArrayBuffer.isView(data) && !(data instanceof DataView);
}
