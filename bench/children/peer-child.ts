/** Child process for the peer: transformers.js's feature-extraction pipeline over the same
 *  generated encoder (its plain last_hidden_state export), loaded from local files only, and
 *  called the way its documentation shows: arrays of texts in arrival order, 32 per call,
 *  `{ pooling: "cls", normalize: true }`. It tokenizes on the calling thread, pads each call
 *  to its longest text, runs onnxruntime-node (the same 1.30.0 as the worker) and pools CLS
 *  in JS. Only the pipeline calls are timed; its padding is recomputed afterwards from its own
 *  tokenizer with the same arguments the pipeline passes (padding: true, truncation: true). */
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";
import { childPort, peakRssBytes, type Message } from "../lib/child-process.js";
import { machineBusySeconds } from "../lib/cpu.js";

interface RunRequest extends Message {
  type: "run";
  texts: string[];
  batchSize: number;
  keep: number;
}

const port = childPort();
const modelDir = process.env.PEER_MODEL_DIR;
if (!modelDir) throw new Error("PEER_MODEL_DIR is not set");
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(modelDir) + path.sep;
const extractor = await pipeline("feature-extraction", path.basename(modelDir), {
  local_files_only: true,
  dtype: "fp32",
  device: "cpu",
});
// One call before timing, as the worker's model thread makes one probe run at load.
await extractor(["warm up"], { pooling: "cls", normalize: true });
port.send({ type: "ready" });

port.on(async (m) => {
  if (m.type !== "run") return;
  const { texts, batchSize, keep } = m as RunRequest;
  const dense: number[][] = [];
  const cpu0 = process.cpuUsage();
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  for (let i = 0; i < texts.length; i += batchSize) {
    const out = await extractor(texts.slice(i, i + batchSize), { pooling: "cls", normalize: true });
    if (dense.length < keep) {
      const [rows, dim] = out.dims as number[];
      const data = out.data as Float32Array;
      for (let r = 0; r < rows && dense.length < keep; r++)
        dense.push(Array.from(data.subarray(r * dim, (r + 1) * dim)));
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const machineCpuSeconds = machineBusySeconds() - machine0;
  const cpu = process.cpuUsage(cpu0);
  let real = 0;
  let padded = 0;
  let calls = 0;
  for (let i = 0; i < texts.length; i += batchSize) {
    const enc = extractor.tokenizer(texts.slice(i, i + batchSize), { padding: true, truncation: true });
    const mask = enc.attention_mask;
    const [rows, cols] = mask.dims as number[];
    padded += rows * cols;
    for (const v of mask.data as BigInt64Array) real += Number(v);
    calls++;
  }
  port.send({
    type: "result",
    seconds,
    realTokens: real,
    paddedTokens: padded,
    batches: calls,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    machineCpuSeconds,
    dense,
    peakRssBytes: peakRssBytes(),
  });
  await extractor.dispose();
  process.exit(0);
});
