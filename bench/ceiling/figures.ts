/** Turns ceiling runs into the issue's figures and evaluates its targets (issue 15). Per run:
 *  CPU seconds per 1,000 chunks of each thread, the main thread's ceiling (1 / its CPU per chunk)
 *  in chunks/s and tokens/s, tokens per tokenizer CPU-second, and the ratio to an H100's
 *  estimated BGE-M3 tokens/s; per case, the median of each figure over the runs. Targets are
 *  computed from those medians only; a target whose case did not run is left out. Pure. */
import { median } from "../lib/stats.js";
import type { CeilingCase, CeilingFigures, CeilingRun, CeilingTarget } from "../lib/results-schema.js";

export interface H100Range {
  low: number;
  high: number;
}

/** With the native `tokenizers` backend the tokenizer threads only hand texts to the package,
 *  whose async encode runs on libuv's threadpool, among the threads the bench cannot tell apart
 *  (V8's GC and compiler threads): its tokenizer CPU is then bounded from above by the tokenizer
 *  threads plus every other thread. */
export function tokenizerCpuIsBound(r: Pick<CeilingRun, "tokenizerBackend">): boolean {
  return r.tokenizerBackend === "native";
}

/** CPU seconds charged to tokenization in run `r` (an upper bound when `tokenizerCpuIsBound`). */
export function tokenizerCpuSeconds(r: Pick<CeilingRun, "tokenizerBackend" | "cpuSeconds">): number {
  const threads = r.cpuSeconds.tokenizer.reduce((a, b) => a + b, 0);
  return tokenizerCpuIsBound(r) ? threads + r.cpuSeconds.other : threads;
}

export function runFigures(r: CeilingRun, h100: H100Range): CeilingFigures {
  const per1k = (s: number) => (s / r.chunks) * 1000;
  const tokenizer = tokenizerCpuSeconds(r);
  const meanTokens = r.tokens / r.chunks;
  const ceilingTokensPerSecond = r.tokens / r.cpuSeconds.main;
  return {
    meanTokens,
    mainPer1k: per1k(r.cpuSeconds.main),
    tokenizerPer1k: per1k(tokenizer),
    modelPer1k: per1k(r.cpuSeconds.model),
    otherPer1k: per1k(r.cpuSeconds.other),
    ceilingChunksPerSecond: r.chunks / r.cpuSeconds.main,
    ceilingTokensPerSecond,
    mainMicrosPerChunk: (r.cpuSeconds.main / r.chunks) * 1e6,
    mainMicrosPerToken: (r.cpuSeconds.main / r.tokens) * 1e6,
    tokenizerTokensPerCpuSecond: r.tokens / tokenizer,
    ratioToH100High: ceilingTokensPerSecond / h100.high,
    ratioToH100Low: ceilingTokensPerSecond / h100.low,
    h100ChunksPerSecondLow: h100.low / meanTokens,
    h100ChunksPerSecondHigh: h100.high / meanTokens,
    drainChunksPerSecond: r.chunks / r.windowSeconds,
  };
}

/** The median of every figure over the runs. */
export function medianFigures(list: CeilingFigures[]): CeilingFigures {
  const keys = Object.keys(list[0]) as Array<keyof CeilingFigures>;
  return Object.fromEntries(keys.map((k) => [k, median(list.map((f) => f[k]))])) as unknown as CeilingFigures;
}

/** The targets for one H100 (high end of the estimate), on this machine. */
export const CEILING_TARGETS = {
  /** Main-thread ceiling over the H100's high estimate, dense+sparse, by chunk size. */
  h100Multiple: { 512: 2, 128: 1 } as Record<number, number>,
  tokenizerTokensPerCpuSecond: 250_000,
  colbertMainMicrosPerToken: 5,
};

export function evaluateCeilingTargets(cases: CeilingCase[], h100: H100Range): CeilingTarget[] {
  const out: CeilingTarget[] = [];
  const dense = cases.filter((c) => c.mode === "dense+sparse");
  for (const c of dense) {
    const k = CEILING_TARGETS.h100Multiple[c.targetTokens];
    if (k === undefined) continue;
    const m = c.median;
    const chunks = (k * h100.high) / m.meanTokens;
    out.push({
      id: `ceiling-${c.targetTokens}`,
      description:
        `dense+sparse, ${c.targetTokens}-token chunks (mean ${m.meanTokens.toFixed(0)}): main-thread ceiling >= ${k}x the H100 high estimate ` +
        `(${Math.round(k * h100.high).toLocaleString("en-US")} tokens/s = ${Math.round(chunks).toLocaleString("en-US")} chunks/s, ` +
        `<= ${Math.round(1e6 / chunks)} us/chunk); value: ceiling / H100 high`,
      value: m.ratioToH100High,
      comparator: ">=",
      threshold: k,
      met: m.ratioToH100High >= k,
    });
  }
  for (const c of dense) {
    const v = c.median.tokenizerTokensPerCpuSecond;
    const t = CEILING_TARGETS.tokenizerTokensPerCpuSecond;
    const cpu = c.runs.some(tokenizerCpuIsBound)
      ? "tokens per CPU-second of the tokenizer threads plus GC/other threads (native backend: it encodes on libuv's threadpool; an upper bound of its CPU, so a lower bound of its speed)"
      : "tokens per CPU-second of the tokenizer threads";
    out.push({
      id: `tokenizer-${c.targetTokens}`,
      description: `tokenization at ${c.targetTokens}-token chunks: ${cpu} (${Math.ceil(h100.high / t)} threads feed an H100 at ${t.toLocaleString("en-US")})`,
      value: v,
      comparator: ">=",
      threshold: t,
      met: v >= t,
    });
  }
  for (const c of cases.filter((x) => x.mode === "colbert")) {
    const v = c.median.mainMicrosPerToken;
    const t = CEILING_TARGETS.colbertMainMicrosPerToken;
    out.push({
      id: `colbert-${c.targetTokens}`,
      description: `with ColBERT, ${c.targetTokens}-token chunks: main-thread CPU per token, microseconds`,
      value: v,
      comparator: "<=",
      threshold: t,
      met: v <= t,
    });
  }
  return out;
}
