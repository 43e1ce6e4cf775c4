/**
 * Tests of the tiny BGE-M3-shaped test model generator: determinism, the ONNX
 * interface ORT sees, agreement with the independent float64 reference, and
 * the runtime behaviours workers rely on (padding invariance, vocab and
 * position limits). Trade-off: every check runs the real onnxruntime-node
 * session, which costs a few hundred milliseconds but proves the graph loads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import * as ort from "onnxruntime-node";
import { SeededRandom } from "./support/tiny-bge-m3/seeded-random.js";
import {
  DEFAULT_TINY_BGE_M3_OPTIONS,
  TinyModelConfigError,
  maxSequenceLength,
  type TinyBgeM3Options,
} from "./support/tiny-bge-m3/tiny-bge-m3-config.js";
import { buildTinyBgeM3Model, ensureTinyBgeM3ModelDir } from "./support/tiny-bge-m3/tiny-bge-m3-model.js";
import { runTinyBgeM3Reference } from "./support/tiny-bge-m3/tiny-bge-m3-reference.js";

const PAD = 1;
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function session(options: TinyBgeM3Options = {}): Promise<ort.InferenceSession> {
  const key = JSON.stringify(options);
  if (!sessions.has(key)) sessions.set(key, ort.InferenceSession.create(buildTinyBgeM3Model(options).bytes));
  return sessions.get(key)!;
}

/** Right-pad sequences with <pad>, as a length-bucketing batcher would. */
function padBatch(sequences: number[][]): { ids: number[][]; mask: number[][] } {
  const width = Math.max(...sequences.map((s) => s.length));
  return {
    ids: sequences.map((s) => [...s, ...Array<number>(width - s.length).fill(PAD)]),
    mask: sequences.map((s) => [...s.map(() => 1), ...Array<number>(width - s.length).fill(0)]),
  };
}

async function run(s: ort.InferenceSession, sequences: number[][]) {
  const { ids, mask } = padBatch(sequences);
  const dims = [ids.length, ids[0].length];
  const tensor = (rows: number[][]) => new ort.Tensor("int64", BigInt64Array.from(rows.flat(), BigInt), dims);
  const out = await s.run({ input_ids: tensor(ids), attention_mask: tensor(mask) });
  return { out, ids, mask };
}

