/** An instant stand-in for ONNX Runtime's session, loaded inside the worker's real model thread
 *  (worker/adapters/onnx-thread.ts) through `startWorker`'s `sessionModule` seam, for the ceiling
 *  measurement only. It declares the inputs and outputs of BGE-M3's most common export
 *  (`input_ids`, `attention_mask` → `dense_vecs [B,1024]`, `sparse_vecs [B,L,1]`,
 *  `colbert_vecs [B,L-1,1024]`) and answers `run` at once with float32 tensors of those shapes,
 *  filled from a fixed pseudo-random pool (values of a real model's magnitude, so the JSON the sink
 *  writes has realistic digits; sparse weights positive, one per token). Everything after
 *  `session.run` (decoding, the output layout, normalisation, sparse max per id, ColBERT rows,
 *  the transfer to the main thread) is the worker's own code. No figure measured with it is a
 *  model measurement: it shows what the rest of the worker costs when the model costs nothing. */
import * as ort from "onnxruntime-node";
import { mulberry32 } from "../../kit/test-model/prng.js";

export const INSTANT_DIM = 1024;
const POOL = 1 << 22; // 4M floats, 16 MB: larger than any one dense or sparse output
const pool = new Float32Array(POOL);
const rand = mulberry32(15);
for (let i = 0; i < POOL; i++) pool[i] = (rand() - 0.5) * 0.2;

let cursor = 0;

/** `n` floats from the pool, starting where the last call stopped (so chunks differ), wrapping. */
function fill(n: number, positive: boolean): Float32Array {
  const out = new Float32Array(n);
  for (let o = 0; o < n;) {
    const take = Math.min(n - o, POOL - cursor);
    out.set(pool.subarray(cursor, cursor + take), o);
    o += take;
    cursor = (cursor + take) % POOL;
  }
  if (positive) for (let i = 0; i < n; i++) out[i] = Math.abs(out[i]) + 1e-3;
  return out;
}

const meta = (name: string, type: string, shape: Array<string | number>) => ({ name, isTensor: true, type, shape });

const INPUTS = [meta("input_ids", "int64", ["batch", "seq"]), meta("attention_mask", "int64", ["batch", "seq"])];
const OUTPUTS = [
  meta("dense_vecs", "float32", ["batch", INSTANT_DIM]),
  meta("sparse_vecs", "float32", ["batch", "seq", 1]),
  meta("colbert_vecs", "float32", ["batch", "seq_minus_1", INSTANT_DIM]),
];

export interface InstantSession {
  inputNames: string[];
  outputNames: string[];
  inputMetadata: typeof INPUTS;
  outputMetadata: typeof OUTPUTS;
  run(feeds: Record<string, ort.Tensor>, fetches?: string[]): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

/** Called by the model thread in place of `ort.InferenceSession.create`; the model file is not read. */
export function createSession(): InstantSession {
  return {
    inputNames: INPUTS.map((m) => m.name),
    outputNames: OUTPUTS.map((m) => m.name),
    inputMetadata: INPUTS,
    outputMetadata: OUTPUTS,
    async run(feeds, fetches = OUTPUTS.map((m) => m.name)) {
      const [rows, seq] = feeds.input_ids.dims;
      const out: Record<string, ort.Tensor> = {};
      for (const name of fetches) {
        if (name === "dense_vecs")
          out[name] = new ort.Tensor("float32", fill(rows * INSTANT_DIM, false), [rows, INSTANT_DIM]);
        else if (name === "sparse_vecs") out[name] = new ort.Tensor("float32", fill(rows * seq, true), [rows, seq, 1]);
        else if (name === "colbert_vecs")
          out[name] = new ort.Tensor("float32", fill(rows * (seq - 1) * INSTANT_DIM, false), [
            rows,
            seq - 1,
            INSTANT_DIM,
          ]);
        else throw new Error(`the instant stand-in session has no output ${name}`);
      }
      return out;
    },
    async release() {},
  };
}
