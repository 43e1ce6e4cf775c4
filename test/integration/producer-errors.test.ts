/** The producer's expected failures share one base (issue 14): a caller tells an expected failure
 *  from a bug with one `instanceof ProducerError`, and each carries its kind and its class name. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BackfillError } from "../../producer/backfill.js";
import { CheckpointError } from "../../producer/backfill/checkpoint.js";
import { ChunkerOptionsError, TokenCountError } from "../../producer/chunker.js";
import { StrictModeError } from "../../producer/enqueue.js";
import { ProducerError } from "../../producer/producer-errors.js";
import { NotRegularFileError, UnreadableFileError } from "../../producer/readers/reader-errors.js";
import { TokenizerFileError } from "../../producer/token-counter.js";

test("every producer error is a ProducerError with its kind and class name", () => {
  const cases: Array<[ProducerError, string]> = [
    [new ChunkerOptionsError("overlapTokens", -1, "must be >= 0"), "options"],
    [new TokenCountError("some text", Number.NaN), "token_count"],
    [new TokenizerFileError("cannot read tokenizer /m/tokenizer.json: ENOENT"), "model"],
    [new StrictModeError({ file: "a.jsonl", line: 3, reason: "empty text" }), "strict"],
    [new CheckpointError("checkpoint in file x is not JSON"), "checkpoint"],
    [new BackfillError("low-water marks must be below high-water marks"), "options"],
    [new NotRegularFileError("f.txt", "FIFO"), "input"],
    [new UnreadableFileError("f.txt", Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" })), "input"],
  ];
  for (const [err, kind] of cases) {
    assert.ok(err instanceof ProducerError && err instanceof Error, err.constructor.name);
    assert.equal(err.kind, kind, err.constructor.name);
    assert.equal(err.name, err.constructor.name);
  }
  const strict = new StrictModeError({ file: "a.jsonl", line: 3, reason: "empty text" });
  assert.equal(strict.message, "a.jsonl:3: empty text (stopping: strict mode)");
  assert.equal(
    new NotRegularFileError("f.txt", "FIFO").message,
    "not a regular file: FIFO; only regular files are read",
  );
});
