/** Runs inside a tokenizer worker thread (piscina): encodes texts with the model's own
 *  tokenizer, adding <s> and </s>, and truncates over-long sequences while keeping </s>.
 *  @huggingface/tokenizers is synchronous pure JS, so it must never run on the main thread. */
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import { workerData } from "piscina";

export interface TokenizerThreadData {
  tokenizerPath: string;
  maxLength: number;
  eosId: number;
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
const tokenizer = new Tokenizer(JSON.parse(readFileSync(data.tokenizerPath, "utf8")), {});

export default function encode(task: EncodeTask): EncodedBatch {
  const texts = Array.isArray(task) ? task : task.texts;
  const wantTokens = !Array.isArray(task) && task.tokens;
  const tokens: string[][] = [];
  const seqs: number[][] = [];
  const lengths = new Int32Array(texts.length);
  const fullLengths = new Int32Array(texts.length);
  let total = 0;
  for (let i = 0; i < texts.length; i++) {
    const enc = tokenizer.encode(texts[i]);
    let ids = enc.ids as number[];
    fullLengths[i] = ids.length;
    if (ids.length > data.maxLength) {
      ids = ids.slice(0, data.maxLength - 1);
      ids.push(data.eosId);
    }
    if (wantTokens)
      tokens.push(
        ids.length < enc.tokens.length
          ? [...enc.tokens.slice(0, ids.length - 1), enc.tokens[enc.tokens.length - 1]]
          : enc.tokens,
      );
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
