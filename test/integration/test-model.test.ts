/*
 * Tests for the synthetic BGE-M3-shaped test model and tokenizer generator.
 *
 * They run the generated files through the real consumers (onnxruntime-node
 * and both tokenizer libraries) rather than inspecting protobuf fields, so a
 * graph that serialises but misbehaves at inference time still fails here.
 * Trade-off: each run pays for a few ONNX session creations (well under a
 * second at the tiny default size).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { Tokenizer as JsTokenizer } from "@huggingface/tokenizers";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { generateModelBytes, type TestModelOptions } from "../../kit/test-model/onnx-model-gen.js";
import { generateTokenizerJson } from "../../kit/test-model/tokenizer-gen.js";
import { ensureTestModel, writeTestModel, type TestModelFiles } from "../../kit/test-model/write-test-model.js";

const HIDDEN = 32;
const PAD_ID = 1;
const UNK_ID = 3;
const LONG_TEXT = "The committee postponed the vote on the education bill until next month.";
const SHORT_TEXT = "Order, please.";
const LATIN_TEXT =
  "The minister answered questions about groundwater, broadband subsidies and the 2031 census. " +
  "La diputada pidió explicaciones sobre la reforma fiscal; o conselleiro respondeu en galego. " +
  "Le président a levé la séance à dix-huit heures. Die Abgeordneten stimmten über Änderungsanträge ab. " +
  "Niño, pingüino, acción, cigüeña, garçon, œuvre, Straße, naïve, façade, Ærøskøbing.";
const PARITY_TEXTS = [
  "",
  LONG_TEXT,
  LATIN_TEXT,
  "Amendment no. 12 passed 187-143 (3 abstentions) at 18:45 on 2024-05-07.",
  "¿Cuándo? ¡Ya! «Sí», dijo — “quoted” text… and an apostrophe's edge.",
  "Emoji and symbols: 🎉👍 ✓ → 中文 text mixed in.",
  "   leading and   repeated   spaces\tand\ttabs\nnewlines   ",
];

const tinyOptions: TestModelOptions = {
  vocabSize: 500,
  hidden: 16,
  layers: 1,
  heads: 2,
  intermediate: 32,
  maxPositions: 64,
  outputs: "bge-m3",
};

interface Batch {
  ids: number[][];
  seqLen: number;
  feeds: Record<string, ort.Tensor>;
}

/** Right-pads with <pad> and a zero mask, exactly as the worker batches. */
function makeBatch(ids: number[][], withTokenTypeIds = false): Batch {
  const seqLen = Math.max(...ids.map((row) => row.length));
  const flatIds = new BigInt64Array(ids.length * seqLen).fill(BigInt(PAD_ID));
  const mask = new BigInt64Array(ids.length * seqLen);
  ids.forEach((row, b) =>
    row.forEach((id, i) => {
      flatIds[b * seqLen + i] = BigInt(id);
      mask[b * seqLen + i] = 1n;
    }),
  );
  const dims = [ids.length, seqLen];
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", flatIds, dims),
    attention_mask: new ort.Tensor("int64", mask, dims),
  };
  if (withTokenTypeIds) feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(flatIds.length), dims);
  return { ids, seqLen, feeds };
}

function floats(t: ort.Tensor): Float32Array {
  return t.data as Float32Array;
}

function row(data: Float32Array, index: number, width: number): Float32Array {
  return data.subarray(index * width, (index + 1) * width);
}

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot / (norm(a) * norm(b));
}

