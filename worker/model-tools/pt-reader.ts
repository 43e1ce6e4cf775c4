/** Reads PyTorch `.pt` checkpoints (the zip format of torch.save since 1.6) without Python:
 *  `<name>/data.pkl` goes through the safe unpickler, each storage is `<name>/data/<key>`.
 *  Built for BGE-M3's head files (an nn.Linear state dict, `weight` and `bias`, float16), so it
 *  returns flat tensors by name and refuses nested containers, non-float storages and
 *  big-endian files rather than guessing. Trades streaming for simplicity: the whole file is
 *  read into memory (the largest head file is 2 MB). Acts once, when a model is prepared. */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { unzipSync } from "fflate";
import { PtFormatError } from "./model-tool-errors.js";
import { isTensor, unpickleStateDict, type StorageDtype, type TensorRef } from "./safe-unpickler.js";
import { toFloat32 } from "../core/tensor-decode.js";

export interface PtTensor {
  dtype: StorageDtype;
  shape: number[];
  /** Contiguous row-major little-endian elements (2 bytes for float16/bfloat16, 4 for float32). */
  bytes: Uint8Array;
}

const ELEMENT_BYTES: Record<StorageDtype, number> = { float16: 2, bfloat16: 2, float32: 4 };
/** Largest zip entry inflated (BGE-M3's biggest head storage is 2 MB); a larger one is refused
 *  before it is decompressed, so a zip bomb cannot exhaust memory. */
const MAX_ENTRY_BYTES = 512 * 2 ** 20;
const WANTED = /^[^/]+\/(data\.pkl|byteorder|data\/[^/]+)$/;

/** Every tensor of the state dict in `file`, by key, in file order. */
export async function readPtStateDict(file: string): Promise<Map<string, PtTensor>> {
  const name = path.basename(file);
  const raw = await readFile(file);
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(raw, { filter: (f) => WANTED.test(f.name) && f.originalSize <= MAX_ENTRY_BYTES });
  } catch (err) {
    throw new PtFormatError(
      name,
      `not a zip archive (${(err as Error).message}); torch.save before 1.6 wrote ` +
        "a legacy format this reader does not accept: re-save it with a current torch",
    );
  }
  const pkl = Object.keys(entries).filter((k) => /^[^/]+\/data\.pkl$/.test(k));
  if (pkl.length !== 1) throw new PtFormatError(name, `expected one <name>/data.pkl in the zip, found ${pkl.length}`);
  const prefix = pkl[0].slice(0, -"data.pkl".length);
  // An entry left out by the filter for its size shows up here as a missing storage.
  const order = entries[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== "little") {
    throw new PtFormatError(name, "tensors were saved big-endian");
  }
  const root = unpickleStateDict(entries[pkl[0]], name);
  if (!(root instanceof Map)) throw new PtFormatError(name, "the pickle is not a dict of tensors");
  const out = new Map<string, PtTensor>();
  for (const [key, value] of root) {
    if (typeof key !== "string" || !isTensor(value)) {
      throw new PtFormatError(name, `entry ${String(key)} is not a tensor; expected a flat state dict`);
    }
    out.set(key, materialise(name, key, value, entries[`${prefix}data/${value.storage.key}`]));
  }
  return out;
}

/** Copies the tensor's view (offset, strides) out of its storage into contiguous bytes. */
function materialise(file: string, key: string, t: TensorRef, storage: Uint8Array | undefined): PtTensor {
  const size = ELEMENT_BYTES[t.storage.dtype];
  if (!storage) {
    throw new PtFormatError(file, `${key}: storage data/${t.storage.key} is missing from the zip (or past 512 MiB)`);
  }
  if (storage.length !== t.storage.numel * size) {
    throw new PtFormatError(file, `${key}: storage has ${storage.length} bytes, expected ${t.storage.numel * size}`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(count * size);
  const index = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < count; i++) {
    let element = t.offset;
    for (let d = 0; d < index.length; d++) element += index[d] * t.stride[d];
    if (element < 0 || element >= t.storage.numel) {
      throw new PtFormatError(file, `${key}: view reaches past its storage`);
    }
    bytes.set(storage.subarray(element * size, (element + 1) * size), i * size);
    for (let d = index.length - 1; d >= 0 && ++index[d] === t.shape[d]; d--) index[d] = 0;
  }
  return { dtype: t.storage.dtype, shape: [...t.shape], bytes };
}

/** The tensor's values as float32 (exact for all three dtypes), decoded as the worker decodes
 *  model outputs. Copies the bytes first so the typed array is aligned. */
export function ptToFloat32(t: PtTensor): Float32Array {
  const buffer = t.bytes.slice().buffer;
  return toFloat32(t.dtype, t.dtype === "float32" ? new Float32Array(buffer) : new Uint16Array(buffer), "pt tensor");
}
