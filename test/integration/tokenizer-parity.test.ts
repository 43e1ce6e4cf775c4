/** The two tokenizer libraries the worker can run (TOKENIZER_BACKEND: @huggingface/tokenizers,
 *  pure JS, and the official native `tokenizers` package) on the real XLM-R 250k tokenizer
 *  (BGE-M3's vocabulary) and real transcripts: the raw libraries, then both through the worker's
 *  own tokenizer threads with truncation and token strings. Needs the reference folder beside the
 *  checkout; skips, saying so, without it. Reports the mismatch rate. */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { test } from "node:test";
import { Tokenizer as JsTokenizer } from "@huggingface/tokenizers";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { hasReference, referenceRoot, SKIP_NO_REFERENCE } from "../../kit/harness.js";
import { assertWorkerSemantics, compareBackends } from "../support/tokenizer-backends.js";

function transcriptTexts(): string[] {
  const root = path.join(referenceRoot, "data", "transcripts");
  const texts: string[] = [];
  for (const dir of readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const f of readdirSync(path.join(root, dir.name)).sort()) {
      const full = path.join(root, dir.name, f);
      if (f.endsWith(".json")) {
        const j = JSON.parse(readFileSync(full, "utf8")) as { meeting_transcripts?: Array<{ content: string }> };
        for (const t of j.meeting_transcripts ?? []) texts.push(t.content);
      } else if (f.endsWith(".txt")) {
        texts.push(...readFileSync(full, "utf8").split(/\n\s*\n|\n/));
      }
    }
  }
  return texts.map((t) => t.trim()).filter((t) => t.length > 0);
}

test("XLM-R 250k: @huggingface/tokenizers ids match the native tokenizers package on real transcripts", async (t) => {
  if (!hasReference) {
    t.skip(SKIP_NO_REFERENCE);
    return;
  }
  const dir = path.join(referenceRoot, "reference", "tokenizers", "xlm-roberta-250k");
  const gz = readdirSync(dir).find((f) => f.endsWith(".json.gz"))!;
  const json = gunzipSync(readFileSync(path.join(dir, gz))).toString("utf8");
  const js = new JsTokenizer(JSON.parse(json), {});
  const native = NativeTokenizer.fromString(json);
  native.disableTruncation(); // the file says 128; BGE-M3 uses 8192 and the worker truncates itself
  const all = transcriptTexts();
  // Every 3rd text keeps the run short while covering all three corpora.
  const texts = all.filter((_, i) => i % 3 === 0);
  let mismatched = 0;
  let tokens = 0;
  const examples: string[] = [];
  for (const text of texts) {
    const a: number[] = js.encode(text).ids;
    const b: number[] = (await native.encode(text)).getIds();
    tokens += b.length;
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      mismatched++;
      if (examples.length < 3) examples.push(text.slice(0, 80));
    }
  }
  const rate = mismatched / texts.length;
  t.diagnostic(
    `compared ${texts.length} transcript texts (${tokens} tokens): ${mismatched} mismatched, rate ${(rate * 100).toFixed(3)}%`,
  );
  if (examples.length) t.diagnostic(`examples: ${JSON.stringify(examples)}`);
  assert.ok(texts.length > 1000, "too few texts read from the transcripts");
  assert.ok(rate <= 0.005, `mismatch rate ${(rate * 100).toFixed(2)}% exceeds 0.5%`);
  // the special tokens and pad id the worker relies on
  assert.deepEqual(js.encode("").ids, [0, 2]);
  assert.equal(js.token_to_id("<pad>"), 1);
});

test("XLM-R 250k: both TOKENIZER_BACKENDs through the worker's tokenizer threads agree, truncated or not", async (t) => {
  if (!hasReference) {
    t.skip(SKIP_NO_REFERENCE);
    return;
  }
  const dir = path.join(referenceRoot, "reference", "tokenizers", "xlm-roberta-250k");
  const gz = readdirSync(dir).find((f) => f.endsWith(".json.gz"))!;
  const tmp = mkdtempSync(path.join(os.tmpdir(), "tok-parity-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  // The file itself asks for truncation at 128 and padding: the pool must ignore both.
  const tokenizerPath = path.join(tmp, "tokenizer.json");
  writeFileSync(tokenizerPath, gunzipSync(readFileSync(path.join(dir, gz))));
  const texts = transcriptTexts().filter((_, i) => i % 11 === 0);
  for (const maxLength of [100, 8192]) {
    const { byBackend, mismatched } = await compareBackends(tokenizerPath, texts, { maxLength, eosId: 2 });
    const truncated = byBackend.native.filter((c) => c.truncated).length;
    const longest = Math.max(...byBackend.native.map((c) => c.fullLength));
    t.diagnostic(
      `maxLength ${maxLength}: ${texts.length} texts (${truncated} truncated, longest ${longest} tokens): ` +
        `${mismatched.length} differ between backends`,
    );
    if (mismatched.length)
      t.diagnostic(`examples: ${JSON.stringify(mismatched.slice(0, 3).map((i) => texts[i].slice(0, 80)))}`);
    assert.ok(texts.length > 1000, "too few texts read from the transcripts");
    // Through the worker's own path the native tokenizer is the reference: no difference is allowed.
    assert.equal(mismatched.length, 0, `${mismatched.length} of ${texts.length} texts differ`);
    for (const chunks of Object.values(byBackend))
      chunks.forEach((c) => assertWorkerSemantics(c, maxLength, { bos: 0, eos: 2 }));
    if (maxLength === 100) assert.ok(truncated > 100, `only ${truncated} texts over 100 tokens`);
    else assert.ok(longest > 128, "no text past the file's own truncation length (128): the check would be blind");
  }
});
