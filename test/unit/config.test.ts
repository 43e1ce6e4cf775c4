/** The configuration schema: defaults, every problem reported at once, cross-field rules
 *  naming both keys, boolean flags parsed as words. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeConfig, parseConfig } from "../../shared/config.js";
import { ConfigError } from "../../worker/errors.js";

test("defaults parse from an empty environment", () => {
  const c = parseConfig({});
  assert.equal(c.MAX_SEQ_LENGTH, 2048, "cpu default");
  assert.deepEqual(c.OUTPUTS, ["dense", "sparse"]);
  assert.equal(c.EXECUTION_PROVIDER, "cpu");
  assert.equal(c.STORE_TEXT, true);
  assert.equal(c.QDRANT_URL, undefined);
});

test("every problem is reported at once", () => {
  try {
    parseConfig({ MAX_BATCH_SIZE: "zero", EXECUTION_PROVIDER: "tpu", OUTPUTS: "dense,bogus", REDIS_URL: "not a url" });
    assert.fail("should throw");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const keys = err.problems.map((p) => p.split(":")[0]);
    for (const k of ["MAX_BATCH_SIZE", "EXECUTION_PROVIDER", "OUTPUTS", "REDIS_URL"])
      assert.ok(keys.includes(k), `${k} missing in ${err.problems.join(" | ")}`);
  }
});

test("cross-field: the token budget must hold one max-length chunk; the message names both keys", () => {
  assert.throws(
    () => parseConfig({ MAX_BATCH_TOKENS: "4096", MAX_SEQ_LENGTH: "8192" }),
    (err: ConfigError) =>
      err.problems.some((p) => p.includes("MAX_BATCH_TOKENS=4096") && p.includes("MAX_SEQ_LENGTH=8192")),
  );
  assert.doesNotThrow(() => parseConfig({ MAX_BATCH_TOKENS: "4096", MAX_SEQ_LENGTH: "4096" }));
});

test("cross-field: the attention budget must hold one max-length chunk; the message names both keys", () => {
  assert.throws(
    () => parseConfig({ MAX_BATCH_ATTENTION: "1000000", MAX_SEQ_LENGTH: "8192" }),
    (err: ConfigError) =>
      err.problems.some((p) => p.includes("MAX_BATCH_ATTENTION=1000000") && p.includes("MAX_SEQ_LENGTH=8192")),
  );
  assert.doesNotThrow(() =>
    parseConfig({ MAX_BATCH_ATTENTION: "1000000", MAX_SEQ_LENGTH: "1000", CHUNK_TOKENS: "512" }),
  );
  const d = parseConfig({});
  assert.equal(d.MAX_BATCH_ATTENTION, 2048 * 2048, "cpu default: one row of the default 2,048 tokens");
  assert.equal(d.attentionFromDevice, false);
  assert.equal(parseConfig({ EXECUTION_PROVIDER: "cuda" }).attentionFromDevice, true);
  assert.equal(parseConfig({ EXECUTION_PROVIDER: "cuda", MAX_BATCH_ATTENTION: "1e8" }).attentionFromDevice, false);
});

test("batch defaults depend on the provider: smaller on cpu, cuda's unchanged", () => {
  const cpu = parseConfig({});
  assert.deepEqual([cpu.MAX_SEQ_LENGTH, cpu.MAX_BATCH_TOKENS, cpu.MAX_BATCH_ATTENTION], [2048, 4096, 2048 ** 2]);
  assert.equal(cpu.QUERY_FILL_TOKENS, 1024, "derived from the cpu token budget");
  const cuda = parseConfig({ EXECUTION_PROVIDER: "cuda" });
  assert.deepEqual([cuda.MAX_SEQ_LENGTH, cuda.MAX_BATCH_TOKENS, cuda.MAX_BATCH_ATTENTION], [8192, 16384, 8192 ** 2]);
  assert.equal(cuda.QUERY_FILL_TOKENS, 4096);
});

test("on cpu the token and attention defaults follow an explicit MAX_SEQ_LENGTH, padded", () => {
  const long = parseConfig({ MAX_SEQ_LENGTH: "8192" });
  assert.deepEqual([long.MAX_BATCH_TOKENS, long.MAX_BATCH_ATTENTION], [8192, 8192 ** 2]);
  const short = parseConfig({ MAX_SEQ_LENGTH: "1000", PAD_MULTIPLE: "8", CHUNK_TOKENS: "512" });
  assert.deepEqual([short.MAX_BATCH_TOKENS, short.MAX_BATCH_ATTENTION], [4096, 1000 ** 2]);
  const odd = parseConfig({ MAX_SEQ_LENGTH: "2049", PAD_MULTIPLE: "8" });
  assert.deepEqual([odd.MAX_BATCH_TOKENS, odd.MAX_BATCH_ATTENTION], [4096, 2056 ** 2]);
  const cuda = parseConfig({ EXECUTION_PROVIDER: "cuda", MAX_SEQ_LENGTH: "512", CHUNK_TOKENS: "256" });
  assert.deepEqual([cuda.MAX_BATCH_TOKENS, cuda.MAX_BATCH_ATTENTION], [16384, 8192 ** 2], "cuda ignores it");
});

test("explicit batch settings win over every provider default", () => {
  const env = { MAX_SEQ_LENGTH: "4096", MAX_BATCH_TOKENS: "32768", MAX_BATCH_ATTENTION: "50000000" };
  for (const provider of ["cpu", "cuda"]) {
    const c = parseConfig({ ...env, EXECUTION_PROVIDER: provider });
    assert.deepEqual([c.MAX_SEQ_LENGTH, c.MAX_BATCH_TOKENS, c.MAX_BATCH_ATTENTION], [4096, 32768, 50_000_000]);
  }
});

test("invalid combinations with defaults are still refused, naming the settings", () => {
  // An explicit budget below the cpu default's longest row.
  assert.throws(
    () => parseConfig({ MAX_BATCH_TOKENS: "1024" }),
    (err: ConfigError) =>
      err.problems.some((p) => p.includes("MAX_BATCH_TOKENS=1024") && p.includes("MAX_SEQ_LENGTH=2048")),
  );
  assert.throws(
    () => parseConfig({ MAX_BATCH_ATTENTION: "1000000" }),
    (err: ConfigError) =>
      err.problems.some((p) => p.includes("MAX_BATCH_ATTENTION=1000000") && p.includes("MAX_SEQ_LENGTH=2048")),
  );
  // A chunk size past the cpu default's MAX_SEQ_LENGTH.
  assert.throws(
    () => parseConfig({ CHUNK_TOKENS: "4096" }),
    (err: ConfigError) =>
      err.problems.some((p) => p.includes("CHUNK_TOKENS=4096") && p.includes("MAX_SEQ_LENGTH=2048")),
  );
  assert.doesNotThrow(() => parseConfig({ CHUNK_TOKENS: "4096", EXECUTION_PROVIDER: "cuda" }));
  // cuda's fixed token default cannot hold an explicit longer sequence.
  assert.throws(
    () => parseConfig({ EXECUTION_PROVIDER: "cuda", MAX_SEQ_LENGTH: "32768", MAX_BATCH_ATTENTION: String(32768 ** 2) }),
    (err: ConfigError) =>
      err.problems.some((p) => p.includes("MAX_BATCH_TOKENS=16384") && p.includes("MAX_SEQ_LENGTH=32768")),
  );
});

test("the configuration page shows the provider-dependent defaults", () => {
  const rows = Object.fromEntries(describeConfig().map((r) => [r.name, r.default]));
  assert.equal(rows.MAX_SEQ_LENGTH, "2048 (cpu), 8192 (cuda)");
  assert.match(rows.MAX_BATCH_TOKENS, /^cpu: max\(4096, padded MAX_SEQ_LENGTH\); cuda: 16384$/);
  assert.match(rows.MAX_BATCH_ATTENTION, /^cpu: padded MAX_SEQ_LENGTH²; cuda: from the device's memory/);
});

test("flags are words: 'false' is false", () => {
  assert.equal(parseConfig({ STORE_TEXT: "false" }).STORE_TEXT, false);
  assert.equal(parseConfig({ TRUNCATE: "0" }).TRUNCATE, false);
  assert.throws(() => parseConfig({ TRUNCATE: "maybe" }), ConfigError);
});

test("secrets never appear in error messages", () => {
  try {
    parseConfig({ QDRANT_API_KEY: "s3cret-key" });
    assert.fail("should throw: key without URL");
  } catch (err) {
    assert.ok(!(err as Error).message.includes("s3cret-key"));
  }
});

test("every variable is documented with a description", () => {
  for (const row of describeConfig()) assert.ok(row.description.length > 10, `${row.name} lacks a description`);
});

test("MODEL_OUTPUT_NAMES: kind=name pairs, any subset; unknown kinds, repeats and bare names are refused", () => {
  assert.equal(parseConfig({}).MODEL_OUTPUT_NAMES, undefined);
  assert.deepEqual(parseConfig({ MODEL_OUTPUT_NAMES: " dense=emb , colbert=multi" }).MODEL_OUTPUT_NAMES, {
    dense: "emb",
    colbert: "multi",
  });
  for (const bad of ["dense=a,dense=b", "lexical=a", "dense", "dense=a=b"]) {
    assert.throws(
      () => parseConfig({ MODEL_OUTPUT_NAMES: bad }),
      (err: ConfigError) =>
        err.problems.some((p) => p.startsWith("MODEL_OUTPUT_NAMES:") && p.includes("<kind>=<output name>")),
      bad,
    );
  }
});

test("Redis Cluster: a {hash tag} prefix is accepted; cluster nodes without one are refused naming both keys", () => {
  assert.equal(parseConfig({ QUEUE_PREFIX: "{bull}" }).QUEUE_PREFIX, "{bull}");
  assert.equal(parseConfig({ QUEUE_PREFIX: "app{emb}" }).QUEUE_PREFIX, "app{emb}");
  const nodes = "10.0.0.1:6379, redis-1.svc:7000";
  assert.equal(parseConfig({ REDIS_CLUSTER_NODES: nodes, QUEUE_PREFIX: "{bull}" }).REDIS_CLUSTER_NODES, nodes);
  const problems = (env: Record<string, string>) => {
    try {
      parseConfig(env);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  const refused = problems({ REDIS_CLUSTER_NODES: nodes });
  assert.equal(refused.length, 1, refused.join(" | "));
  assert.match(refused[0], /^QUEUE_PREFIX: QUEUE_PREFIX=bull has no \{hash tag\} but REDIS_CLUSTER_NODES is set/);
  assert.match(refused[0], /QUEUE_PREFIX=\{bull\}/);
  for (const bad of ["{}", "{a}{b}", "a}b{", "a b"]) assert.match(problems({ QUEUE_PREFIX: bad })[0], /^QUEUE_PREFIX:/);
  for (const bad of ["10.0.0.1", "host:port", "a:1,,b:2", "redis://a:1"])
    assert.match(problems({ REDIS_CLUSTER_NODES: bad, QUEUE_PREFIX: "{q}" })[0], /^REDIS_CLUSTER_NODES: /, bad);
});
