/** Unit tests of the activation-memory estimate and the largest batch the planner can form
 *  (worker/core/activation-memory.ts), and of how start-up settles the attention budget
 *  (worker/adapters/activation-plan.ts) with the device reader replaced. Pure: no model, no GPU. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import {
  activationBytes,
  attentionBudgetForDevice,
  DEVICE_ACTIVATION_SHARE,
  largestBatch,
  LINEAR_WIDTH,
  rowsAt,
} from "../../worker/core/activation-memory.js";
import { describeLargestBatch, resolveAttentionBudget } from "../../worker/adapters/activation-plan.js";
import { ConfigError } from "../../worker/errors.js";
import { parseConfig } from "../../shared/config.js";

const BGE_FP16 = { heads: 16, hidden: 1024, bytes: 2 };
const GIB = 1024 ** 3;

test("activationBytes: the issue's H100 batch (16 x 8192, BGE-M3 fp16) is ~34 GB per score tensor", () => {
  const est = activationBytes({ rows: 16, paddedLength: 8192 }, BGE_FP16);
  assert.equal(est.scores / 2, 16 * 16 * 8192 * 8192 * 2);
  assert.ok(Math.abs(est.scores / 2 / 1e9 - 34.4) < 0.1);
  assert.equal(est.linear, 16 * 8192 * 1024 * LINEAR_WIDTH * 2);
});

test("largestBatch: within every limit, and no allowed shape has a larger estimate", () => {
  fc.assert(
    fc.property(
      fc.record({
        maxBatchTokens: fc.integer({ min: 64, max: 8192 }),
        maxBatchSize: fc.integer({ min: 1, max: 64 }),
        padMultiple: fc.constantFrom(1, 8, 64),
        maxSeqLength: fc.integer({ min: 64, max: 1024 }),
        extra: fc.integer({ min: 0, max: 8 }),
      }),
      ({ extra, ...l }) => {
        const longest = Math.ceil(l.maxSeqLength / l.padMultiple) * l.padMultiple;
        const limits = {
          ...l,
          maxBatchTokens: Math.max(l.maxBatchTokens, longest),
          maxBatchAttention: longest ** 2 * (1 + extra),
        };
        const dims = { heads: 4, hidden: 32, bytes: 4 };
        const big = largestBatch(limits, dims);
        assert.ok(big.rows >= 1 && big.paddedLength <= longest);
        assert.ok(big.rows * big.paddedLength <= limits.maxBatchTokens);
        assert.ok(big.rows * big.paddedLength ** 2 <= limits.maxBatchAttention);
        assert.ok(big.rows <= limits.maxBatchSize);
        for (let L = l.padMultiple; L <= longest; L += l.padMultiple) {
          const rows = rowsAt(L, limits);
          if (rows >= 1) assert.ok(activationBytes({ rows, paddedLength: L }, dims).total <= big.bytes);
        }
      },
    ),
  );
});

test("largestBatch at the defaults: cpu 4 x 1024 (2,048² cells, the full token budget), cuda 4 x 4096", () => {
  const at = (env: Record<string, string>) => {
    const cfg = parseConfig(env);
    const big = largestBatch(
      {
        maxBatchTokens: cfg.MAX_BATCH_TOKENS,
        maxBatchSize: cfg.MAX_BATCH_SIZE,
        padMultiple: cfg.PAD_MULTIPLE,
        maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
        maxSeqLength: cfg.MAX_SEQ_LENGTH,
      },
      { heads: 16, hidden: 1024, bytes: 4 },
    );
    return [big.rows, big.paddedLength];
  };
  // 1 x 2048 (or 1 x 8192) has as many attention cells but fewer tokens, so less linear activation.
  assert.deepEqual(at({}), [4, 1024]);
  // cuda without a device reading: the 8,192² fallback.
  assert.deepEqual(at({ EXECUTION_PROVIDER: "cuda" }), [4, 4096]);
});

test("attentionBudgetForDevice: the largest batch under the derived budget fits half the card", () => {
  for (const gib of [16, 24, 40, 80]) {
    const device = gib * GIB;
    const cells = attentionBudgetForDevice(device, 131_072, BGE_FP16);
    const limits = {
      maxBatchTokens: 131_072,
      maxBatchSize: 512,
      padMultiple: 8,
      maxBatchAttention: cells,
      maxSeqLength: 8192,
    };
    const big = largestBatch(limits, BGE_FP16);
    assert.ok(big.bytes <= device * DEVICE_ACTIVATION_SHARE, `${gib} GiB: ${big.bytes} bytes`);
    assert.ok(big.rows >= 1, `${gib} GiB holds one 8,192-token row`);
  }
});

const files = {
  encoder: { heads: 4, hidden: 32 },
  declared: { inputs: [], outputs: [{ name: "dense_vecs", elemType: 1, shape: [] }] },
  maxPositions: undefined,
};

test("resolveAttentionBudget: the setting on cpu; on cuda unset, from the device, refused when one row cannot fit", async () => {
  const never = async () => assert.fail("the device is read only on cuda with the budget unset");
  const cpu = await resolveAttentionBudget(parseConfig({}), files, never);
  assert.deepEqual(
    [cpu.maxBatchAttention, cpu.source, cpu.dims.from, cpu.dims.bytes],
    [2048 ** 2, "setting", "config.json", 4],
  );
  const set = parseConfig({ EXECUTION_PROVIDER: "cuda", MAX_BATCH_ATTENTION: String(2 * 8192 ** 2) });
  assert.equal((await resolveAttentionBudget(set, files, never)).maxBatchAttention, 2 * 8192 ** 2);
  const cuda = parseConfig({ EXECUTION_PROVIDER: "cuda", MAX_BATCH_TOKENS: "131072" });
  const big = await resolveAttentionBudget(cuda, files, async () => ({ usedBytes: 0, totalBytes: 80 * GIB }));
  assert.equal(big.source, "device");
  assert.equal(big.maxBatchAttention, attentionBudgetForDevice(80 * GIB, 131_072, { heads: 4, hidden: 32, bytes: 4 }));
  const unknown = await resolveAttentionBudget(cuda, files, async () => undefined);
  assert.deepEqual([unknown.maxBatchAttention, unknown.source], [8192 ** 2, "setting"]);
  const bge = { ...files, encoder: undefined };
  await assert.rejects(
    resolveAttentionBudget(cuda, bge, async () => ({ usedBytes: 0, totalBytes: 4 * GIB })),
    (err: ConfigError) =>
      err.problems[0].includes("MAX_BATCH_ATTENTION") && err.problems[0].includes("MAX_SEQ_LENGTH=8192"),
  );
});

test("describeLargestBatch: logs the shape, the estimate and the formula", async () => {
  const cfg = parseConfig({
    MAX_SEQ_LENGTH: "512",
    MAX_BATCH_TOKENS: "2048",
    MAX_BATCH_ATTENTION: String(4 * 512 ** 2),
    CHUNK_TOKENS: "256",
  });
  const budget = await resolveAttentionBudget(cfg, files, async () => assert.fail("cpu: no device read"));
  const d = describeLargestBatch(cfg, budget, 512);
  assert.deepEqual(d.shape, { rows: 4, paddedLength: 512 });
  const est = activationBytes(d.shape, budget.dims);
  assert.equal(d.log.activationMiB, Math.round(est.total / 2 ** 20));
  assert.match(String(d.log.formula), /rows x heads x L² x bytes/);
});

test("docs/models.md GPU table: each row's largest batch and estimate are what the planner computes, under half the card", () => {
  const page = readFileSync(new URL("../../../docs/models.md", import.meta.url), "utf8");
  // The settings table: the GPU rows with 8 columns (the capacity table below it has fewer).
  const rows = page.split("\n").filter((l) => /^\| (T4|A10|A100|H100)/.test(l) && l.split("|").length === 10);
  assert.equal(rows.length, 5);
  for (const row of rows) {
    const cells = row.split("|").map((c) => c.trim());
    const card = Number(/(\d+) GB$/.exec(cells[1])![1]);
    const [tokens, attention, size] = [Number(cells[2]), Number(cells[3]), Number(cells[5])];
    const big = largestBatch(
      { maxBatchTokens: tokens, maxBatchSize: size, padMultiple: 8, maxBatchAttention: attention, maxSeqLength: 8192 },
      BGE_FP16,
    );
    assert.equal(cells[4], `${big.rows} x ${big.paddedLength}, ${(big.bytes / 1e9).toFixed(1)} GB`, cells[1]);
    assert.ok(big.bytes <= (card * 1e9) / 2, `${cells[1]}: ${big.bytes} bytes over half the card`);
  }
});