describe("test model generator", () => {
  let tmp: string;
  let files: TestModelFiles;
  let session: ort.InferenceSession;
  let jsTokenizer: JsTokenizer;

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "test-model-"));
    files = await writeTestModel(path.join(tmp, "default"));
    session = await ort.InferenceSession.create(files.modelPath, { executionProviders: ["cpu"] });
    jsTokenizer = new JsTokenizer(JSON.parse(await fs.readFile(files.tokenizerPath, "utf8")), {});
  });

  after(async () => {
    await session?.release();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const encode = (text: string): number[] => jsTokenizer.encode(text).ids;

  test("generation is deterministic and seed-sensitive", () => {
    const a = generateModelBytes(tinyOptions);
    const b = generateModelBytes({ ...tinyOptions });
    const c = generateModelBytes({ ...tinyOptions, seed: 7 });
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), "same options must give identical bytes");
    assert.ok(!Buffer.from(a).equals(Buffer.from(c)), "a different seed must change the weights");
    assert.equal(JSON.stringify(generateTokenizerJson()), JSON.stringify(generateTokenizerJson()));
  });

  test("writes the expected files and HF-style config", async () => {
    const config = JSON.parse(await fs.readFile(files.configPath, "utf8"));
    const tokenizer = JSON.parse(await fs.readFile(files.tokenizerPath, "utf8"));
    const tokConfig = JSON.parse(await fs.readFile(files.tokenizerConfigPath, "utf8"));
    assert.equal(config.model_type, "xlm-roberta");
    assert.equal(config.hidden_size, HIDDEN);
    assert.equal(config.max_position_embeddings, 8194);
    assert.equal(config.pad_token_id, PAD_ID);
    assert.equal(config.vocab_size, tokenizer.model.vocab.length);
    assert.equal(config.vocab_size, files.vocabSize);
    assert.equal(config._generated_test_model.seed, 42);
    assert.equal(tokConfig.model_max_length, 8192);
    const specials = tokenizer.added_tokens.map((t: { id: number; content: string }) => [t.content, t.id]);
    assert.deepEqual(specials, [
      ["<s>", 0],
      ["<pad>", 1],
      ["</s>", 2],
      ["<unk>", 3],
      ["<mask>", files.vocabSize - 1],
    ]);
  });

  test("model loads in onnxruntime with BGE-M3 input and output names", () => {
    assert.deepEqual([...session.inputNames], ["input_ids", "attention_mask"]);
    assert.deepEqual([...session.outputNames], ["dense_vecs", "sparse_vecs", "colbert_vecs"]);
  });

  test("padded batch has the right shapes, unit dense rows and is padding-invariant", async () => {
    const longIds = encode(LONG_TEXT);
    const shortIds = encode(SHORT_TEXT);
    assert.ok(shortIds.length < longIds.length, "test needs texts of different lengths");
    const batch = makeBatch([longIds, shortIds]);
    const out = await session.run(batch.feeds);
    const S = batch.seqLen;
    assert.deepEqual(out.dense_vecs.dims, [2, HIDDEN]);
    assert.deepEqual(out.sparse_vecs.dims, [2, S, 1]);
    assert.deepEqual(out.colbert_vecs.dims, [2, S - 1, HIDDEN]);

    const dense = floats(out.dense_vecs);
    for (let b = 0; b < 2; b++) assert.ok(Math.abs(norm(row(dense, b, HIDDEN)) - 1) < 1e-5, `dense row ${b} not unit`);

    const alone = await session.run(makeBatch([shortIds]).feeds);
    const denseAlone = floats(alone.dense_vecs);
    assert.ok(maxAbsDiff(row(dense, 1, HIDDEN), denseAlone) < 1e-4, "padding changed the dense vector");

    const n = shortIds.length;
    const sparsePadded = floats(out.sparse_vecs).subarray(S, S + n);
    assert.ok(maxAbsDiff(sparsePadded, floats(alone.sparse_vecs)) < 1e-4, "padding changed sparse weights");

    const colbert = floats(out.colbert_vecs);
    const colbertRow = colbert.subarray((S - 1) * HIDDEN, 2 * (S - 1) * HIDDEN);
    const real = colbertRow.subarray(0, (n - 1) * HIDDEN);
    assert.ok(maxAbsDiff(real, floats(alone.colbert_vecs)) < 1e-4, "padding changed ColBERT vectors");
    for (let t = 0; t < n - 1; t++) {
      assert.ok(Math.abs(norm(row(colbertRow, t, HIDDEN)) - 1) < 1e-4, `colbert token ${t} not unit`);
    }
    for (let t = n - 1; t < S - 1; t++) {
      assert.equal(norm(row(colbertRow, t, HIDDEN)), 0, `padded colbert position ${t} is not zero`);
    }
  });

  test("outputs are finite, input-sensitive and sparse weights mix zeros and positives", async () => {
    const texts = [LONG_TEXT, "Water management in small towns.", "La sesión plenaria comenzó a las diez.", SHORT_TEXT];
    const ids = texts.map(encode);
    const batch = makeBatch(ids);
    const out = await session.run(batch.feeds);
    const dense = floats(out.dense_vecs);
    for (const v of [dense, floats(out.sparse_vecs), floats(out.colbert_vecs)]) {
      assert.ok(v.every(Number.isFinite), "non-finite output");
    }
    for (let a = 0; a < texts.length; a++) {
      for (let b = a + 1; b < texts.length; b++) {
        const c = cosine(row(dense, a, HIDDEN), row(dense, b, HIDDEN));
        assert.ok(c < 0.95, `texts ${a} and ${b} are too similar (cosine ${c.toFixed(4)})`);
      }
    }
    const sparse = floats(out.sparse_vecs);
    let zeros = 0;
    let positives = 0;
    ids.forEach((r, b) => {
      for (let i = 0; i < r.length; i++) {
        const v = sparse[b * batch.seqLen + i];
        assert.ok(v >= 0, "sparse weights must be non-negative (ReLU)");
        if (v === 0) zeros++;
        else positives++;
      }
    });
    assert.ok(zeros > 0 && positives > 0, `sparse weights: ${zeros} zeros, ${positives} positives`);
  });

  test("last_hidden_state variant has a single output of the right shape", async () => {
    const alt = await writeTestModel(path.join(tmp, "lhs"), { outputs: "last_hidden_state", withTokenTypeIds: true });
    const s = await ort.InferenceSession.create(alt.modelPath, { executionProviders: ["cpu"] });
    try {
      assert.deepEqual([...s.inputNames], ["input_ids", "attention_mask", "token_type_ids"]);
      assert.deepEqual([...s.outputNames], ["last_hidden_state"]);
      const batch = makeBatch([encode(LONG_TEXT)], true);
      const out = await s.run(batch.feeds);
      assert.deepEqual(out.last_hidden_state.dims, [1, batch.seqLen, HIDDEN]);
    } finally {
      await s.release();
    }
  });

  test("both tokenizer libraries produce identical ids", async () => {
    const json = await fs.readFile(files.tokenizerPath, "utf8");
    const native = NativeTokenizer.fromString(json);
    for (const text of PARITY_TEXTS) {
      const jsIds = jsTokenizer.encode(text).ids;
      const nativeIds = (await native.encode(text)).getIds();
      assert.deepEqual(jsIds, nativeIds, `ids differ for ${JSON.stringify(text)}`);
    }
    assert.deepEqual(encode(""), [0, 2]);
  });

  test("Latin words never become <unk>, common words are one piece", () => {
    const words = LATIN_TEXT.split(/\s+/).filter((w) => w.length > 0);
    for (const word of words) {
      const ids = encode(word);
      assert.ok(!ids.includes(UNK_ID), `${word} produced <unk>: ${jsTokenizer.encode(word).tokens.join(" ")}`);
    }
    // Guards the check above: the unk id really is what unknown scripts map to.
    assert.ok(encode("🎉").includes(UNK_ID));
    for (const word of ["committee", "the", "parliament", "transcript", "sesión"]) {
      assert.equal(encode(word).length, 3, `${word} should be <s> ▁${word} </s>`);
    }
  });

  test("ensureTestModel reuses matching files and rebuilds on new options", async () => {
    const dir = path.join(tmp, "cached");
    const first = await ensureTestModel(dir, { layers: 1 });
    const stamp = (await fs.stat(first.modelPath)).mtimeMs;
    const again = await Promise.all([ensureTestModel(dir, { layers: 1 }), ensureTestModel(dir, { layers: 1 })]);
    assert.equal((await fs.stat(again[0].modelPath)).mtimeMs, stamp, "matching options must not regenerate");
    assert.deepEqual(again[1], first);
    const before = await fs.readFile(first.modelPath);
    await ensureTestModel(dir, { layers: 1, seed: 9 });
    const changed = await fs.readFile(first.modelPath);
    assert.ok(!before.equals(changed), "changed options must regenerate the model");
    const leftovers = (await fs.readdir(dir)).filter((f) => f.endsWith(".tmp"));
    assert.deepEqual(leftovers, []);
  });

  test("onnxSubfolder writes onnx/model.onnx (the transformers.js layout) from the same weights", async () => {
    const flat = await ensureTestModel(path.join(tmp, "flat-lhs"), { layers: 1, outputs: "last_hidden_state" });
    const nested = await ensureTestModel(path.join(tmp, "nested-lhs"), {
      layers: 1,
      outputs: "last_hidden_state",
      onnxSubfolder: true,
    });
    assert.equal(nested.modelPath, path.join(nested.dir, "onnx", "model.onnx"));
    await assert.rejects(fs.access(path.join(nested.dir, "model.onnx")));
    assert.ok(
      (await fs.readFile(flat.modelPath)).equals(await fs.readFile(nested.modelPath)),
      "the layout must not change the model bytes",
    );
    const again = await ensureTestModel(path.join(tmp, "nested-lhs"), {
      layers: 1,
      outputs: "last_hidden_state",
      onnxSubfolder: true,
    });
    assert.deepEqual(again, nested);
  });

  test("model vocabulary can exceed the tokenizer's but not undercut it", async () => {
    const wide = await writeTestModel(path.join(tmp, "wide"), { vocabSize: 5000, layers: 1 });
    assert.equal(wide.vocabSize, 5000);
    await assert.rejects(writeTestModel(path.join(tmp, "narrow"), { vocabSize: 10 }), /smaller than the tokenizer/);
  });
});
