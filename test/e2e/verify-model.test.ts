/** verify-model: FlagEmbedding's scores reproduced on hand-made inputs whose results are worked
 *  out below; the comparison with the published numbers (passes on them, fails just past each
 *  tolerance); and the command as a user runs it (`node dist/worker/model-tools/verify-model-cli.js`)
 *  on the generated random model, which must fail, in text and in JSON; the decoded token keys
 *  against the real XLM-R tokenizer (when ../shared is present); and the same measurements from
 *  every three-head export layout of one set of weights and from prepare-model'd backbones. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { test } from "node:test";
import { promisify } from "node:util";
import {
  colbertScore,
  decodeToken,
  denseSimilarity,
  lexicalMatchingScore,
  weightsByToken,
} from "../../worker/model-tools/bge-m3-scores.js";
import {
  COLBERT_SCORES,
  DENSE_SIMILARITY,
  LEXICAL_SCORES,
  QUERIES,
  QUERY_LEXICAL_WEIGHTS,
} from "../../worker/model-tools/bge-m3-published.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import {
  compareBatched,
  compareWithPublished,
  verifyModel,
  type Measured,
  type VerifyReport,
} from "../../worker/model-tools/verify-model.js";
import { LocalQueryEmbedder } from "../../worker/search/query-embedder.js";
import { writeExportLayout, type ExportLayout } from "../../kit/test-model/export-layouts.js";
import { prepareModel } from "../../worker/model-tools/prepare-model.js";
import { hasReference, referenceRoot, repoRoot, SKIP_NO_REFERENCE, testConfig, testModel } from "../../kit/harness.js";

const cli = path.join(repoRoot, "dist", "worker", "model-tools", "verify-model-cli.js");
const near = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b}`);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runCli(modelDir: string, args: string[] = []): Promise<Run> {
  const env = { PATH: process.env.PATH, MODEL_DIR: modelDir, LOG_LEVEL: "silent" };
  try {
    const r = await promisify(execFile)(process.execPath, [cli, ...args], { env, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | null; stdout?: string; stderr?: string };
    return { code: e.code ?? null, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

test("lexical matching score: sum over shared token ids of the weight products", () => {
  const a = { indices: [5, 7, 9], values: [0.5, 0.2, 0.1] };
  const b = { indices: [11, 9, 7], values: [0.9, 0.4, 0.3] };
  // shared ids 7 and 9: 0.2 * 0.3 + 0.1 * 0.4 = 0.06 + 0.04
  near(lexicalMatchingScore(a, b), 0.1, 1e-15);
  near(lexicalMatchingScore(b, a), 0.1, 1e-15);
  assert.equal(lexicalMatchingScore(a, { indices: [1, 2], values: [1, 1] }), 0);
  assert.equal(lexicalMatchingScore(a, { indices: [], values: [] }), 0);
});

test("ColBERT score: mean over the query's rows of the best dot product with any passage row", () => {
  // query rows [1,0], [0,1], [0.6,0.8]; passage rows [0.8,0.6], [0,1]
  const q = { data: [1, 0, 0, 1, 0.6, 0.8], dim: 2 };
  const p = { data: [0.8, 0.6, 0, 1], dim: 2 };
  // best per query row: max(0.8, 0) = 0.8; max(0.6, 1) = 1; max(0.96, 0.8) = 0.96 -> 2.76 / 3 query rows
  near(colbertScore(q, p), 0.92);
  // divided by the query's rows, not the passage's: swapped, max(0.8, 0.6, 0.96) + max(0, 1, 0.8) = 1.96 / 2
  near(colbertScore(p, q), 0.98);
  assert.equal(colbertScore({ data: [], dim: 2 }, p), 0);
  assert.throws(() => colbertScore(q, { data: [1, 0, 0], dim: 3 }), /width/);
});

test("dense similarity: queries x passages dot products", () => {
  const m = denseSimilarity(
    [
      [1, 0],
      [0.6, 0.8],
    ],
    [
      [0.8, 0.6],
      [0, 1],
    ],
  );
  assert.equal(m.length, 2);
  near(m[0][0], 0.8);
  near(m[0][1], 0);
  near(m[1][0], 0.96);
  near(m[1][1], 0.8);
  assert.throws(() => denseSimilarity([[1, 0]], [[1, 0, 0]]), /length/);
});

test("lexical weights are keyed by the token as tokenizer.decode([id]) prints it", () => {
  assert.equal(decodeToken("\u2581What"), "What");
  assert.equal(decodeToken("GE"), "GE");
  assert.equal(decodeToken("\u2581"), "");
  assert.equal(decodeToken("\u2581a\u2581b"), "a b");
  const pieces = new Map([
    [10, "\u2581B"],
    [11, "GE"],
    [12, "B"],
  ]);
  const byToken = weightsByToken({ indices: [10, 11, 12, 99], values: [0.1, 0.25, 0.3, 0.05] }, pieces);
  // "▁B" and "B" both decode to "B": the larger weight stays; an id without a piece is named by its id
  assert.deepEqual(
    [...byToken],
    [
      ["B", 0.3],
      ["GE", 0.25],
      ["[id 99]", 0.05],
    ],
  );
});

test("with XLM-R's tokenizer the queries' tokens decode to exactly the published keys, as native decode does", async (t) => {
  if (!hasReference) {
    t.skip(SKIP_NO_REFERENCE);
    return;
  }
  // BGE-M3 ships XLM-R's 250,002-token SentencePiece vocabulary; this reference file holds the same.
  const dir = path.join(referenceRoot, "reference", "tokenizers", "xlm-roberta-250k");
  const json = gunzipSync(
    readFileSync(
      path.join(
        dir,
        readdirSync(dir).find((f) => f.endsWith(".json.gz"))!,
      ),
    ),
  );
  const tmp = mkdtempSync(path.join(os.tmpdir(), "verify-model-tok-"));
  const tokenizerPath = path.join(tmp, "tokenizer.json");
  writeFileSync(tokenizerPath, json);
  const pool = new TokenizerPool({ tokenizerPath, maxLength: 8192, eosId: 2, backend: "js", threads: 1 });
  try {
    const native = NativeTokenizer.fromString(json.toString("utf8"));
    const chunks = await pool.encode([...QUERIES], { tokens: true });
    for (const [q, chunk] of chunks.entries()) {
      const words = chunk.tokens!.slice(1, -1); // without <s> and </s>
      assert.deepEqual(
        words.map(decodeToken),
        QUERY_LEXICAL_WEIGHTS[q].map(([token]) => token),
      );
      for (const [i, piece] of chunk.tokens!.entries()) {
        assert.equal(decodeToken(piece), await native.decode([chunk.ids[i]], false), piece);
      }
    }
  } finally {
    await pool.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

/** The published numbers themselves, as a perfect model would measure them. */
function publishedAsMeasured(): Measured {
  return {
    dense: DENSE_SIMILARITY.map((row) => [...row]),
    queryWeights: QUERY_LEXICAL_WEIGHTS.map((pairs) => new Map(pairs)),
    lexical: { ...LEXICAL_SCORES },
    colbert: { ...COLBERT_SCORES },
  };
}

