/** Runs inside the model worker thread: owns the ONNX Runtime session, pads each batch with
 *  the model's pad id, runs it, and applies the output heads. onnxruntime-node's `run()`
 *  blocks its thread for the whole forward pass, so it lives here, one run at a time, while
 *  the main thread keeps renewing BullMQ locks and writing to Qdrant. */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { OutputKind } from "../../shared/config.js";
import { looksLikeOutOfMemory } from "../../shared/errors.js";
import { clsRow, colbertRow, denseRow, sparseRow, sparseWeightsFromTensor, type ChunkEmbedding } from "../core/heads.js";
import { cudaLoadError, executionProviders } from "./execution-provider.js";

export interface OnnxThreadData {
  modelPath: string;
  provider: "cpu" | "cuda";
  deviceId: number;
  intraOpThreads: number;
  outputs: OutputKind[];
  padId: number;
  bosId: number;
  eosId: number;
  specialIds: number[];
  /** Interactive batches waiting together run as one, up to this many padded tokens. */
  mergeTokens: number;
}

/** `interactive` batches (query requests) run before every queued batch that waits here. */
export type ThreadRequest =
  | { type: "embed"; id: number; flat: Int32Array; lengths: Int32Array; paddedLength: number; interactive?: boolean }
  /** Drop the batches waiting here (each gets an error); the running one finishes. */
  | { type: "stop" };
export type ThreadReply =
  | { type: "ready"; inputNames: string[]; outputNames: string[]; available: OutputKind[]; denseDim: number; colbertDim?: number }
  | { type: "fatal"; message: string; name: string }
  /** `run` numbers the session runs: batches merged into one run share it. */
  | { type: "result"; id: number; results: ChunkEmbedding[]; run: number }
  | { type: "error"; id: number; message: string; oom: boolean };

const cfg = workerData as OnnxThreadData;
const port = parentPort!;
const special = new Set(cfg.specialIds);
let session: ort.InferenceSession;
let wanted: { dense: boolean; sparse: boolean; colbert: boolean; lhs: boolean };

async function start(): Promise<void> {
  const providers = executionProviders(cfg.provider, cfg.deviceId);
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: providers as never, graphOptimizationLevel: "all" };
  if (cfg.intraOpThreads > 0) opts.intraOpNumThreads = cfg.intraOpThreads;
  try {
    session = await ort.InferenceSession.create(cfg.modelPath, opts);
  } catch (err) {
    if (cfg.provider === "cuda") throw cudaLoadError(err, cfg.deviceId);
    throw err;
  }
  const names = session.outputNames;
  const lhs = names.includes("last_hidden_state");
  const available: OutputKind[] = [];
  if (names.includes("dense_vecs") || lhs) available.push("dense");
  if (names.includes("sparse_vecs")) available.push("sparse");
  if (names.includes("colbert_vecs")) available.push("colbert");
  const on = (k: OutputKind) => cfg.outputs.includes(k) && available.includes(k);
  wanted = { dense: on("dense") && names.includes("dense_vecs"), sparse: on("sparse"), colbert: on("colbert"), lhs: on("dense") && !names.includes("dense_vecs") };
  // One probe run learns the output widths and proves the session works end to end.
  const probe = await embed(Int32Array.from([cfg.bosId, cfg.eosId]), Int32Array.from([2]), 8);
  port.postMessage({
    type: "ready", inputNames: [...session.inputNames], outputNames: [...names], available,
    denseDim: probe[0].dense?.length ?? 0, colbertDim: probe[0].colbertDim,
  } satisfies ThreadReply);
}

function feeds(flat: Int32Array, lengths: Int32Array, L: number): Record<string, ort.Tensor> {
  const B = lengths.length;
  const ids = new BigInt64Array(B * L).fill(BigInt(cfg.padId));
  const mask = new BigInt64Array(B * L);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < lengths[b]; t++) {
      ids[b * L + t] = BigInt(flat[o + t]);
      mask[b * L + t] = 1n;
    }
    o += lengths[b];
  }
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", ids, [B, L]),
    attention_mask: new ort.Tensor("int64", mask, [B, L]),
  };
  if (session.inputNames.includes("token_type_ids")) f.token_type_ids = new ort.Tensor("int64", new BigInt64Array(B * L), [B, L]);
  return f;
}

