/** Settles the batch planner's attention budget and describes the largest batch it allows, once,
 *  at start-up before the model loads. Trades a device query at start-up (nvidia-smi, bounded in
 *  time) for a budget that fits the card: with MAX_BATCH_ATTENTION unset on cuda the budget is what
 *  half the device's memory holds (`attentionBudgetForDevice`), else the setting or its default.
 *  Model dimensions come from config.json (num_attention_heads, hidden_size), BGE-M3's otherwise;
 *  bytes per element from the graph's declared outputs (float16 = 2, else 4: an over-estimate is
 *  the safe side). A budget that cannot hold one row of the longest sequence is refused, naming
 *  both settings (issue 15). */
import type { Config } from "../../shared/config.js";
import { ConfigError } from "../errors.js";
import {
  activationBytes,
  attentionBudgetForDevice,
  BGE_M3_DIMS,
  largestBatch,
  LINEAR_WIDTH,
  SCORE_COPIES,
  type ActivationDims,
  type BatchShape,
} from "../core/activation-memory.js";
import { padTo } from "../core/padding.js";
import type { GpuMemory } from "./gpu-memory.js";
import type { ModelFiles } from "./model-files.js";

/** ONNX TensorProto element type of float16. */
const ONNX_FLOAT16 = 10;
const GIB = 1024 ** 3;

type PlanConfig = Pick<
  Config,
  | "MAX_BATCH_ATTENTION"
  | "MAX_BATCH_TOKENS"
  | "MAX_BATCH_SIZE"
  | "PAD_MULTIPLE"
  | "MAX_SEQ_LENGTH"
  | "attentionFromDevice"
>;

export interface AttentionBudget {
  maxBatchAttention: number;
  source: "setting" | "device";
  dims: ActivationDims & { from: "config.json" | "BGE-M3 default" };
  deviceBytes?: number;
}

export function activationDims(files: Pick<ModelFiles, "encoder" | "declared">): AttentionBudget["dims"] {
  const fp16 = files.declared.outputs.some((o) => o.elemType === ONNX_FLOAT16);
  const bytes = fp16 ? 2 : 4;
  if (files.encoder) return { ...files.encoder, bytes, from: "config.json" };
  return { ...BGE_M3_DIMS, bytes, from: "BGE-M3 default" };
}

/** The budget the planner uses; `readDevice` reads the device's memory (gpu-memory.ts), asked only
 *  on cuda with MAX_BATCH_ATTENTION unset. */
export async function resolveAttentionBudget(
  cfg: PlanConfig,
  files: Pick<ModelFiles, "encoder" | "declared" | "maxPositions">,
  readDevice: () => Promise<GpuMemory | undefined>,
): Promise<AttentionBudget> {
  const dims = activationDims(files);
  if (!cfg.attentionFromDevice) return { maxBatchAttention: cfg.MAX_BATCH_ATTENTION, source: "setting", dims };
  const device = await readDevice();
  if (!device) return { maxBatchAttention: cfg.MAX_BATCH_ATTENTION, source: "setting", dims };
  const cells = attentionBudgetForDevice(device.totalBytes, cfg.MAX_BATCH_TOKENS, dims);
  const seq = Math.min(cfg.MAX_SEQ_LENGTH, files.maxPositions ?? Infinity);
  const longest = padTo(seq, cfg.PAD_MULTIPLE);
  if (cells < longest * longest) {
    const gib = (device.totalBytes / GIB).toFixed(1);
    throw new ConfigError([
      `MAX_BATCH_ATTENTION: unset, so derived from the device's ${gib} GiB: ${cells} cells, which cannot hold one ` +
        `chunk of MAX_SEQ_LENGTH=${cfg.MAX_SEQ_LENGTH} (${longest}² = ${longest * longest} cells) with half the ` +
        "memory left for the weights; lower MAX_SEQ_LENGTH or MAX_BATCH_TOKENS, or set MAX_BATCH_ATTENTION",
    ]);
  }
  return { maxBatchAttention: cells, source: "device", dims, deviceBytes: device.totalBytes };
}

/** The start-up log line's fields: the largest batch, its estimate and the formula behind it. */
export function describeLargestBatch(
  cfg: Pick<Config, "MAX_BATCH_TOKENS" | "MAX_BATCH_SIZE" | "PAD_MULTIPLE">,
  budget: AttentionBudget,
  maxSeqLength: number,
): { shape: BatchShape; log: Record<string, unknown> } {
  const limits = {
    maxBatchTokens: cfg.MAX_BATCH_TOKENS,
    maxBatchSize: cfg.MAX_BATCH_SIZE,
    padMultiple: cfg.PAD_MULTIPLE,
    maxBatchAttention: budget.maxBatchAttention,
    maxSeqLength,
  };
  const largest = largestBatch(limits, budget.dims);
  const shape = { rows: largest.rows, paddedLength: largest.paddedLength };
  const est = activationBytes(shape, budget.dims);
  const mib = (b: number) => Math.round(b / 2 ** 20);
  return {
    shape,
    log: {
      maxBatchAttention: budget.maxBatchAttention,
      attentionBudgetFrom: budget.source,
      deviceMiB: budget.deviceBytes === undefined ? undefined : mib(budget.deviceBytes),
      largestBatch: `${shape.rows} x ${shape.paddedLength}`,
      activationMiB: mib(est.total),
      scoresMiB: mib(est.scores),
      linearMiB: mib(est.linear),
      dims: budget.dims,
      formula:
        `${SCORE_COPIES} x rows x heads x L² x bytes (attention scores) + ` +
        `rows x L x (hidden x ${LINEAR_WIDTH}) x bytes (linear activations)`,
    },
  };
}