test("the comparison passes on the published numbers and fails just past each tolerance", () => {
  const exact = compareWithPublished(publishedAsMeasured());
  assert.equal(exact.length, 4 + 7 + 6 + 2 + 2);
  assert.ok(exact.every((c) => c.ok && c.deviation === 0));

  const failing = (m: Measured) =>
    compareWithPublished(m)
      .filter((c) => !c.ok)
      .map((c) => `${c.group} ${c.name}`);
  const m = publishedAsMeasured();
  m.dense![0][1] += 0.009;
  m.colbert!.q0p0 -= 0.009;
  m.queryWeights![0].set("GE", 0.252 + 0.0049);
  m.queryWeights![1].set("tail", 0.0049);
  assert.deepEqual(failing(m), [], "within tolerance");
  m.dense![0][1] += 0.002;
  m.colbert!.q0p0 -= 0.002;
  m.lexical!.q0q1 = 0.0101;
  m.queryWeights![0].set("GE", 0.252 + 0.0052);
  m.queryWeights![1].set("tail", 0.0052);
  m.queryWeights![1].delete("BM");
  assert.deepEqual(failing(m), [
    "dense similarity q0·p1",
    'lexical weight q0 "GE"',
    'lexical weight q1 "BM"',
    'lexical weight q1 "tail"',
    "lexical score q0·q1",
    "colbert score q0·p0",
  ]);
  const missing = compareWithPublished(m).find((c) => c.name === 'q1 "BM"')!;
  assert.equal(missing.measured, null);
  assert.equal(missing.deviation, null);
  assert.ok(
    !compareWithPublished({
      dense: [
        [Number.NaN, 0.3477],
        [0.3499, 0.678],
      ],
    })[0].ok,
    "NaN fails",
  );
  // The batched rows: the scores again (the weights are carried by the lexical scores), named as such.
  const batched = compareBatched(m);
  assert.deepEqual(
    batched.map((c) => `${c.group} ${c.name}`),
    [
      "dense similarity q0·p0 batched",
      "dense similarity q0·p1 batched",
      "dense similarity q1·p0 batched",
      "dense similarity q1·p1 batched",
      "lexical score q0·p0 batched",
      "lexical score q0·q1 batched",
      "colbert score q0·p0 batched",
      "colbert score q0·p1 batched",
    ],
  );
  const failed = batched.filter((c) => !c.ok).map((c) => c.name);
  assert.deepEqual(failed, ["q0·p1 batched", "q0·q1 batched", "q0·p0 batched"]);
});

