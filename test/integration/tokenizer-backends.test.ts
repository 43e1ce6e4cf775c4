/** Both TOKENIZER_BACKENDs (native `tokenizers`, pure-JS `@huggingface/tokenizers`) through the
 *  worker's own tokenizer threads on the generated test tokenizer: identical ids, full lengths and
 *  token strings, <s>/</s> added, truncation keeping </s>, and a tokenizer file either backend
 *  refuses failing the pool's readiness. The real XLM-R tokenizer on real transcripts is in
 *  tokenizer-parity.test.ts. */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import { suiteFixture } from "../support/suite-fixture.js";
import { assertWorkerSemantics, compareBackends } from "../support/tokenizer-backends.js";

const fx = suiteFixture({ redis: false, tmpPrefix: "tok-backends-" });

const TEXTS = [
  "",
  "Order, please.",
  "The committee postponed the vote on the education bill until next month.",
  "La diputada pidió explicaciones sobre la reforma fiscal; o conselleiro respondeu en galego.",
  "Niño, pingüino, acción, cigüeña, garçon, œuvre, Straße, naïve, façade, Ærøskøbing.",
  "Emoji and symbols: 🎉👍 ✓ → 中文 text mixed in, <s> and </s> typed by a speaker.",
  "   leading and   repeated   spaces\tand\ttabs\nnewlines   ",
  "word ".repeat(300),
];

for (const maxLength of [8, 16, 8192]) {
  test(`maxLength ${maxLength}: both backends give the same ids, full lengths and token strings`, async () => {
    const tokenizerPath = path.join(fx.modelDir, "tokenizer.json");
    const { byBackend, mismatched } = await compareBackends(tokenizerPath, TEXTS, { maxLength, eosId: 2, task: 3 });
    assert.deepEqual(mismatched, [], `texts ${mismatched.join(", ")} differ`);
    for (const chunks of Object.values(byBackend)) {
      chunks.forEach((c) => assertWorkerSemantics(c, maxLength, { bos: 0, eos: 2 }));
      assert.deepEqual([...chunks[0].ids], [0, 2]);
    }
    const truncated = byBackend.native.filter((c) => c.truncated).length;
    if (maxLength === 8192) assert.equal(truncated, 0);
    else assert.ok(truncated >= 3, `only ${truncated} texts truncated at ${maxLength}`);
  });
}

test("a tokenizer file the backend cannot read fails the pool's readiness with the library's reason", async () => {
  const bad = path.join(fx.tmp, "tokenizer.json");
  await writeFile(bad, JSON.stringify({ version: "1.0", model: { type: "NoSuchModel" } }));
  for (const backend of ["native", "js"] as const) {
    const pool = new TokenizerPool({ tokenizerPath: bad, maxLength: 16, eosId: 2, backend, threads: 1 });
    await assert.rejects(pool.ready(), (e: Error) => e.message.length > 0);
    await pool.close();
  }
});
