/** Builds a batch's input tensors from what the session declares (issue 12): `input_ids` and
 *  `attention_mask` as int64 or int32 (the ORT transformer optimizer's `input_int32` exports),
 *  plus `token_type_ids` (zeros) and `position_ids` (XLM-R positions, cumsum(mask)*mask +
 *  padding_idx, so real tokens start at pad id + 1) when the graph asks for them. Any other
 *  input refuses the model when it is loaded, naming it. Rows are right-padded with the pad
 *  id. int64 data is written through an Int32Array view (low word; every value here is a
 *  small non-negative int), which avoids a BigInt per element. Pure: no ONNX Runtime. */
import { ModelLoadError } from "../errors.js";
import { describeIo, type TensorMeta } from "./output-layouts.js";

export const FEED_ROLES = ["input_ids", "attention_mask", "token_type_ids", "position_ids"] as const;
export type FeedRole = (typeof FEED_ROLES)[number];
export type IdType = "int64" | "int32";

export interface FeedSpec {
  name: FeedRole;
  type: IdType;
}

export interface FeedTensor extends FeedSpec {
  data: BigInt64Array | Int32Array;
  dims: [number, number];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The feeds the session needs, in its input order; throws on inputs the worker cannot fill. */
export function planFeeds(inputs: readonly TensorMeta[], outputs: readonly TensorMeta[]): FeedSpec[] {
  const problems: string[] = [];
  const plan: FeedSpec[] = [];
  for (const m of inputs) {
    const known = (FEED_ROLES as readonly string[]).includes(m.name);
    if (!known) problems.push(`input ${m.name} is not one the worker can fill`);
    else if (m.type !== "int64" && m.type !== "int32") problems.push(`input ${m.name} has element type ${m.type}`);
    else plan.push({ name: m.name as FeedRole, type: m.type });
  }
  for (const need of ["input_ids", "attention_mask"] as const) {
    if (!inputs.some((m) => m.name === need)) problems.push(`the model has no ${need} input`);
  }
  if (problems.length > 0) {
    throw new ModelLoadError(
      `${problems.join("; ")}: the worker feeds ${FEED_ROLES.join(", ")} as int64 or int32; ` +
        describeIo(inputs, outputs),
    );
  }
  return plan;
}

/** Value of `role` at token `t` of a row of real length `len`. */
function valueAt(role: FeedRole, id: number, t: number, len: number, padId: number): number {
  const real = t < len;
  switch (role) {
    case "input_ids":
      return real ? id : padId;
    case "attention_mask":
      return real ? 1 : 0;
    case "token_type_ids":
      return 0;
    case "position_ids":
      return real ? t + 1 + padId : padId;
  }
}

function fill(spec: FeedSpec, flat: Int32Array, lengths: Int32Array, seq: number, padId: number): FeedTensor {
  const rows = lengths.length;
  const data = spec.type === "int64" ? new BigInt64Array(rows * seq) : new Int32Array(rows * seq);
  if (spec.type === "int64" && !LITTLE_ENDIAN) {
    throw new Error("int64 feeds are written little-endian; big-endian hosts are unsupported");
  }
  const view = data instanceof Int32Array ? data : new Int32Array(data.buffer, data.byteOffset, data.length * 2);
  const stride = data instanceof Int32Array ? 1 : 2;
  let o = 0;
  for (let b = 0; b < rows; b++) {
    const len = lengths[b];
    for (let t = 0; t < seq; t++) view[(b * seq + t) * stride] = valueAt(spec.name, flat[o + t], t, len, padId);
    o += len;
  }
  return { ...spec, data, dims: [rows, seq] };
}

/** One tensor per planned feed for the rows `flat` (concatenated ids) split by `lengths`. */
export function buildFeeds(
  plan: readonly FeedSpec[],
  flat: Int32Array,
  lengths: Int32Array,
  seq: number,
  padId: number,
): FeedTensor[] {
  return plan.map((spec) => fill(spec, flat, lengths, seq, padId));
}
