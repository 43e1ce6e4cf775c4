/** Parent side of the measurements that need no queue: model alone (whole sets, or single
 *  batches timed one by one), the transformers.js
 *  peer and tokenizer throughput, each in a fresh child process. */
import { BenchChild, type Message } from "./child-process.js";
import type { QuietWait } from "./cpu.js";
import type { TokenizerResult } from "./results-schema.js";

/** Called with the measured process's pid right before its timed part (see waitForQuiet). */
export type Gate = (pid: number) => Promise<QuietWait>;

/** One batch timed by children/batch-child.ts: token ids per row, padded to `paddedLength`. */
export interface TimedBatch {
  name: string;
  ids: number[][];
  paddedLength: number;
}

export interface ModelAloneResult {
  seconds: number;
  batches: number;
  realTokens: number;
  paddedTokens: number;
  cpuSeconds: number;
  /** Busy CPU time of the whole machine during the timed part. */
  machineCpuSeconds: number;
  peakRssBytes: number;
  dense: number[][];
  quietWait: QuietWait;
}

export async function measureModelAlone(
  env: Record<string, string>,
  ids: number[][],
  keep: number,
  gate: Gate,
): Promise<ModelAloneResult> {
  const child = BenchChild.start("./model-child.js", env);
  await child.next("ready", 10 * 60_000);
  const quietWait = await gate(child.pid);
  const r = await child.request<Message & ModelAloneResult>({ type: "run", ids, keep }, "result");
  await child.stop();
  return { ...r, quietWait };
}

export type PeerResult = ModelAloneResult;

export async function measurePeer(
  peerModelDir: string,
  texts: string[],
  batchSize: number,
  keep: number,
  gate: Gate,
): Promise<PeerResult> {
  const child = BenchChild.start("./peer-child.js", { PEER_MODEL_DIR: peerModelDir });
  await child.next("ready", 10 * 60_000);
  const quietWait = await gate(child.pid);
  const r = await child.request<Message & PeerResult>({ type: "run", texts, batchSize, keep }, "result");
  await child.stop();
  return { ...r, quietWait };
}

export async function measureTokenizers(
  tokenizerPath: string,
  texts: string[],
  gate: Gate,
): Promise<Omit<TokenizerResult, "method">> {
  const child = BenchChild.start("./tokenizer-child.js", { TOKENIZERS_PARALLELISM: "false", RAYON_NUM_THREADS: "1" });
  await child.next("ready");
  const quietWait = await gate(child.pid);
  const r = await child.request<
    Message & {
      texts: number;
      jsTokens: number;
      jsSeconds: number;
      nativeTokens: number;
      nativeSeconds: number;
      identical: number;
    }
  >({ type: "run", tokenizerPath, texts }, "result");
  await child.stop();
  return {
    texts: r.texts,
    js: { tokens: r.jsTokens, seconds: r.jsSeconds, tokensPerSecond: r.jsTokens / r.jsSeconds },
    native: { tokens: r.nativeTokens, seconds: r.nativeSeconds, tokensPerSecond: r.nativeTokens / r.nativeSeconds },
    identicalIdsRate: r.identical / r.texts,
    quietWait,
  };
}

/** Largest |1 - cos| between matching rows (both sets are unit vectors). */
export function maxCosineGap(a: number[][], b: number[][]): number {
  let worst = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (!a[i] || !b[i] || a[i].length !== b[i].length) return NaN;
    let dot = 0;
    for (let k = 0; k < a[i].length; k++) dot += a[i][k] * b[i][k];
    worst = Math.max(worst, Math.abs(1 - dot));
  }
  return worst;
}

/** Seconds of each of `batches`, run `reps` times each in a fresh model process (batch-child.ts). */
export async function measureBatchTimes(
  env: Record<string, string>,
  batches: TimedBatch[],
  reps: number,
  gate: Gate,
): Promise<{ seconds: number[][]; quietWait: QuietWait }> {
  const child = BenchChild.start("./batch-child.js", env);
  await child.next("ready", 10 * 60_000);
  const quietWait = await gate(child.pid);
  const r = await child.request<Message & { seconds: number[][] }>({ type: "run", batches, reps }, "result");
  await child.stop();
  return { seconds: r.seconds, quietWait };
}