test("verify-model on the generated random model exits 1 and prints the side-by-side table", async () => {
  const model = await testModel();
  const r = await runCli(model.dir);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.split("\n");
  assert.match(lines[0], /^verify-model: .*model\.onnx \(ONNX outputs dense_vecs, sparse_vecs, colbert_vecs\)$/);
  assert.ok(
    lines.some((l) => /^check\s+published\s+this model\s+deviation\s+tolerance$/.test(l)),
    r.stdout,
  );
  for (const group of [
    "dense similarity q0·p0",
    "dense similarity q1·p1",
    'lexical weight q0 "What"',
    'lexical weight q1 "25"',
    "lexical score q0·p0",
    "colbert score q0·p1",
  ]) {
    assert.ok(
      lines.some((l) => l.startsWith(group)),
      `${group} row in\n${r.stdout}`,
    );
  }
  const dense = lines.find((l) => l.startsWith("dense similarity q0·p0"))!;
  assert.match(dense, /^dense similarity q0·p0\s+0\.62650\s+-?\d\.\d{5}\s+[+-]\d\.\d{5}\s+0\.01\s+(ok|FAIL)$/);
  assert.match(lines.at(-3)!, /^FAIL: \d+ of \d+ checks outside fp16 tolerance/);
  assert.match(lines.at(-2)!, /Getting a model/);
});

test("verify-model --json parses, flags every deviation past its tolerance, and measures what the worker embeds", async () => {
  const model = await testModel();
  const r = await runCli(model.dir, ["--json"]);
  assert.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as VerifyReport;
  assert.equal(report.ok, false);
  assert.deepEqual(report.outputs, ["dense", "sparse", "colbert"]);
  assert.ok(report.failed > 0 && report.failed === report.checks.filter((c) => !c.ok).length);
  for (const c of report.checks) {
    const within = c.measured !== null && Math.abs(c.measured - c.published) <= c.tolerance;
    assert.equal(c.ok, within, JSON.stringify(c));
  }
  // The random model's dense similarities are far from BGE-M3's: each is flagged.
  const dense = report.checks.filter((c) => c.group === "dense similarity" && !c.name.endsWith("batched"));
  assert.equal(dense.length, 4);
  assert.ok(dense.some((c) => !c.ok));
  // An fp32 model's vectors do not depend on their batch: every batched score equals its one-at-a-time twin.
  const alone = new Map(report.checks.map((c) => [`${c.group} ${c.name}`, c.measured]));
  const batched = report.checks.filter((c) => c.name.endsWith(" batched"));
  assert.equal(batched.length, 8);
  for (const c of batched) {
    near(c.measured!, alone.get(`${c.group} ${c.name.replace(/ batched$/, "")}`)!, 1e-5);
  }

  // The numbers are the worker's own vectors: recompute q0·p0 from the query embedder.
  const embedder = await LocalQueryEmbedder.open(testConfig({ MODEL_DIR: model.dir, OUTPUTS: "dense,sparse" }));
  try {
    const q0 = (await embedder.embed("What is BGE M3?")).vectors;
    const p0 = (
      await embedder.embed(
        "BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.",
      )
    ).vectors;
    let dot = 0;
    q0.dense!.forEach((v, i) => (dot += v * p0.dense![i]));
    near(dense[0].measured!, dot, 1e-6);
    const pw = new Map(p0.sparse!.indices.map((id, i) => [id, p0.sparse!.values[i]]));
    let lexical = 0;
    q0.sparse!.indices.forEach((id, i) => (lexical += q0.sparse!.values[i] * (pw.get(id) ?? 0)));
    near(report.checks.find((c) => c.group === "lexical score" && c.name === "q0·p0")!.measured!, lexical, 1e-6);
  } finally {
    await embedder.close();
  }
});

