/** Hostile job data refused by what the worker runs before any work (issue 13): strings that are
 *  not well-formed Unicode in every field that reaches ids, logs or the sink, each named in the
 *  reason; `__proto__` metadata keys; and the cheap bounds on the raw data (chunk count, text
 *  bytes, metadata depth and size), which must answer in milliseconds where the schema parse
 *  takes seconds or overflows the stack. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import { JobLimitError, ValidationError } from "../../worker/errors.js";
import { checkJobBounds } from "../../shared/job-bounds.js";
import { embedJobSchema, JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { parseJobData } from "../../worker/adapters/queue-consumer.js";

const cfg = parseConfig({});
const LONE = "\ud800";

const validJob = () => ({
  v: JOB_SCHEMA_VERSION,
  docId: "doc-1",
  part: 0,
  parts: 1,
  docHash: "h1",
  enqueuedAt: 1_700_000_000_000,
  metadata: { title: "Council meeting", tags: ["a", "b"], nested: { level: 2 } },
  chunks: [
    { index: 0, text: "first chunk", metadata: { start: 0.5 }, hash: "c0" },
    { index: 1, text: "second chunk", metadata: {} },
  ],
});

function refusal(data: unknown): ValidationError {
  try {
    parseJobData(JOB_NAME, data, cfg);
  } catch (err) {
    assert.ok(
      err instanceof ValidationError,
      `expected a ValidationError, got ${(err as Error)?.name}: ${(err as Error)?.message}`,
    );
    return err;
  }
  assert.fail("the job was accepted");
}

test("a job the producer would write passes", () => {
  const d = parseJobData(JOB_NAME, validJob(), cfg);
  assert.equal(d.chunks.length, 2);
  // The producer's metadata rule allows 32 levels; the worker's default allows 64.
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 31; i++) deep = { n: deep };
  assert.doesNotThrow(() => parseJobData(JOB_NAME, { ...validJob(), metadata: deep }, cfg));
  // 64 chunks of about 2 KB (the producer's default job, 512-token chunks) and NUL are fine.
  const chunks = Array.from({ length: 64 }, (_, index) => ({ index, text: `chunk\u0000${"word ".repeat(400)}` }));
  assert.doesNotThrow(() => parseJobData(JOB_NAME, { ...validJob(), chunks }, cfg));
});

test("a lone UTF-16 surrogate is refused in every string that reaches ids, logs or the sink, naming the field", () => {
  const cases: Array<[string, (j: ReturnType<typeof validJob>) => unknown, RegExp]> = [
    ["docId", (j) => ({ ...j, docId: `bad${LONE}` }), /^docId: not well-formed Unicode/],
    ["docHash", (j) => ({ ...j, docHash: `h${LONE}` }), /^docHash: not well-formed Unicode/],
    [
      "chunk text",
      (j) => ({ ...j, chunks: [{ ...j.chunks[0], text: `hi ${LONE}` }] }),
      /^chunks\.0\.text: not well-formed Unicode/,
    ],
    [
      "chunk hash",
      (j) => ({ ...j, chunks: [{ ...j.chunks[0], hash: `x${LONE}` }] }),
      /^chunks\.0\.hash: not well-formed Unicode/,
    ],
    [
      "metadata value",
      (j) => ({ ...j, metadata: { a: { b: [`v${LONE}`] } } }),
      /^metadata\.a\.b\.0: not well-formed Unicode/,
    ],
    [
      "metadata key",
      (j) => ({ ...j, metadata: { [`k${LONE}`]: 1 } }),
      /^metadata\."k\\ud800": Invalid key in record: not well-formed Unicode/,
    ],
    [
      "chunk metadata",
      (j) => ({ ...j, chunks: [{ ...j.chunks[0], metadata: { s: `\udc00` } }] }),
      /^chunks\.0\.metadata\.s: not well-formed/,
    ],
  ];
  for (const [what, mutate, want] of cases) {
    const err = refusal(mutate(validJob()));
    assert.match(err.message, want, what);
    assert.equal(err.kind, "validation");
    assert.ok(
      (err.message as unknown as { isWellFormed(): boolean }).isWellFormed(),
      `${what}: the reason itself must be well-formed`,
    );
  }
  // A well-formed pair (an emoji) is fine.
  assert.doesNotThrow(() => parseJobData(JOB_NAME, { ...validJob(), docId: "doc-\ud83d\ude00" }, cfg));
});

test("a __proto__ metadata key is refused (the schema would drop it silently, a spread would copy it)", () => {
  const data = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}');
  const err = refusal({ ...validJob(), metadata: data });
  assert.match(err.message, /^metadata has the key "__proto__"/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const inChunk = refusal({
    ...validJob(),
    chunks: [{ index: 0, text: "x", metadata: JSON.parse('{"a": {"__proto__": 1}}') }],
  });
  assert.match(inChunk.message, /^chunks\.0\.metadata\.a has the key "__proto__"/);
});

test("an unknown job name fails validation", () => {
  assert.throws(() => parseJobData("other", validJob(), cfg), /unknown job name "other"/);
});

test("a job of a million chunks is refused on its raw data in milliseconds; the schema would take seconds", (t) => {
  const chunks = Array.from({ length: 1_000_000 }, (_, index) => ({ index, text: "hi" }));
  const data = { ...validJob(), chunks };
  const started = performance.now();
  const err = refusal(data);
  const ms = performance.now() - started;
  assert.ok(err instanceof JobLimitError);
  assert.equal(err.setting, "MAX_CHUNKS_PER_JOB");
  assert.match(
    err.message,
    /^job has 1000000 chunks, more than MAX_CHUNKS_PER_JOB=64; enqueue long documents as several jobs/,
  );
  assert.ok(ms < 50, `refusal took ${ms.toFixed(1)} ms`);
  const s0 = performance.now();
  embedJobSchema.safeParse(data);
  t.diagnostic(
    `1,000,000 chunks: bounds check ${ms.toFixed(2)} ms, full schema parse ${Math.round(performance.now() - s0)} ms`,
  );
});

test("chunk texts over MAX_JOB_BYTES are refused, counting UTF-8 bytes", () => {
  const limits = { ...cfg, MAX_JOB_BYTES: 1024 };
  // 400 characters of 3 bytes each: 1,200 bytes though only 400 UTF-16 units.
  const err = (() => {
    try {
      checkJobBounds({ chunks: [{ text: "\u20ac".repeat(200) }, { text: "\u20ac".repeat(200) }] }, limits);
    } catch (e) {
      return e as JobLimitError;
    }
    assert.fail("accepted");
  })();
  assert.equal(err.setting, "MAX_JOB_BYTES");
  assert.match(err.message, /^job's chunk texts reach 1200 bytes \(UTF-8\) at chunk 1, more than MAX_JOB_BYTES=1024$/);
  assert.doesNotThrow(() => checkJobBounds({ chunks: [{ text: "\u20ac".repeat(300) }] }, limits));
});

test("metadata nested 10,000 levels deep is refused at once with a kind; the schema alone overflows the stack", () => {
  const n = 10_000;
  const deepObject = JSON.parse(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`);
  const deepArray = JSON.parse(`${"[".repeat(n)}${"]".repeat(n)}`);
  for (const [where, data] of [
    ["metadata", { ...validJob(), metadata: deepObject }],
    [
      "chunks.1.metadata",
      { ...validJob(), chunks: [validJob().chunks[0], { index: 1, text: "x", metadata: { list: deepArray } }] },
    ],
  ] as const) {
    const started = performance.now();
    const err = refusal(data);
    assert.ok(performance.now() - started < 50);
    assert.ok(err instanceof JobLimitError);
    assert.equal(err.setting, "MAX_METADATA_DEPTH");
    assert.ok(
      err.message.startsWith(`${where} is nested more than MAX_METADATA_DEPTH=64 levels deep (at ${where}.`),
      err.message,
    );
    assert.ok(err.message.length < 300);
  }
  assert.throws(() => embedJobSchema.safeParse({ ...validJob(), metadata: deepObject }), RangeError);
  // Exactly at the limit passes the bounds (64 levels, the metadata object being level 1).
  let atLimit: unknown = 1;
  for (let i = 0; i < 64; i++) atLimit = { a: atLimit };
  assert.doesNotThrow(() => checkJobBounds({ metadata: atLimit }, cfg));
  assert.throws(() => checkJobBounds({ metadata: { a: atLimit } }, cfg), /MAX_METADATA_DEPTH=64/);
});

test("metadata over MAX_METADATA_BYTES is refused, a wide object before its keys are all visited", () => {
  const wide: Record<string, number> = {};
  for (let i = 0; i < 500_000; i++) wide[`key${i}`] = i;
  const started = performance.now();
  const err = refusal({ ...validJob(), metadata: wide });
  assert.ok(performance.now() - started < 500, `took ${performance.now() - started} ms`);
  assert.ok(err instanceof JobLimitError);
  assert.equal(err.setting, "MAX_METADATA_BYTES");
  assert.match(
    err.message,
    /^the job's metadata passes \d+ bytes \(as JSON, estimated\) at metadata, more than MAX_METADATA_BYTES=1048576$/,
  );
  // The bound is per job: 64 chunks of 20 KB metadata each pass it together.
  const chunks = Array.from({ length: 64 }, (_, index) => ({
    index,
    text: "x",
    metadata: { blob: "y".repeat(20_000) },
  }));
  assert.throws(
    () => checkJobBounds({ chunks }, cfg),
    (e: JobLimitError) => e.setting === "MAX_METADATA_BYTES" && /at chunks\.5\d\.metadata\.blob/.test(e.message),
  );
});
