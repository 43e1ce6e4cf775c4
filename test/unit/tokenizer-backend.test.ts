/** TOKENIZER_BACKEND's resolution: js when asked, native where it loads, auto falling back to js
 *  with the loader's reason, native that cannot load refused naming the setting. The native
 *  loader is injected, so nothing native loads in this process. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import { resolveTokenizerBackend } from "../../worker/adapters/tokenizer-backend.js";
import { ConfigError } from "../../worker/errors.js";

const loads = async () => ({});
const fails = async () => {
  throw new Error("Cannot find native binding. npm has a bug related to optional dependencies\nmore lines");
};

test("TOKENIZER_BACKEND defaults to auto and accepts only auto, native, js", () => {
  assert.equal(parseConfig({}).TOKENIZER_BACKEND, "auto");
  assert.equal(parseConfig({ TOKENIZER_BACKEND: "js" }).TOKENIZER_BACKEND, "js");
  assert.throws(
    () => parseConfig({ TOKENIZER_BACKEND: "rust" }),
    (e) => e instanceof ConfigError && e.problems.some((p) => p.startsWith("TOKENIZER_BACKEND:")),
  );
});

test("js never tries the native package; auto and native take it where it loads", async () => {
  let tried = 0;
  const counting = async () => void tried++;
  assert.deepEqual(await resolveTokenizerBackend("js", counting), { backend: "js", reason: "TOKENIZER_BACKEND=js" });
  assert.equal(tried, 0);
  assert.equal((await resolveTokenizerBackend("auto", loads)).backend, "native");
  assert.equal((await resolveTokenizerBackend("native", loads)).backend, "native");
});

test("auto falls back to js and says why, in one line", async () => {
  const r = await resolveTokenizerBackend("auto", fails);
  assert.equal(r.backend, "js");
  assert.match(r.reason, /^TOKENIZER_BACKEND=auto: the native tokenizers package cannot load \(Cannot find native/);
  assert.ok(!r.reason.includes("\n"));
});

test("native that cannot load fails naming the setting, the cause and the way out", async () => {
  await assert.rejects(resolveTokenizerBackend("native", fails), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.problems[0], /^TOKENIZER_BACKEND: native, but the native tokenizers package cannot load/);
    assert.match(e.problems[0], /Cannot find native binding/);
    assert.match(e.problems[0], /TOKENIZER_BACKEND=auto or js/);
    return true;
  });
});
