/** Feeds from the session's declared inputs (issue 12): int64 and int32 ids and mask, zeros for
 *  token_type_ids, XLM-R positions for position_ids (real tokens from pad id + 1, padding at the
 *  pad id), right padding with the pad id, and a refusal naming any input the worker cannot
 *  fill. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelLoadError } from "../../worker/errors.js";
import { buildFeeds, planFeeds } from "../../worker/core/model-feeds.js";
import type { TensorMeta } from "../../worker/core/output-layouts.js";

const input = (name: string, type = "int64"): TensorMeta => ({ name, type, shape: ["batch", "sequence"] });
const OUT: TensorMeta[] = [{ name: "dense_vecs", type: "float32", shape: ["batch", 8] }];
/** Rows [0 17 42 2] and [0 2], padded to 5 with pad id 1. */
const FLAT = Int32Array.from([0, 17, 42, 2, 0, 2]);
const LENGTHS = Int32Array.from([4, 2]);

const values = (d: BigInt64Array | Int32Array) => Array.from(d as ArrayLike<number | bigint>, (v) => Number(v));

test("every role, int64 and int32, with right padding and XLM-R positions", () => {
  for (const type of ["int64", "int32"]) {
    const roles = ["input_ids", "attention_mask", "token_type_ids", "position_ids"];
    const plan = planFeeds(
      roles.map((n) => input(n, type)),
      OUT,
    );
    const feeds = Object.fromEntries(buildFeeds(plan, FLAT, LENGTHS, 5, 1).map((f) => [f.name, f]));
    assert.equal(feeds.input_ids.data.constructor, type === "int64" ? BigInt64Array : Int32Array);
    assert.deepEqual(feeds.input_ids.dims, [2, 5]);
    assert.deepEqual(values(feeds.input_ids.data), [0, 17, 42, 2, 1, 0, 2, 1, 1, 1]);
    assert.deepEqual(values(feeds.attention_mask.data), [1, 1, 1, 1, 0, 1, 1, 0, 0, 0]);
    assert.deepEqual(values(feeds.token_type_ids.data), new Array(10).fill(0));
    assert.deepEqual(values(feeds.position_ids.data), [2, 3, 4, 5, 1, 2, 3, 1, 1, 1]);
  }
});

test("only the inputs the graph declares are fed, in its order", () => {
  const plan = planFeeds([input("attention_mask", "int32"), input("input_ids")], OUT);
  assert.deepEqual(plan, [
    { name: "attention_mask", type: "int32" },
    { name: "input_ids", type: "int64" },
  ]);
});

test("inputs the worker cannot fill are refused at start-up, named, with the model's inputs and outputs", () => {
  const inputs = [input("input_ids"), input("attention_mask", "float32"), input("pixel_values")];
  assert.throws(
    () => planFeeds(inputs, OUT),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /input attention_mask has element type float32; input pixel_values is not one/.test(e.message) &&
      /the worker feeds input_ids, attention_mask, token_type_ids, position_ids as int64 or int32/.test(e.message) &&
      /its outputs: dense_vecs float32 \[batch, 8\]/.test(e.message),
  );
  assert.throws(() => planFeeds([input("input_ids")], OUT), /the model has no attention_mask input/);
});
