/** What one model batch costs in activation memory, and the largest batch the planner can form.
 *  Trades precision for simplicity: an estimate from the batch shape and two model dimensions,
 *  not a measurement. Without fused attention ONNX Runtime materialises every layer's attention
 *  scores, `rows x heads x L^2` elements, so a padded-token budget alone does not bound memory:
 *  16 rows of 8,192 tokens with BGE-M3's 16 heads in fp16 need ~34 GB for one score tensor (issue
 *  15). The planner therefore also keeps `rows x L^2` (attention cells, per head and layer) under
 *  MAX_BATCH_ATTENTION. Estimate, per batch (layers run one after another, so one layer counts):
 *    scores  = SCORE_COPIES x rows x heads x L^2 x bytes  (the softmax's input and output live together)
 *    linear  = rows x L x (hidden x LINEAR_WIDTH) x bytes  (the feed-forward and its GELU: 4 x 4 x hidden)
 *  Performs no I/O; acts when the worker starts (start-up log, warm-up shape). */
import { padTo } from "./padding.js";

/** Attention and width of the model, as the estimate needs them. */
export interface ActivationDims {
  heads: number;
  hidden: number;
  /** Bytes per activation element: 4 for fp32, 2 for fp16. */
  bytes: number;
}

/** BGE-M3 (XLM-R large): used when the model folder's config.json does not say. */
export const BGE_M3_DIMS = { heads: 16, hidden: 1024 } as const;

/** Score tensors alive at once during one layer's attention (an element-wise op's input and output); measured on
 *  the CPU: one row of 2,048-8,192 tokens raised the model process's peak RSS by 1.5-2.2 score tensors. */
export const SCORE_COPIES = 2;
/** Linear activations alive at once, in multiples of hidden: the feed-forward is 4 x hidden and its erf GELU
 *  materialises several such tensors; measured on the CPU (bench/memory/peak-rss.ts, 32 x 512 rows) ~16. */
export const LINEAR_WIDTH = 16;

export interface BatchShape {
  rows: number;
  paddedLength: number;
}

/** Attention cells of a batch: rows x padded length squared (per head and layer). */
export function attentionCells(rows: number, paddedLength: number): number {
  return rows * paddedLength * paddedLength;
}

/** Most rows of `paddedLength` tokens that `maxBatchAttention` cells hold (Infinity = no limit). */
export function rowsWithinAttention(paddedLength: number, maxBatchAttention: number | undefined): number {
  if (maxBatchAttention === undefined) return Infinity;
  return Math.floor(maxBatchAttention / (paddedLength * paddedLength));
}

/** Estimated activation memory of one batch, bytes, split into its two terms. */
export function activationBytes(shape: BatchShape, dims: ActivationDims) {
  const { rows, paddedLength: L } = shape;
  const scores = SCORE_COPIES * rows * dims.heads * L * L * dims.bytes;
  const linear = rows * L * dims.hidden * LINEAR_WIDTH * dims.bytes;
  return { scores, linear, total: scores + linear };
}

export interface PlannerLimits {
  maxBatchTokens: number;
  maxBatchSize: number;
  padMultiple: number;
  maxBatchAttention?: number;
  /** Longest sequence, tokens (before padding). */
  maxSeqLength: number;
}

/** Most rows of `paddedLength` tokens one batch may hold under every limit (0 = none fits). */
export function rowsAt(paddedLength: number, limits: Omit<PlannerLimits, "maxSeqLength">): number {
  const byTokens = Math.floor(limits.maxBatchTokens / paddedLength);
  return Math.min(limits.maxBatchSize, byTokens, rowsWithinAttention(paddedLength, limits.maxBatchAttention));
}

/** The batch of the largest estimated activation memory the planner can form: every padded
 *  length up to MAX_SEQ_LENGTH with as many rows as the limits allow; on a tie the longer one. */
export function largestBatch(limits: PlannerLimits, dims: ActivationDims): BatchShape & { bytes: number } {
  const longest = padTo(limits.maxSeqLength, limits.padMultiple);
  let best = { rows: 0, paddedLength: 0, bytes: -1 };
  for (let L = limits.padMultiple; L <= longest; L += limits.padMultiple) {
    const rows = rowsAt(L, limits);
    if (rows < 1) continue;
    const bytes = activationBytes({ rows, paddedLength: L }, dims).total;
    if (bytes >= best.bytes) best = { rows, paddedLength: L, bytes };
  }
  return best;
}

/** Share of a device's memory the activations may use; the rest holds the weights, ONNX Runtime's
 *  arena and fragmentation. */
export const DEVICE_ACTIVATION_SHARE = 0.5;

/** The attention budget (cells) a device of `deviceBytes` allows: the largest batch's estimate,
 *  with the linear term at the full token budget, stays within DEVICE_ACTIVATION_SHARE of it. */
export function attentionBudgetForDevice(deviceBytes: number, maxBatchTokens: number, dims: ActivationDims): number {
  const linear = maxBatchTokens * dims.hidden * LINEAR_WIDTH * dims.bytes;
  const room = deviceBytes * DEVICE_ACTIVATION_SHARE - linear;
  return Math.max(0, Math.floor(room / (SCORE_COPIES * dims.heads * dims.bytes)));
}
