/** The ChunkTokenizer port over a pool of worker threads, so tokenizing a large job never
 *  stalls BullMQ lock renewal, health probes or Qdrant I/O on the main thread. The backend
 *  (native or JS, tokenizer-backend.ts) is settled before the pool starts. */
import { Piscina } from "piscina";
import type { ChunkTokenizer, TokenizedChunk } from "../core/ports.js";
import type { EncodeTask, EncodedBatch, TokenizerThreadData } from "./tokenizer-thread.js";

export class TokenizerPool implements ChunkTokenizer {
  private readonly pool: Piscina;
  private readonly threads: number;

  constructor(opts: TokenizerThreadData & { threads: number }) {
    const { threads, ...workerData } = opts;
    this.threads = threads;
    // The native encodeBatch fans out over one Rust thread per core unless told not to: the pool's
    // thread count is the parallelism knob. Rust reads the process environment, which only the main
    // thread writes (a worker thread's process.env is a copy).
    if (workerData.backend === "native") process.env.TOKENIZERS_PARALLELISM ??= "false";
    this.pool = new Piscina({
      filename: new URL("./tokenizer-thread.js", import.meta.url).href,
      workerData,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
    });
  }

  async encode(texts: string[], opts: { tokens?: boolean } = {}): Promise<TokenizedChunk[]> {
    const task: EncodeTask = opts.tokens ? { texts, tokens: true } : texts;
    const r = (await this.pool.run(task)) as EncodedBatch;
    const out: TokenizedChunk[] = [];
    let o = 0;
    for (let i = 0; i < r.lengths.length; i++) {
      const len = r.lengths[i];
      out.push({
        ids: r.flat.subarray(o, o + len),
        fullLength: r.fullLengths[i],
        truncated: r.fullLengths[i] > len,
        ...(r.tokens ? { tokens: r.tokens[i] } : {}),
      });
      o += len;
    }
    return out;
  }

  /** Resolves once every thread has loaded the tokenizer (a 250k vocabulary takes about a
   *  second), so the first jobs do not wait for it and readiness is not reported early. */
  async ready(): Promise<void> {
    await Promise.all(Array.from({ length: this.threads }, () => this.pool.run(["warm-up"])));
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
