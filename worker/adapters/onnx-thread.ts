/** Runs inside the model worker thread: owns the ONNX Runtime session, feeds each batch as
 *  the session's inputs declare (model-feeds.ts), decodes the outputs by element type and
 *  applies the output layout found at start-up (output-layouts.ts). onnxruntime-node's
 *  `run()` blocks its thread for the whole forward pass, so it lives here, one run at a time,
 *  while the main thread keeps renewing BullMQ locks and writing to Qdrant. Start-up runs one
 *  probe batch of a fixed multilingual sentence through the real path: its shapes confirm the
 *  layout and its values must be sane, or the model is refused before it takes a job. */
import { readFileSync } from "node:fs";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { OutputKind } from "../../shared/config.js";
import { ModelLoadError, looksLikeOutOfMemory } from "../errors.js";
import type { ChunkEmbedding } from "../core/heads.js";
import { applyLayout, PROBE_TEXT, probeProblems, type DecodedOutputs } from "../core/layout-heads.js";
import { buildFeeds, planFeeds, type FeedSpec } from "../core/model-feeds.js";
import {
  checkOutputTypes,
  checkWanted,
  confirmLayout,
  describeLayout,
  matchLayout,
  type ConfirmedLayout,
  type TensorMeta,
} from "../core/output-layouts.js";
import { nextModelRun } from "../core/query-lane.js";
import { rowsToFloat32, toFloat32 } from "../core/tensor-decode.js";
import { cudaLoadError, executionProviders } from "./execution-provider.js";
import { encodeVectorJson } from "./qdrant-vector-json.js";
import { ELEM_TYPES, type DeclaredValue } from "./onnx-graph-scan.js";

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
  /** Query-lane batches waiting together run as one, up to this many padded tokens (MAX_BATCH_TOKENS). */
  mergeTokens: number;
  /** ... and this many attention cells, rows x padded length² (MAX_BATCH_ATTENTION). */
  mergeCells: number;
  /** Tokenizes the start-up probe sentence when `probeIds` is unset. */
  tokenizerPath: string;
  /** PROBE_TEXT's ids (with <s> and </s>) from the worker's own tokenizer threads, so this thread
   *  need not load a second copy of a 250k vocabulary (~0.2 GB) for one sentence (issue 15). */
  probeIds?: number[];
  /** MODEL_OUTPUT_NAMES, when set. */
  outputNames?: Partial<Record<OutputKind, string>>;
  /** The graph's declared inputs and outputs, to name the ones ONNX Runtime cannot exchange. */
  declared?: { inputs: DeclaredValue[]; outputs: DeclaredValue[] };
  /** A module URL whose `createSession(modelPath)` replaces ONNX Runtime's session: the bench's instant
   *  stand-in (bench/ceiling/instant-session.ts), so everything after `session.run` stays this file's. */
  sessionModule?: string;
}

/** `queryLane` batches (query requests) run before every queued batch that waits here. */
export type ThreadRequest =
  | {
      type: "embed";
      id: number;
      flat: Int32Array;
      lengths: Int32Array;
      paddedLength: number;
      queryLane?: boolean;
      /** Also write each chunk's Qdrant vector JSON here (ChunkEmbedding.vectorJson), off the main thread. */
      encodeVectors?: boolean;
    }
  /** Drop the batches waiting here (each gets an error); the running one finishes. */
  | { type: "stop" };
export type ThreadReply =
  | {
      type: "ready";
      inputNames: string[];
      outputNames: string[];
      available: OutputKind[];
      denseDim: number;
      colbertDim?: number;
      layout: Record<string, string>;
      feeds: string[];
    }
  | { type: "fatal"; message: string; name: string }
  /** `run` numbers the session runs: batches merged into one run share it. */
  | { type: "result"; id: number; results: ChunkEmbedding[]; run: number }
  | { type: "error"; id: number; message: string; oom: boolean };

const cfg = workerData as OnnxThreadData;
const port = parentPort!;
const special = new Set(cfg.specialIds);
let session: ort.InferenceSession;
let feedPlan: FeedSpec[];
let fetches: string[];
let layout: ConfirmedLayout | undefined;

