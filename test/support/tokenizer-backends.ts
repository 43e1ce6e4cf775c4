/** Both TOKENIZER_BACKENDs through the worker's own tokenizer threads (TokenizerPool), on the same
 *  texts, with token strings: what differs between them, per field, for the parity tests. */
import assert from "node:assert/strict";
import type { TokenizedChunk } from "../../worker/core/ports.js";
import type { TokenizerBackend } from "../../worker/adapters/tokenizer-backend.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";

export interface PoolComparison {
  byBackend: Record<TokenizerBackend, TokenizedChunk[]>;
  /** Indices of texts whose ids, full lengths or token strings differ between the backends. */
  mismatched: number[];
}

/** Encodes `texts` in tasks of `task` (a job's worth) with a pool of each backend. */
export async function compareBackends(
  tokenizerPath: string,
  texts: string[],
  opts: { maxLength: number; eosId: number; task?: number },
): Promise<PoolComparison> {
  const byBackend = {} as Record<TokenizerBackend, TokenizedChunk[]>;
  for (const backend of ["native", "js"] as const) {
    const pool = new TokenizerPool({
      tokenizerPath,
      maxLength: opts.maxLength,
      eosId: opts.eosId,
      backend,
      threads: 1,
    });
    try {
      const out: TokenizedChunk[] = [];
      const task = opts.task ?? 64;
      for (let i = 0; i < texts.length; i += task)
        out.push(...(await pool.encode(texts.slice(i, i + task), { tokens: true })));
      byBackend[backend] = out;
    } finally {
      await pool.close();
    }
  }
  const mismatched: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    const a = byBackend.native[i];
    const b = byBackend.js[i];
    const same =
      a.fullLength === b.fullLength &&
      a.truncated === b.truncated &&
      a.ids.length === b.ids.length &&
      a.ids.every((x, k) => x === b.ids[k]) &&
      JSON.stringify(a.tokens) === JSON.stringify(b.tokens);
    if (!same) mismatched.push(i);
  }
  return { byBackend, mismatched };
}

/** What the worker relies on in each chunk, whatever the backend: <s> first, </s> last (kept on
 *  truncation), at most maxLength ids, one token string per id, `truncated` = fullLength > ids. */
export function assertWorkerSemantics(c: TokenizedChunk, maxLength: number, ids: { bos: number; eos: number }): void {
  assert.equal(c.ids[0], ids.bos);
  assert.equal(c.ids[c.ids.length - 1], ids.eos);
  assert.ok(c.ids.length <= maxLength, `${c.ids.length} ids > ${maxLength}`);
  assert.equal(c.truncated, c.fullLength > maxLength);
  assert.equal(c.ids.length, c.truncated ? maxLength : c.fullLength);
  assert.equal(c.tokens?.length, c.ids.length);
  assert.equal(c.tokens![0], "<s>");
  assert.equal(c.tokens![c.tokens!.length - 1], "</s>");
}
