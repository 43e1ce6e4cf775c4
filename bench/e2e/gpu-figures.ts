/** Published GPU inference figures for BERT-Large-shaped encoders (24 layers, 1024 hidden, 16
 *  heads, 4096 FFN: the shape of XLM-R-large and so of BGE-M3, whose 250k-token vocabulary
 *  only enlarges the embedding lookup, not the per-token compute). Nothing here is measured
 *  by this repository: these are assumptions for estimates, each with its source, and every
 *  derived number is labelled an estimate. */

export interface GpuFigure {
  gpu: string;
  /** Tokens per second, FP16, TensorRT: batch x sequence length / mean latency. */
  tokensPerSecond: number;
  basis: string;
}

export const TRT_SOURCE =
  'NVIDIA TensorRT repository, demo/BERT/README.md (commit 007c347), "Inference performance" tables, BERT Large, FP16';

/** FP16 TensorRT, sequence length 384, batch 128: 128 x 384 tokens over the published mean latency. */
export const PUBLISHED: Record<"T4" | "A30" | "A100", GpuFigure> = {
  T4: {
    gpu: "T4 16 GB",
    tokensPerSecond: Math.round((128 * 384) / 1.51835),
    basis: "seq 384, batch 128, 1518.35 ms mean",
  },
  A30: {
    gpu: "A30 24 GB",
    tokensPerSecond: Math.round((128 * 384) / 0.3423),
    basis: "seq 384, batch 128, 342.30 ms mean",
  },
  A100: {
    gpu: "A100 40 GB",
    tokensPerSecond: Math.round((128 * 384) / 0.1637),
    basis: "seq 384, batch 128, 163.70 ms mean",
  },
};

/** NVIDIA product datasheets: dense FP16 Tensor Core TFLOPS and memory bandwidth (GB/s). */
export const DATASHEET = {
  T4: { tflops: 65, gbps: 320 },
  A10: { tflops: 125, gbps: 600 },
  L4: { tflops: 121, gbps: 300 },
  A30: { tflops: 165, gbps: 933 },
  A100: { tflops: 312, gbps: 1555 },
  "H100 SXM": { tflops: 989, gbps: 3350 },
} as const;
export const DATASHEET_SOURCE =
  "NVIDIA T4, A10, L4, A30, A100 and H100 datasheets (dense FP16 Tensor Core TFLOPS, memory bandwidth)";

export interface GpuEstimate {
  gpu: string;
  /** Low and high estimate of BGE-M3 tokens/s with TensorRT-class FP16 kernels at ~384 tokens. */
  low: number;
  high: number;
  how: string;
}

type Known = keyof typeof DATASHEET;

/** A published figure scaled to another GPU: low by memory bandwidth, high by FP16 TFLOPS
 *  (an encoder at large batch sits between the two limits). */
function scaled(gpu: Known, from: "T4" | "A30" | "A100"): GpuEstimate {
  const base = PUBLISHED[from].tokensPerSecond;
  const bw = DATASHEET[gpu].gbps / DATASHEET[from].gbps;
  const fl = DATASHEET[gpu].tflops / DATASHEET[from].tflops;
  return {
    gpu,
    low: Math.round(base * Math.min(bw, fl)),
    high: Math.round(base * Math.max(bw, fl)),
    how: `${from}'s published figure x ${Math.min(bw, fl).toFixed(2)} to x ${Math.max(bw, fl).toFixed(2)} (datasheet bandwidth and FP16 TFLOPS ratios)`,
  };
}

const published = (gpu: string, from: "T4" | "A100"): GpuEstimate => ({
  gpu,
  low: PUBLISHED[from].tokensPerSecond,
  high: PUBLISHED[from].tokensPerSecond,
  how: `published: ${PUBLISHED[from].basis}`,
});

/** The GPUs docs/models.md covers. */
export const GPU_ESTIMATES: GpuEstimate[] = [
  published("T4", "T4"),
  scaled("A10", "A30"),
  scaled("L4", "T4"),
  published("A100", "A100"),
  scaled("H100 SXM", "A100"),
];

/** Tokenizer threads needed to keep up with `gpuTokensPerSecond` at `perThread` tokens/s each. */
export function tokenizerThreadsFor(gpuTokensPerSecond: number, perThread: number): number {
  return Math.ceil(gpuTokensPerSecond / perThread);
}
