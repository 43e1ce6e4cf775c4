/** Search-query traffic for the priority-lane bench: short real sentences from the corpus, sent
 *  one per request to the worker's OpenAI-compatible `POST /v1/embeddings` at a fixed rate.
 *  Open loop: a request is sent when it is due whether or not earlier ones were answered, as
 *  independent users would, so a slow answer cannot hide by slowing the load down (a closed
 *  loop would). Latency is measured here, from just before `fetch` to the parsed answer. */
import type { SourceDocument } from "../../producer/document.js";

export interface QueryOutcome {
  /** Milliseconds after the load started at which the request was due. */
  dueMs: number;
  /** How late it was sent (event-loop lag of this process), milliseconds. */
  sendLagMs: number;
  ms: number;
  /** HTTP status; 0 when no answer came (connection error or client timeout). */
  status: number;
  /** `usage.prompt_tokens` of the answer (0 unless 200). */
  promptTokens: number;
  /** Problem with a 200 answer's body (no embedding), or the error. */
  error?: string;
}

const SENTENCE_END = /(?<=[.!?])\s+/;

/** Up to `n` distinct sentences of 4-25 words, spread evenly over the corpus (segment order). */
export function querySentences(docs: readonly SourceDocument[], n: number): string[] {
  const all: string[] = [];
  const seen = new Set<string>();
  for (const d of docs) {
    for (const seg of d.segments) {
      for (const raw of seg.text.split(SENTENCE_END)) {
        const s = raw.trim();
        const words = s.split(/\s+/).length;
        if (words < 4 || words > 25 || s.length > 200 || seen.has(s)) continue;
        seen.add(s);
        all.push(s);
      }
    }
  }
  if (all.length <= n) return all;
  return Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
}

async function oneQuery(
  url: string,
  model: string,
  text: string,
  timeoutMs: number,
): Promise<Omit<QueryOutcome, "dueMs" | "sendLagMs">> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: text, model }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.json()) as { data?: Array<{ embedding?: number[] }>; usage?: { prompt_tokens?: number } };
    const ms = performance.now() - t0;
    if (res.status !== 200)
      return { ms, status: res.status, promptTokens: 0, error: JSON.stringify(body).slice(0, 200) };
    const dim = body.data?.[0]?.embedding?.length ?? 0;
    return {
      ms,
      status: 200,
      promptTokens: body.usage?.prompt_tokens ?? 0,
      error: dim > 0 ? undefined : "answer without an embedding",
    };
  } catch (err) {
    return { ms: performance.now() - t0, status: 0, promptTokens: 0, error: (err as Error).message };
  }
}

/** Sends `texts[first..]` in turn, `rate` per second for `seconds`; resolves when every answer is in. */
export async function runQueryLoad(
  url: string,
  model: string,
  texts: readonly string[],
  opts: { rate: number; seconds: number; timeoutMs: number; first: number },
): Promise<QueryOutcome[]> {
  const t0 = performance.now();
  const pending: Array<Promise<QueryOutcome>> = [];
  for (let i = 0; i / opts.rate < opts.seconds; i++) {
    const dueMs = (i / opts.rate) * 1000;
    const wait = t0 + dueMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sendLagMs = Math.max(0, performance.now() - t0 - dueMs);
    const text = texts[(opts.first + i) % texts.length];
    pending.push(oneQuery(url, model, text, opts.timeoutMs).then((o) => ({ dueMs, sendLagMs, ...o })));
  }
  return Promise.all(pending);
}
