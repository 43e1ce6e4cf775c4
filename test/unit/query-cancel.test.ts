/** Cancelling query requests in the pipeline's priority lane (issue 13), with fake ports: a request
 *  whose signal aborts rejects with the signal's reason, its texts still in the pool never reach the
 *  model, and a request aborted before it starts is not even tokenized. Without queued work the model
 *  holds one query batch at a time, so texts of later requests stay where a cancel can drop them. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import type { ChunkEmbedding } from "../../worker/core/heads.js";
import { EmbeddingPipeline } from "../../worker/core/pipeline.js";
import type { ChunkTokenizer, EmbeddingModel, ModelBatch, VectorSink } from "../../worker/core/ports.js";
import { waitFor } from "../../kit/harness.js";
import { fakeModelInfo } from "../support/fake-model-info.js";

/** Counts calls; one id per character, between <s> and </s>. */
class CountingTokenizer implements ChunkTokenizer {
  calls = 0;
  async encode(texts: string[]) {
    this.calls++;
    return texts.map((t) => ({
      ids: Int32Array.from([0, ...Array.from(t, () => 5), 2]),
      fullLength: t.length + 2,
      truncated: false,
    }));
  }
  async close() {}
}

/** Holds every batch until `release()`; records the rows it was handed. */
class HeldModel implements EmbeddingModel {
  rows = 0;
  private open!: () => void;
  private readonly gate = new Promise<void>((r) => (this.open = r));
  readonly info = fakeModelInfo();
  async embed(b: ModelBatch): Promise<ChunkEmbedding[]> {
    this.rows += b.sequences.length;
    await this.gate;
    return b.sequences.map((s) => ({ dense: Float32Array.from([s.length, 1]) }));
  }
  release() {
    this.open();
  }
  async close() {}
}

const sink: VectorSink = {
  describe: () => "none",
  init: async () => {},
  upsert: async () => {},
  close: async () => {},
};
const cfg = parseConfig({ MAX_BATCH_TOKENS: "512", MAX_SEQ_LENGTH: "256", CHUNK_TOKENS: "128", BATCH_LINGER_MS: "2" });

test("a cancelled query rejects with its reason; its texts not yet in the model never run", async () => {
  const tokenizer = new CountingTokenizer();
  const model = new HeldModel();
  const p = new EmbeddingPipeline(cfg, { tokenizer, model, sink });
  const ask = (id: string, signal?: AbortSignal) =>
    p.embedQuery([`${id} one`, `${id} two`], { id, timeoutMs: 10_000, signal });
  const first = ask("first");
  await waitFor(() => model.rows === 2, 2000, "the first request's batch in the model");
  const later = ["second", "third"].map((id) => {
    const ac = new AbortController();
    return {
      ac,
      done: ask(id, ac.signal).then(
        () => undefined,
        (e: unknown) => e,
      ),
    };
  });
  await waitFor(() => p.inFlightQueries === 3, 2000, "three requests in flight");
  await new Promise((r) => setTimeout(r, 20)); // time to tokenize and be pooled (or, before the fix, sent on)
  const gone = new Error("the client closed the connection");
  for (const l of later) l.ac.abort(gone);
  for (const l of later) assert.equal(await l.done, gone, "rejects with the signal's reason");

  const early = new AbortController();
  early.abort(gone);
  const calls = tokenizer.calls;
  await assert.rejects(ask("early", early.signal), (e) => e === gone);
  assert.equal(tokenizer.calls, calls, "an aborted request is not tokenized");

  model.release();
  const answered = await first;
  assert.equal(answered.embeddings.length, 2);
  assert.equal(model.rows, 2, "only the first request's texts reached the model");
  assert.equal(p.inFlightQueries, 0);
  await p.drain();
});