async function createSession(): Promise<ort.InferenceSession> {
  if (cfg.sessionModule) return (await import(cfg.sessionModule)).createSession(cfg.modelPath);
  const providers = executionProviders(cfg.provider, cfg.deviceId);
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: providers as never,
    graphOptimizationLevel: "all",
  };
  if (cfg.intraOpThreads > 0) opts.intraOpNumThreads = cfg.intraOpThreads;
  try {
    return await ort.InferenceSession.create(cfg.modelPath, opts);
  } catch (err) {
    if (cfg.provider === "cuda") throw cudaLoadError(err, cfg.deviceId);
    throw unsupportedTypeError(err as Error) ?? err;
  }
}

/** onnxruntime-node 1.30 refuses a session with, e.g., bfloat16 inputs or outputs as
 *  "Unsupported data type: 16": name the type and the values that carry it. */
function unsupportedTypeError(err: Error): ModelLoadError | undefined {
  const code = Number(/Unsupported data type: (\d+)/.exec(err.message)?.[1]);
  if (!Number.isInteger(code)) return undefined;
  const all = [...(cfg.declared?.inputs ?? []), ...(cfg.declared?.outputs ?? [])];
  const which =
    all
      .filter((v) => v.elemType === code)
      .map((v) => v.name)
      .join(", ") || "an input or output";
  return new ModelLoadError(
    `${which} has element type ${ELEM_TYPES[code] ?? code}, which onnxruntime-node cannot exchange with JavaScript; ` +
      "export the model with float32 or float16 inputs and outputs (a Cast at the graph's edge)",
    { cause: err },
  );
}

function metas(list: readonly ort.InferenceSession.ValueMetadata[]): TensorMeta[] {
  return list.map((m) => {
    if (m.isTensor) return { name: m.name, type: m.type, shape: m.shape };
    return { name: m.name, type: "non-tensor", shape: [] };
  });
}

async function start(): Promise<void> {
  session = await createSession();
  const inputs = metas(session.inputMetadata);
  const outputs = metas(session.outputMetadata);
  feedPlan = planFeeds(inputs, outputs);
  const match = matchLayout(inputs, outputs, cfg.outputNames);
  checkWanted(match, cfg.outputs, inputs, outputs);
  const used = { ...match, outputs: Object.fromEntries(cfg.outputs.map((k) => [k, match.outputs[k]])) };
  checkOutputTypes(used, outputs);
  fetches = [...new Set(Object.values(used.outputs) as string[])];
  const { flat, lengths, seq } = await probeBatch();
  const raw = await runDecoded(flat, lengths, seq);
  const shapes = Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, t.dims]));
  layout = confirmLayout(used, shapes, lengths.length, seq);
  const problems = probeProblems(layout, raw, lengths);
  if (problems.length > 0) {
    throw new ModelLoadError(`the start-up probe ("${PROBE_TEXT}") gave unusable vectors: ${problems.join("; ")}`);
  }
  const probe = applyLayout(layout, raw, { flat, lengths }, special);
  port.postMessage({
    type: "ready",
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    available: Object.keys(match.outputs) as OutputKind[],
    denseDim: probe[0].dense?.length ?? 0,
    colbertDim: probe[0].colbertDim,
    layout: describeLayout(layout, outputs),
    feeds: feedPlan.map((f) => `${f.name} ${f.type}`),
  } satisfies ThreadReply);
}

/** Two rows, the probe sentence and `<s></s>`, padded one past the longer so padding is exercised. */
async function probeBatch(): Promise<{ flat: Int32Array; lengths: Int32Array; seq: number }> {
  let all = cfg.probeIds;
  if (!all) {
    const { Tokenizer } = await import("@huggingface/tokenizers");
    all = new Tokenizer(JSON.parse(readFileSync(cfg.tokenizerPath, "utf8")), {}).encode(PROBE_TEXT).ids as number[];
  }
  const ids = all.slice(0, 64);
  ids[ids.length - 1] = cfg.eosId;
  const flat = Int32Array.from([...ids, cfg.bosId, cfg.eosId]);
  return { flat, lengths: Int32Array.from([ids.length, 2]), seq: ids.length + 1 };
}