/** `[B, ...rest]` tensor -> the flat slice of batch row `b`. */
function rowOf(t: ort.Tensor, b: number): Float32Array {
  const per = t.dims.slice(1).reduce((x, y) => x * y, 1);
  return (t.data as Float32Array).subarray(b * per, (b + 1) * per);
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "compared arrays differ in length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Random XLM-R-style sequences: <s> body </s>, body ids from the whole non-special range. */
function randomSequences(seed: number, lengths: number[], vocabSize = 250002): number[][] {
  const rng = new SeededRandom(seed);
  return lengths.map((n) => [0, ...Array.from({ length: n - 2 }, () => 4 + (rng.nextUint32() % (vocabSize - 5))), 2]);
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("same options give byte-identical models and other seeds give other models", () => {
  const a = buildTinyBgeM3Model({ seed: 7 });
  const b = buildTinyBgeM3Model({ seed: 7 });
  const c = buildTinyBgeM3Model({ seed: 8 });
  assert.equal(sha(a.bytes), sha(b.bytes));
  assert.notEqual(sha(a.bytes), sha(c.bytes));
  assert.notDeepEqual(a.weights.colbertLinear.data, c.weights.colbertLinear.data);
  // Explicit defaults resolve to the same model as no options at all.
  assert.equal(sha(buildTinyBgeM3Model().bytes), sha(buildTinyBgeM3Model({ ...DEFAULT_TINY_BGE_M3_OPTIONS }).bytes));
});

test("impossible options are rejected with TinyModelConfigError", () => {
  assert.throws(() => buildTinyBgeM3Model({ hiddenSize: 30, numAttentionHeads: 4 }), TinyModelConfigError);
  assert.throws(() => buildTinyBgeM3Model({ vocabSize: 3 }), /vocabSize/);
  assert.throws(() => buildTinyBgeM3Model({ seed: -1 }), /seed/);
  assert.throws(() => buildTinyBgeM3Model({ layout: "pooled" as never }), /layout/);
  assert.throws(() => buildTinyBgeM3Model({ maxPositionEmbeddings: 2 }), /maxPositionEmbeddings/);
});

test("ORT sees BGE-M3 input and output names with BGE-M3 shapes", async () => {
  const s = await session();
  assert.deepEqual(s.inputNames, ["input_ids", "attention_mask"]);
  assert.deepEqual(s.outputNames, ["dense_vecs", "sparse_vecs", "colbert_vecs"]);
  const { out } = await run(s, randomSequences(1, [9, 4, 6]));
  assert.deepEqual(out.dense_vecs.dims, [3, 32]);
  assert.deepEqual(out.sparse_vecs.dims, [3, 9, 1]);
  assert.deepEqual(out.colbert_vecs.dims, [3, 8, 32]);

  const hs = await session({ layout: "last-hidden-state", hiddenSize: 24, numAttentionHeads: 3 });
  assert.deepEqual(hs.outputNames, ["last_hidden_state"]);
  const hsOut = (await run(hs, randomSequences(2, [5, 3]))).out;
  assert.deepEqual(hsOut.last_hidden_state.dims, [2, 5, 24]);
});

test("ORT agrees with the independent float64 reference forward pass", async () => {
  for (const options of [{}, { seed: 99, numHiddenLayers: 3, hiddenSize: 16, numAttentionHeads: 2, intermediateSize: 40 }]) {
    const model = buildTinyBgeM3Model(options);
    const { out, ids, mask } = await run(await session(options), randomSequences(3, [12, 5, 8, 2]));
    const ref = runTinyBgeM3Reference(model.config, model.weights, ids, mask);
    ids.forEach((_, b) => {
      assert.ok(maxAbsDiff(rowOf(out.dense_vecs, b), ref.denseVecs[b]) < 1e-4, `dense row ${b}`);
      assert.ok(maxAbsDiff(rowOf(out.sparse_vecs, b), ref.sparseVecs[b]) < 1e-4, `sparse row ${b}`);
      const colbert = ref.colbertVecs[b].flatMap((v) => Array.from(v));
      assert.ok(maxAbsDiff(rowOf(out.colbert_vecs, b), colbert) < 1e-4, `colbert row ${b}`);
    });
  }
  const options = { layout: "last-hidden-state" as const, seed: 5 };
  const model = buildTinyBgeM3Model(options);
  const { out, ids, mask } = await run(await session(options), randomSequences(4, [7, 3]));
  const ref = runTinyBgeM3Reference(model.config, model.weights, ids, mask);
  ids.forEach((_, b) => {
    const flat = ref.lastHiddenState[b].flatMap((v) => Array.from(v));
    assert.ok(maxAbsDiff(rowOf(out.last_hidden_state, b), flat) < 1e-4, `hidden row ${b}`);
  });
});

test("dense and real-token ColBERT vectors are unit length, padded ColBERT rows are zero", async () => {
  const sequences = randomSequences(5, [10, 3, 7]);
  const { out } = await run(await session(), sequences);
  const h = out.dense_vecs.dims[1];
  const colLen = out.colbert_vecs.dims[1];
  sequences.forEach((seq, b) => {
    assert.ok(Math.abs(norm(rowOf(out.dense_vecs, b)) - 1) < 1e-5, `dense ${b} not unit`);
    const rows = rowOf(out.colbert_vecs, b);
    for (let r = 0; r < colLen; r++) {
      const n = norm(rows.subarray(r * h, (r + 1) * h));
      // colbert row r is token r + 1; it is real when r + 1 < seq.length.
      if (r + 1 < seq.length) assert.ok(Math.abs(n - 1) < 1e-5, `colbert ${b}/${r} norm ${n}`);
      else assert.equal(n, 0, `padded colbert ${b}/${r} should be zero`);
    }
  });
});

test("sparse weights are non-negative and most real tokens carry some weight", async () => {
  const sequences = randomSequences(6, [40, 25, 33]);
  const { out, mask } = await run(await session(), sequences);
  let real = 0;
  let positive = 0;
  mask.forEach((m, b) => {
    const w = rowOf(out.sparse_vecs, b);
    m.forEach((keep, t) => {
      assert.ok(w[t] >= 0, `negative sparse weight at ${b}/${t}`);
      if (keep === 1) {
        real++;
        if (w[t] > 0) positive++;
      }
    });
  });
  assert.ok(positive / real > 0.5, `only ${positive}/${real} real tokens have a positive sparse weight`);
  assert.ok(positive < real, "every token positive: the zero-weight path would never be exercised");
});

test("right padding in a batch does not change a sequence's vectors", async () => {
  const s = await session();
  const [short, long] = randomSequences(7, [6, 20]);
  const alone = (await run(s, [short])).out;
  const batched = (await run(s, [long, short])).out;
  const h = alone.dense_vecs.dims[1];
  assert.ok(maxAbsDiff(rowOf(alone.dense_vecs, 0), rowOf(batched.dense_vecs, 1)) < 1e-5);
  assert.ok(maxAbsDiff(rowOf(alone.sparse_vecs, 0), rowOf(batched.sparse_vecs, 1).subarray(0, short.length)) < 1e-5);
  const realRows = (short.length - 1) * h;
  assert.ok(maxAbsDiff(rowOf(alone.colbert_vecs, 0), rowOf(batched.colbert_vecs, 1).subarray(0, realRows)) < 1e-5);
});

test("vectors depend on which tokens appear and in what order", async () => {
  const s = await session();
  const base = [0, 1000, 2000, 3000, 2];
  const swapped = [0, 3000, 2000, 1000, 2];
  const changed = [0, 1000, 2001, 3000, 2];
  const { out } = await run(s, [base, swapped, changed]);
  const cos = (a: Float32Array, b: Float32Array) => a.reduce((acc, v, i) => acc + v * b[i], 0);
  const d = [0, 1, 2].map((b) => rowOf(out.dense_vecs, b));
  assert.ok(cos(d[0], d[1]) < 0.9999, "token order did not change the dense vector");
  assert.ok(cos(d[0], d[2]) < 0.9999, "a different token did not change the dense vector");
});

test("accepts the whole XLM-R id range and fails past it, like the real embedding table", async () => {
  const s = await session();
  const { out } = await run(s, [[0, 250001, 250000, 4, 2]]);
  assert.ok(Math.abs(norm(rowOf(out.dense_vecs, 0)) - 1) < 1e-5);
  // The guard node's name in ORT's message shows the failure is the vocab bound, not something else.
  await assert.rejects(run(s, [[0, 250002, 2]]), /vocab_guard/);

  const small = { vocabSize: 8000 };
  await run(await session(small), [[0, 7999, 2]]);
  await assert.rejects(run(await session(small), [[0, 8000, 2]]), /vocab_guard/);
});

test("fails on sequences longer than the position table allows, like XLM-R", async () => {
  const options = { maxPositionEmbeddings: 12 };
  const model = buildTinyBgeM3Model(options);
  const limit = maxSequenceLength(model.config);
  assert.equal(limit, 10);
  const s = await session(options);
  const [fits, tooLong] = randomSequences(8, [limit, limit + 1]);
  await run(s, [fits]);
  await assert.rejects(run(s, [tooLong]), /position_embedding/);
  // Padding does not consume positions: a long padded row with a short real part still fits.
  const padded = [...fits.slice(0, 4), ...Array<number>(limit + 5).fill(PAD)];
  const dims = [1, padded.length];
  const ids = new ort.Tensor("int64", BigInt64Array.from(padded, BigInt), dims);
  const mask = new ort.Tensor("int64", BigInt64Array.from(padded, (id) => (id === PAD ? 0n : 1n)), dims);
  await s.run({ input_ids: ids, attention_mask: mask });
});

test("ensureTinyBgeM3ModelDir writes a loadable model plus config.json and reuses it", async () => {
  const base = mkdtempSync(join(tmpdir(), "tiny-bge-m3-test-"));
  try {
    const files = ensureTinyBgeM3ModelDir({ hiddenSize: 8, numAttentionHeads: 2 }, base);
    const config = JSON.parse(readFileSync(files.configPath, "utf8")) as Record<string, unknown>;
    const s = await ort.InferenceSession.create(files.modelPath);
    const { out } = await run(s, [[0, 42, 2]]);
    assert.equal(out.dense_vecs.dims[1], config.hidden_size);
    assert.equal(config.vocab_size, 250002);
    assert.equal(config.pad_token_id, PAD);

    const before = statSync(files.modelPath).mtimeMs;
    const again = ensureTinyBgeM3ModelDir({ hiddenSize: 8, numAttentionHeads: 2 }, base);
    assert.equal(again.modelPath, files.modelPath);
    assert.equal(statSync(again.modelPath).mtimeMs, before, "cached model was rewritten");
    const other = ensureTinyBgeM3ModelDir({ hiddenSize: 8, numAttentionHeads: 2, seed: 2 }, base);
    assert.notEqual(other.dir, files.dir);
    assert.equal(readdirSync(files.dir).sort().join(","), "config.json,model.onnx");
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const sharedDir = resolve(repoRoot, "..", "shared");
const tokenizerGz = join(sharedDir, "reference", "tokenizers", "xlm-roberta-250k", "paraphrase-multilingual-mpnet-base-v2.tokenizer.json.gz");
const transcriptsDir = join(sharedDir, "data", "transcripts", "en_us_inaugural_addresses");
const sharedSkip = existsSync(tokenizerGz) && existsSync(transcriptsDir)
  ? false
  : "../shared reference tokenizer or transcripts not present next to the repo; skipping the real-tokenizer check";

test("real XLM-R tokenizer output runs through the model", { skip: sharedSkip }, async () => {
  const { Tokenizer } = await import("@huggingface/tokenizers");
  const tokenizerJson = JSON.parse(gunzipSync(readFileSync(tokenizerGz)).toString("utf8")) as object;
  const tokenizer = new Tokenizer(tokenizerJson, {});
  const file = readdirSync(transcriptsDir).filter((f) => f.endsWith(".txt")).sort()[0];
  const text = readFileSync(join(transcriptsDir, file), "utf8");
  const paragraphs = text.split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p.length > 0).slice(0, 3);
  const sequences = paragraphs.map((p) => tokenizer.encode(p).ids.slice(0, 128));
  assert.ok(sequences.every((s) => s[0] === 0), "tokenizer output should start with <s> (id 0)");
  const { out } = await run(await session(), sequences);
  assert.equal(out.dense_vecs.dims[0], sequences.length);
  sequences.forEach((_, b) => assert.ok(Math.abs(norm(rowOf(out.dense_vecs, b)) - 1) < 1e-5));
});
