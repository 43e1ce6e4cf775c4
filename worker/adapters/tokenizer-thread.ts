/** Runs inside a tokenizer worker thread (piscina): encodes texts with the model's own
 *  tokenizer, adding <s> and </s>, and truncates over-long sequences while keeping </s>.
 *  Both backends (tokenizer-backend.ts) are synchronous or CPU-bound work that must never run on
 *  the main thread: the JS one encodes on this thread, the native one on a libuv thread while
 *  this one waits, so TOKENIZER_THREADS bounds the cores tokenizing either way. */
import { readFileSync } from "node:fs";
import { workerData } from "piscina";
import { loadBatchEncoder, type TokenizerBackend } from "./tokenizer-backend.js";

export interface TokenizerThreadData {
  tokenizerPath: string;
  maxLength: number;
  eosId: number;
  /** Settled in the main thread (resolveTokenizerBackend), so every thread runs the same one. */
  backend: TokenizerBackend;
}

export interface EncodedBatch {
  flat: Int32Array;
  lengths: Int32Array;
  fullLengths: Int32Array;
  /** Token strings per text (after truncation), when the task asked for them. */
  tokens?: string[][];
}

/** A task: the texts, or the texts and whether to return token strings. */
export type EncodeTask = string[] | { texts: string[]; tokens: boolean };

const data = workerData as TokenizerThreadData;
const encoder = loadBatchEncoder(data.backend, readFileSync(data.tokenizerPath, "utf8"));
// A file the backend refuses fails every task (and so the pool's ready()), not the thread at load.
encoder.catch(() => undefined);

export default async function encode(task: EncodeTask): Promise<EncodedBatch> {
  const texts = Array.isArray(task) ? task : task.texts;
  const wantTokens = !Array.isArray(task) && task.tokens;
  const enc = await (await encoder).encodeBatch(texts, wantTokens);
  const tokens: string[][] = [];
  const seqs: number[][] = [];
  const lengths = new Int32Array(texts.length);
  const fullLengths = new Int32Array(texts.length);
  let total = 0;
  for (let i = 0; i < texts.length; i++) {
    let ids = enc.ids[i];
    fullLengths[i] = ids.length;
    if (ids.length > data.maxLength) {
      ids = ids.slice(0, data.maxLength - 1);
      ids.push(data.eosId);
    }
    if (wantTokens) {
      const all = enc.tokens![i];
      tokens.push(ids.length < all.length ? [...all.slice(0, ids.length - 1), all[all.length - 1]] : all);
    }
    seqs.push(ids);
    lengths[i] = ids.length;
    total += ids.length;
  }
  const flat = new Int32Array(total);
  let o = 0;
  for (const s of seqs) {
    flat.set(s, o);
    o += s.length;
  }
  // Structured clone copies ~4 bytes per token: negligible next to encoding them.
  return wantTokens ? { flat, lengths, fullLengths, tokens } : { flat, lengths, fullLengths };
}
