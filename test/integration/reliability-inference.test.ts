/** Inference failures injected through the model port around the real ONNX session: a batch
 *  over a simulated memory limit is split and retried smaller until it fits; a chunk that runs
 *  out of memory even alone, or that the model fails on, fails only its own job, with reason
 *  `oom: …` or `inference: …`; every other chunk of the same batches is stored. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Queue } from "bullmq";
import { InferenceError, OutOfMemoryError } from "../../worker/errors.js";
import { pointId } from "../../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { createLogger } from "../../shared/logger.js";
import { metricTotal } from "../../worker/metrics.js";
import type { EmbeddingModel, ModelBatch } from "../../worker/core/ports.js";
import { startWorker } from "../../worker/app.js";
import { waitFor } from "../../kit/harness.js";
import { SHARED_REDIS_URL, suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ redis: SHARED_REDIS_URL, qdrant: "target" });

/** Simulated device: batches over `budget` padded tokens run out of memory; a sequence longer
 *  than `oomAlone` runs out of memory even alone; a sequence of exactly `poisonLength` tokens
 *  makes the model fail. Records every call's shape. */
function faultyModel(inner: EmbeddingModel, rules: { budget: number; oomAlone: number; poisonLength: number }) {
  const calls: Array<{ rows: number; paddedTokens: number; outcome: "ok" | "oom" | "inference" }> = [];
  const model: EmbeddingModel = {
    info: inner.info,
    close: () => inner.close(),
    embed: async (b: ModelBatch) => {
      const paddedTokens = b.sequences.length * b.paddedLength;
      const record = (outcome: "ok" | "oom" | "inference") =>
        calls.push({ rows: b.sequences.length, paddedTokens, outcome });
      if (b.sequences.some((s) => s.length === rules.poisonLength)) {
        record("inference");
        throw new InferenceError(
          "inference failed: Non-zero status code returned while running Gather node (injected)",
        );
      }
      if (paddedTokens > rules.budget || b.sequences.some((s) => s.length > rules.oomAlone)) {
        record("oom");
        throw new OutOfMemoryError("out of memory: CUDA failure 2: out of memory (injected)");
      }
      record("ok");
      return inner.embed(b);
    },
  };
  return { model, calls };
}

/** A text that the worker sees as exactly `tokens` tokens (content plus <s> and </s>). */
function textOf(tokens: number, seed: string): string {
  for (let k = 0; k <= tokens; k++) {
    const t = `${seed} ${"a ".repeat(k)}`.trim();
    const n = fx.countTokens(t) + 2;
    if (n === tokens) return t;
    if (n > tokens) break;
  }
  throw new Error(`could not build a ${tokens}-token text from seed ${seed}`);
}

test("OOM splits a batch until it fits; a chunk failing alone fails only its job, as oom or inference", async () => {
  const { queueName, collection, cfg } = fx.workerConfig("inf", {
    MAX_BATCH_TOKENS: "2048",
    MAX_SEQ_LENGTH: "512",
    CHUNK_TOKENS: "128",
    BATCH_LINGER_MS: "200",
    WARMUP: "false",
  });
  const rules = { budget: 256, oomAlone: 200, poisonLength: 37 };
  let fault!: ReturnType<typeof faultyModel>;
  const w = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    wrapModel: (m) => (fault = faultyModel(m, rules)).model,
  });
  const queue = new Queue(queueName, { connection: fx.connection });
  try {
    const base = { v: JOB_SCHEMA_VERSION, part: 0, parts: 1, docHash: "h", enqueuedAt: Date.now(), metadata: {} };
    const good = Array.from({ length: 8 }, (_, d) => ({
      docId: `good-${d}`,
      chunks: Array.from({ length: 4 }, (_, i) => ({
        index: i,
        text: textOf(20 + ((d + i) % 4) * 4, `w${d}x${i}`),
        metadata: {},
      })),
    }));
    const jobs = [
      ...good,
      {
        docId: "too-big",
        chunks: [
          { index: 0, text: textOf(21, "fine"), metadata: {} },
          { index: 1, text: textOf(240, "huge"), metadata: {} },
        ],
      },
      { docId: "poison", chunks: [{ index: 0, text: textOf(rules.poisonLength, "bad"), metadata: {} }] },
    ];
    await queue.addBulk(
      jobs.map((j) => ({
        name: JOB_NAME,
        data: { ...base, ...j },
        opts: { jobId: j.docId, attempts: 2, backoff: { type: "fixed", delay: 50 } },
      })),
    );
    await waitFor(
      async () => {
        const c = await queue.getJobCounts("completed", "failed");
        return c.completed + c.failed === jobs.length;
      },
      60_000,
      "every job settled",
    );

    const failed = Object.fromEntries((await queue.getFailed()).map((j) => [j.id, j]));
    assert.deepEqual(Object.keys(failed).sort(), ["poison", "too-big"]);
    assert.match(failed["too-big"].failedReason, /^oom: out of memory: CUDA failure 2/);
    assert.match(failed.poison.failedReason, /^inference: inference failed: .*Gather/);
    assert.equal(failed["too-big"].attemptsMade, 2, "retryable failures use their attempts, bounded");
    assert.equal((await queue.getJobCounts("completed")).completed, good.length);

    const stored = new Set([...(fx.target.server?.points(collection).keys() ?? [])].map(String));
    if (fx.target.server) {
      for (const g of good)
        for (const c of g.chunks) assert.ok(stored.has(pointId(g.docId, c.index)), `${g.docId}/${c.index} missing`);
      assert.equal(stored.has(pointId("poison", 0)), false);
      assert.equal(stored.has(pointId("too-big", 1)), false);
    }
    // Batches over the simulated memory were split and retried smaller, down to ones that fit.
    const ooms = fault.calls.filter((c) => c.outcome === "oom");
    assert.ok(
      ooms.some((c) => c.rows > 1),
      "no multi-chunk batch hit the simulated memory limit; the split path was not exercised",
    );
    assert.ok(
      fault.calls.some((c) => c.outcome === "ok" && c.rows > 1 && c.paddedTokens <= rules.budget),
      "split halves should succeed",
    );
    assert.ok(fault.calls.filter((c) => c.outcome === "ok").every((c) => c.paddedTokens <= rules.budget));
    assert.ok((await metricTotal(w.metrics, "embed_errors_total")) >= ooms.length);
    const byType = Object.fromEntries((await w.metrics.errors.get()).values.map((v) => [v.labels.type, v.value]));
    assert.ok(byType.oom >= ooms.length && byType.inference >= 2, JSON.stringify(byType));
  } finally {
    await w.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
});