async function runDecoded(flat: Int32Array, lengths: Int32Array, seq: number): Promise<DecodedOutputs> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const f of buildFeeds(feedPlan, flat, lengths, seq, cfg.padId)) {
    feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
  }
  const out = await session.run(feeds, fetches);
  const decoded: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const name of fetches) {
    const t = out[name] as ort.Tensor;
    const [rows, seqLen, dim] = t.dims;
    // A hidden state pooled to CLS (backbone exports): decode row 0 of each sequence only.
    const shared = layout?.sparse?.output === name || layout?.colbert?.output === name;
    const clsOnly = layout?.dense?.pool === "cls" && layout.dense.output === name && !shared;
    decoded[name] = clsOnly
      ? { data: rowsToFloat32(t.type, t.data, seqLen * dim, dim, name), dims: [rows, 1, dim] }
      : { data: toFloat32(t.type, t.data, name), dims: t.dims };
  }
  return decoded;
}

async function embed(flat: Int32Array, lengths: Int32Array, seq: number): Promise<ChunkEmbedding[]> {
  return applyLayout(layout!, await runDecoded(flat, lengths, seq), { flat, lengths }, special);
}

/** Issue 15: the upsert body's vectors are written here, beside the model, so the main thread
 *  only splices bytes. A value the encoder refuses (non-finite: the heads let none through)
 *  leaves that chunk without JSON, and the sink writes it from the typed arrays, which fail
 *  the same way on the main thread, for that chunk's job alone. */
function encodeAll(results: ChunkEmbedding[]): void {
  for (const r of results) {
    try {
      r.vectorJson = encodeVectorJson(r);
    } catch {
      r.vectorJson = undefined;
    }
  }
}

function transferables(results: ChunkEmbedding[]): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const r of results) {
    if (r.dense) list.push(r.dense.buffer as ArrayBuffer);
    if (r.sparse) list.push(r.sparse.indices.buffer as ArrayBuffer, r.sparse.values.buffer as ArrayBuffer);
    if (r.colbert) list.push(r.colbert.buffer as ArrayBuffer);
    if (r.vectorJson) list.push(r.vectorJson.buffer as ArrayBuffer);
  }
  return list;
}

/** Batches sent while one runs wait here; the next run is chosen by the query lane's merge rule
 *  (`nextModelRun` in core/query-lane.ts): the oldest query batch, with the other query batches
 *  that fit beside it, else the oldest batch. The main thread keeps a queued batch waiting behind
 *  the running one so the session never idles on a round trip; a query batch overtakes it here. */
type EmbedRequest = Extract<ThreadRequest, { type: "embed" }>;
let waiting: EmbedRequest[] = [];
let running = false;
let runs = 0;

function accept(msg: ThreadRequest): void {
  if (msg.type === "embed") waiting.push(msg);
  else if (msg.type === "stop") {
    for (const r of waiting.splice(0))
      port.postMessage({ type: "error", id: r.id, message: "model closed", oom: false } satisfies ThreadReply);
  }
}

/** Takes the next run's batches out of `waiting`. */
function nextGroup(): EmbedRequest[] {
  const shapes = waiting.map((r) => ({ rows: r.lengths.length, paddedLength: r.paddedLength, queryLane: r.queryLane }));
  const picked = nextModelRun(shapes, cfg.mergeTokens, cfg.mergeCells);
  const group = picked.map((i) => waiting[i]);
  const taken = new Set(picked);
  waiting = waiting.filter((_, i) => !taken.has(i));
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
          if (r.encodeVectors) encodeAll(mine);
          port.postMessage({ type: "result", id: r.id, results: mine, run } satisfies ThreadReply, transferables(mine));
        }
      },
      (err: Error) => {
        for (const r of group)
          port.postMessage({
            type: "error",
            id: r.id,
            message: err.message,
            oom: looksLikeOutOfMemory(err.message),
          } satisfies ThreadReply);
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

start().catch((err: Error) =>
  port.postMessage({ type: "fatal", message: err.message, name: err.name } satisfies ThreadReply),
);