test("verify-model on an export without heads names OUTPUTS and exits 2; --outputs dense checks what it has", async () => {
  const model = await testModel({ outputs: "last_hidden_state" }, "last-hidden-state");
  const refused = await runCli(model.dir);
  assert.equal(refused.code, 2, refused.stdout);
  assert.equal(refused.stdout, "");
  assert.match(refused.stderr, /^verify-model: .*OUTPUTS/);
  assert.match(refused.stderr, /--outputs dense/);
  const denseOnly = await runCli(model.dir, ["--outputs", "dense", "--json"]);
  assert.equal(denseOnly.code, 1, denseOnly.stderr);
  const report = JSON.parse(denseOnly.stdout) as VerifyReport;
  assert.deepEqual([...new Set(report.checks.map((c) => c.group))], ["dense similarity"]);
});

test("verify-model: a missing MODEL_DIR or a bad option is exit 2 with one line, not a failed check", async () => {
  const missing = await runCli(path.join(repoRoot, "no-such-model-dir"));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^verify-model: MODEL_DIR ".*no-such-model-dir" does not exist/);
  assert.equal(missing.stderr.trim().split("\n").length, 1);
  const bad = await runCli(path.join(repoRoot, "no-such-model-dir"), ["--outputs", "dense,bogus"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected a comma list of dense, sparse, colbert/);
});

test("in-process verifyModel reports the model file discovery chose", async () => {
  const model = await testModel();
  const report = await verifyModel(testConfig({ MODEL_DIR: model.dir }), ["colbert"]);
  assert.equal(report.modelPath, model.modelPath);
  assert.deepEqual(
    report.checks.map((c) => `${c.group} ${c.name}`),
    ["colbert score q0·p0", "colbert score q0·p1", "colbert score q0·p0 batched", "colbert score q0·p1 batched"],
  );
  assert.ok(report.checks.every((c) => c.measured !== null && Number.isFinite(c.measured)));
});

/** measured value per check name (`group name`). */
function measuredByName(r: VerifyReport): Map<string, number | null> {
  return new Map(r.checks.map((c) => [`${c.group} ${c.name}`, c.measured]));
}

function assertSameMeasurements(got: VerifyReport, want: VerifyReport, eps: number, what: string): void {
  const a = measuredByName(got);
  const b = measuredByName(want);
  let compared = 0;
  for (const [name, v] of b) {
    // fp16 rounding may push a near-zero weight across relu's edge: compare the tokens both weigh.
    if (eps > 1e-5 && (!a.has(name) || a.get(name) === null || v === null)) continue;
    assert.ok(a.has(name), `${what}: no ${name}`);
    const w = a.get(name)!;
    if (w === null && v === null) continue; // a published token neither model weighs
    assert.ok(w !== null && v !== null && Math.abs(w - v) <= eps, `${what}: ${name} ${w} vs ${v}`);
    compared++;
  }
  if (eps <= 1e-5) assert.equal(a.size, b.size, `${what}: the same checks`);
  assert.ok(compared >= 10, `${what}: compared ${compared} checks`);
}

test("verify-model measures the same on every three-head export layout and on a prepare-model'd backbone", async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), "verify-model-layouts-"));
  const verify = async (dir: string) => verifyModel(testConfig({ MODEL_DIR: dir }));
  try {
    const layout = async (l: ExportLayout) => (await writeExportLayout(path.join(root, l), l)).dir;
    const reference = await verify(await layout("vecs"));
    assert.ok(reference.layout.layout, "the report names the detected layout");
    for (const l of ["vecs-int32", "raw-cls", "renamed"] as const) {
      const report = await verify(await layout(l));
      assertSameMeasurements(report, reference, 1e-5, l);
      if (l === "raw-cls") assert.match(report.layout.colbert ?? "", /CLS row skipped/);
    }
    assertSameMeasurements(await verify(await layout("vecs-fp16")), reference, 2e-2, "vecs-fp16");
    for (const [backbone, eps] of [
      ["backbone", 1e-5],
      ["backbone-fp16", 2e-2],
    ] as const) {
      const out = path.join(root, `${backbone}-prepared`);
      await prepareModel({ from: await layout(backbone), out });
      assertSameMeasurements(await verify(out), reference, eps, `${backbone} + prepare-model`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