async function embed(flat: Int32Array, lengths: Int32Array, L: number): Promise<ChunkEmbedding[]> {
  const fetches: string[] = [];
  if (wanted.dense) fetches.push("dense_vecs");
  if (wanted.lhs) fetches.push("last_hidden_state");
  if (wanted.sparse) fetches.push("sparse_vecs");
  if (wanted.colbert) fetches.push("colbert_vecs");
  const out = await session.run(feeds(flat, lengths, L), fetches);
  const results: ChunkEmbedding[] = [];
  let o = 0;
  for (let b = 0; b < lengths.length; b++) {
    const len = lengths[b];
    const r: ChunkEmbedding = {};
    if (wanted.dense) {
      const t = out.dense_vecs;
      r.dense = denseRow(t.data as Float32Array, b, t.dims[t.dims.length - 1]);
    } else if (wanted.lhs) {
      const t = out.last_hidden_state;
      r.dense = clsRow(t.data as Float32Array, b, t.dims[1], t.dims[2]);
    }
    if (wanted.sparse) {
      const t = out.sparse_vecs;
      const w = sparseWeightsFromTensor(t.data as Float32Array, b, t.dims[1], t.dims.length > 2 ? t.dims[2] : 1);
      r.sparse = sparseRow(flat.subarray(o, o + len), w, special);
    }
    if (wanted.colbert) {
      const t = out.colbert_vecs;
      r.colbertDim = t.dims[2];
      r.colbert = colbertRow(t.data as Float32Array, b, t.dims[1], t.dims[2], len);
    }
    results.push(r);
    o += len;
  }
  return results;
}

function transferables(results: ChunkEmbedding[]): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const r of results) {
    if (r.dense) list.push(r.dense.buffer as ArrayBuffer);
    if (r.sparse) list.push(r.sparse.indices.buffer as ArrayBuffer, r.sparse.values.buffer as ArrayBuffer);
    if (r.colbert) list.push(r.colbert.buffer as ArrayBuffer);
  }
  return list;
}

/** Batches sent while one runs wait here; the next to run is the oldest interactive one, else
 *  the oldest. The main thread keeps a queued batch waiting behind the running one so the
 *  session never idles on a round trip; a query batch overtakes it here. Interactive batches
 *  that arrived while one batch ran are merged into one run (up to `mergeTokens` padded
 *  tokens): the queries are cut as one batch when the device frees up, and pay one call's
 *  overhead between them. */
type EmbedRequest = Extract<ThreadRequest, { type: "embed" }>;
const waiting: EmbedRequest[] = [];
let running = false;
let runs = 0;

function accept(msg: ThreadRequest): void {
  if (msg.type === "embed") waiting.push(msg);
  else if (msg.type === "stop") {
    for (const r of waiting.splice(0)) port.postMessage({ type: "error", id: r.id, message: "model closed", oom: false } satisfies ThreadReply);
  }
}

/** The next run: the oldest interactive batch with every other waiting one that fits beside it, or the oldest batch. */
function nextGroup(): EmbedRequest[] {
  const first = waiting.findIndex((r) => r.interactive);
  const [lead] = waiting.splice(first >= 0 ? first : 0, 1);
  const group = [lead];
  if (!lead.interactive) return group;
  let rows = lead.lengths.length;
  let padded = lead.paddedLength;
  for (let i = 0; i < waiting.length; ) {
    const r = waiting[i];
    const p = Math.max(padded, r.paddedLength);
    if (r.interactive && p * (rows + r.lengths.length) <= cfg.mergeTokens) {
      group.push(...waiting.splice(i, 1));
      rows += r.lengths.length;
      padded = p;
    } else i++;
  }
  return group;
}

function concat(arrays: Int32Array[]): Int32Array {
  if (arrays.length === 1) return arrays[0]; // every queued batch: no copy
  const out = new Int32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

function runNext(): void {
  if (running) return;
  // run() blocks this thread, so messages that arrived meanwhile are still on the port: take them all before choosing.
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) accept(m.message as ThreadRequest);
  if (waiting.length === 0) return;
  const group = nextGroup();
  const padded = Math.max(...group.map((r) => r.paddedLength));
  const run = ++runs;
  running = true;
  embed(concat(group.map((r) => r.flat)), concat(group.map((r) => r.lengths)), padded)
    .then(
      (results) => {
        let o = 0;
        for (const r of group) {
          const mine = results.slice(o, (o += r.lengths.length));
          port.postMessage({ type: "result", id: r.id, results: mine, run } satisfies ThreadReply, transferables(mine));
        }
      },
      (err: Error) => {
        for (const r of group) port.postMessage({ type: "error", id: r.id, message: err.message, oom: looksLikeOutOfMemory(err.message) } satisfies ThreadReply);
      },
    )
    .finally(() => {
      running = false;
      runNext();
    });
}

port.on("message", (msg: ThreadRequest) => {
  accept(msg);
  runNext();
});

start().catch((err: Error) => port.postMessage({ type: "fatal", message: err.message, name: err.name } satisfies ThreadReply));
