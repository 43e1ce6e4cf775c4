/** The EmbeddingModel port over a dedicated worker thread that owns the ONNX Runtime
 *  session (see onnx-thread.ts). Batches are sent as one flat Int32Array plus lengths and
 *  the results come back as transferred typed arrays, so no vector is copied twice. If the
 *  thread dies, every pending and future call fails and `onFatal` fires: a worker without
 *  its model must exit and be restarted, not keep taking jobs. */
import { Worker } from "node:worker_threads";
import type { Config, OutputKind } from "../../shared/config.js";
import { InferenceError, ModelLoadError, ExecutionProviderError, OutOfMemoryError } from "../errors.js";
import type { ChunkEmbedding } from "../core/heads.js";
import type { EmbeddingModel, ModelBatch, ModelInfo } from "../core/ports.js";
import { modelRunAttention, modelRunBudget } from "../core/query-lane.js";
import type { ModelFiles } from "./model-files.js";
import type { OnnxThreadData, ThreadReply, ThreadRequest } from "./onnx-thread.js";

/** MAX_SEQ_LENGTH capped by the model's position table. */
export function modelMaxSeqLength(
  cfg: Pick<Config, "MAX_SEQ_LENGTH">,
  files: Pick<ModelFiles, "maxPositions">,
): number {
  return files.maxPositions !== undefined ? Math.min(cfg.MAX_SEQ_LENGTH, files.maxPositions) : cfg.MAX_SEQ_LENGTH;
}

export type ModelConfig = Pick<
  Config,
  | "EXECUTION_PROVIDER"
  | "CUDA_DEVICE_ID"
  | "INTRA_OP_THREADS"
  | "OUTPUTS"
  | "MODEL_NAME"
  | "MAX_SEQ_LENGTH"
  | "MAX_BATCH_TOKENS"
  | "MAX_BATCH_ATTENTION"
> &
  Partial<Pick<Config, "MODEL_OUTPUT_NAMES">>;

export class OnnxModel implements EmbeddingModel {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: ChunkEmbedding[]) => void; reject: (e: Error) => void }>();
  private broken: Error | undefined;
  private lastRun = 0;
  /** Session runs so far (query-lane batches merged in the thread share one run). */
  sessionRuns = 0;
  /** Called when the last pending call settles (close() waits for it). */
  private idle: (() => void) | undefined;
  onFatal: ((err: Error) => void) | undefined;

  private constructor(
    private readonly thread: Worker,
    readonly info: ModelInfo,
  ) {
    thread.on("message", (m: ThreadReply) => this.onReply(m));
    thread.on("error", (err) => this.die(new InferenceError(`model thread crashed: ${err.message}`, { cause: err })));
    thread.on("exit", (code) => this.die(new InferenceError(`model thread exited with code ${code}`)));
  }

  /** `probeIds`: PROBE_TEXT tokenized by the caller's tokenizer threads (else the model thread loads
   *  the tokenizer for it). `sessionModule`: see OnnxThreadData (the bench's ceiling measurement only). */
  static async load(
    cfg: ModelConfig,
    files: ModelFiles,
    opts: { probeIds?: number[]; sessionModule?: string } = {},
  ): Promise<OnnxModel> {
    const data: OnnxThreadData = {
      modelPath: files.modelPath,
      provider: cfg.EXECUTION_PROVIDER,
      deviceId: cfg.CUDA_DEVICE_ID,
      intraOpThreads: cfg.INTRA_OP_THREADS,
      outputs: cfg.OUTPUTS,
      padId: files.padId,
      bosId: files.bosId,
      eosId: files.eosId,
      specialIds: files.specialIds,
      mergeTokens: modelRunBudget(cfg),
      mergeCells: modelRunAttention(cfg),
      tokenizerPath: files.tokenizerPath,
      probeIds: opts.probeIds,
      outputNames: cfg.MODEL_OUTPUT_NAMES,
      declared: files.declared,
      sessionModule: opts.sessionModule,
    };
    const thread = new Worker(new URL("./onnx-thread.js", import.meta.url), { workerData: data });
    const ready = await new Promise<Extract<ThreadReply, { type: "ready" }>>((resolve, reject) => {
      thread.once("message", (m: ThreadReply) => {
        if (m.type === "ready") resolve(m);
        else if (m.type === "fatal") {
          reject(
            m.name === "ExecutionProviderError"
              ? new ExecutionProviderError(m.message)
              : new ModelLoadError(`cannot load model ${files.modelPath}: ${m.message}`),
          );
        } else reject(new ModelLoadError(`model thread sent ${m.type} before it was ready`));
      });
      thread.once("error", (err) =>
        reject(new ModelLoadError(`model thread failed to start: ${err.message}`, { cause: err })),
      );
    }).catch(async (err) => {
      await thread.terminate();
      throw err;
    });
    // The thread refuses a model lacking an output OUTPUTS asks for, so every one is available.
    const outputs = cfg.OUTPUTS.filter((o) => ready.available.includes(o));
    const info: ModelInfo = {
      name: cfg.MODEL_NAME,
      provider: cfg.EXECUTION_PROVIDER,
      device: cfg.EXECUTION_PROVIDER === "cuda" ? `cuda:${cfg.CUDA_DEVICE_ID}` : "cpu",
      available: ready.available as OutputKind[],
      outputs,
      denseDim: ready.denseDim,
      colbertDim: ready.colbertDim,
      onnxOutputs: ready.outputNames,
      layout: ready.layout,
      feeds: ready.feeds,
      maxSeqLength: modelMaxSeqLength(cfg, files),
    };
    return new OnnxModel(thread, info);
  }

  embed(batch: ModelBatch): Promise<ChunkEmbedding[]> {
    if (this.broken) return Promise.reject(this.broken);
    let total = 0;
    for (const s of batch.sequences) total += s.length;
    const flat = new Int32Array(total);
    const lengths = new Int32Array(batch.sequences.length);
    let o = 0;
    batch.sequences.forEach((s, i) => {
      flat.set(s, o);
      lengths[i] = s.length;
      o += s.length;
    });
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const req: ThreadRequest = {
        type: "embed",
        id,
        flat,
        lengths,
        paddedLength: batch.paddedLength,
        queryLane: batch.queryLane,
        encodeVectors: batch.encodeVectors,
      };
      this.thread.postMessage(req, [flat.buffer, lengths.buffer]);
    });
  }

  /** Stops the thread. A batch still running finishes first (at most `graceMs`): terminating
   *  a thread inside ONNX Runtime's run() aborts the whole process. Batches waiting behind it
   *  fail with "model closed". */
  async close(graceMs = 30_000): Promise<void> {
    this.broken ??= new InferenceError("model closed");
    if (this.pending.size > 0) {
      const settled = new Promise<void>((resolve) => (this.idle = resolve));
      this.thread.postMessage({ type: "stop" } satisfies ThreadRequest);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([settled, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.thread.removeAllListeners("exit");
    await this.thread.terminate();
  }

  private onReply(m: ThreadReply): void {
    if (m.type !== "result" && m.type !== "error") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.type === "result") {
      if (m.run !== this.lastRun) this.sessionRuns++;
      this.lastRun = m.run;
      p.resolve(m.results);
    } else
      p.reject(
        m.oom
          ? new OutOfMemoryError(`out of memory: ${m.message}`)
          : new InferenceError(`inference failed: ${m.message}`),
      );
    if (this.pending.size === 0) this.idle?.();
  }

  private die(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.onFatal?.(err);
  }
}
