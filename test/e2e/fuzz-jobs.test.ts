/** Fuzzes the worker's job path (issue 13): fast-check generates, from one seed, valid jobs,
 *  valid jobs with one hostile mutation (lone surrogates, NUL, huge or fractional numbers, deep
 *  nesting, `__proto__`/`constructor` keys, wrong types, missing fields, too many chunks) and
 *  random JSON, all enqueued directly with BullMQ to a worker running as a child process. The
 *  process must stay up with `/health/live` answering within 200 ms throughout; every job must
 *  end completed or failed with a reason that starts with a known kind; and every valid job must
 *  be stored, each point written exactly once. The seed is printed with every failure; rerun one
 *  with FUZZ_SEED=<seed>. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { pointId } from "../../shared/ids.js";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../../shared/job.js";
import { waitFor } from "../../kit/harness.js";
import { probeLiveness } from "../support/liveness-probe.js";
import { SHARED_REDIS_URL, workerFixture } from "../support/worker-fixture.js";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const COUNTS = { valid: 80, mutated: 170, random: 40 };
const KINDS = ["validation", "too_long", "inference", "oom", "sink", "timeout", "internal"];

const fx = workerFixture();

type Json = unknown;
type JobData = { docId: string; chunks: Array<Record<string, Json>>; metadata: Record<string, Json> } & Record<
  string,
  Json
>;

const word = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 });
// Metadata may not use the key `__proto__` at any depth (the raw-job bounds refuse it), so valid jobs never do.
const metadataArb = fc.dictionary(
  fc.string({ unit: "grapheme", maxLength: 12 }).filter((k) => k !== "__proto__"),
  fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('"__proto__"')),
  { maxKeys: 4 },
);
const validArb = fc.record({
  texts: fc.array(
    word.map((w) => `text ${w}`),
    { minLength: 1, maxLength: 3 },
  ),
  metadata: metadataArb,
  chunkMetadata: metadataArb,
});

function jobOf(
  docId: string,
  v: { texts: string[]; metadata: Record<string, Json>; chunkMetadata: Record<string, Json> },
): JobData {
  return {
    v: JOB_SCHEMA_VERSION,
    docId,
    part: 0,
    parts: 1,
    docHash: `hash-${docId}`,
    enqueuedAt: 1_700_000_000_000,
    metadata: v.metadata,
    chunks: v.texts.map((text, index) => ({ index, text, metadata: index === 0 ? v.chunkMetadata : {} })),
  };
}

const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const nested = (depth: number, array: boolean): Json => {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = array ? [v] : { n: v };
  return v;
};

/** One hostile change to a valid job. Some leave it valid (NUL, a `constructor` key): it must then complete. */
const mutationArb: fc.Arbitrary<(j: JobData) => Json> = fc.oneof(
  fc
    .tuple(lone, fc.constantFrom("docId", "docHash", "text", "hash", "metaKey", "metaValue"))
    .map(([s, f]) => (j: JobData) => {
      if (f === "docId" || f === "docHash") j[f] = `${String(j[f])}${s}`;
      else if (f === "text") j.chunks[0].text = `a${s}b`;
      else if (f === "hash") j.chunks[0].hash = `h${s}`;
      else if (f === "metaKey") j.metadata[`k${s}`] = 1;
      else j.chunks[0].metadata = { v: [`x${s}`] };
      return j;
    }),
  fc.constantFrom("docId", "text").map((f) => (j: JobData) => {
    if (f === "docId") j.docId = `${j.docId}\u0000nul`;
    else j.chunks[0].text = `nul\u0000inside`;
    return j;
  }),
  fc
    .tuple(
      fc.constantFrom("index", "part", "parts", "enqueuedAt", "v", "docChunks"),
      fc.constantFrom(1e308, -1, 2 ** 53 + 2, 1.5, -0, 1e21),
    )
    .map(([f, n]) => (j: JobData) => {
      if (f === "index" || f === "docChunks") j.chunks[0][f] = n;
      else j[f] = n;
      return j;
    }),
  fc
    .tuple(fc.integer({ min: 30, max: 3000 }), fc.boolean(), fc.boolean())
    .map(([depth, array, inChunk]) => (j: JobData) => {
      if (inChunk) j.chunks[0].metadata = { deep: nested(depth, array) };
      else j.metadata = { deep: nested(depth, array) };
      return j;
    }),
  fc.constantFrom("__proto__", "constructor", "prototype").map((k) => (j: JobData) => {
    j.metadata = JSON.parse(`{"${k}": {"polluted": true}, "ok": 1}`);
    return j;
  }),
  fc
    .tuple(
      fc.constantFrom("docId", "chunks", "text", "index", "metadata", "chunk", "docHash"),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map(([f, value]) => (j: JobData) => {
      if (f === "text" || f === "index") j.chunks[0][f] = value;
      else if (f === "chunk") j.chunks[0] = value as Record<string, Json>;
      else (j as Record<string, Json>)[f] = value;
      return j;
    }),
  fc.constantFrom("docId", "chunks", "v", "parts", "text", "index").map((f) => (j: JobData) => {
    if (f === "text" || f === "index") delete j.chunks[0][f];
    else delete j[f];
    return j;
  }),
  fc.constantFrom("blank", "duplicate", "many", "empty").map((what) => (j: JobData) => {
    if (what === "blank") j.chunks[0].text = " \t\n ";
    else if (what === "duplicate") j.chunks.push({ ...j.chunks[0] });
    else if (what === "many") j.chunks = Array.from({ length: 65 }, (_, index) => ({ index, text: `t ${index}` }));
    else j.chunks = [];
    return j;
  }),
);

interface Case {
  id: string;
  name: string;
  data: Json;
  kind: "valid" | "mutated" | "random";
}

function generate(seed: number): Case[] {
  const valid = fc.sample(validArb, { seed, numRuns: COUNTS.valid });
  const mutated = fc.sample(fc.tuple(validArb, mutationArb), { seed: seed + 1, numRuns: COUNTS.mutated });
  const random = fc.sample(fc.tuple(fc.jsonValue({ maxDepth: 4 }), fc.oneof(fc.constant(JOB_NAME), fc.string())), {
    seed: seed + 2,
    numRuns: COUNTS.random,
  });
  return [
    ...valid.map((v, i): Case => ({
      id: `valid-${i}`,
      name: JOB_NAME,
      data: jobOf(`fuzz-valid-${i}`, v),
      kind: "valid",
    })),
    ...mutated.map(([v, mutate], i): Case => ({
      id: `mutated-${i}`,
      name: JOB_NAME,
      data: mutate(jobOf(`fuzz-mutated-${i}`, v)),
      kind: "mutated",
    })),
    ...random.map(([data, name], i): Case => ({ id: `random-${i}`, name, data, kind: "random" })),
  ];
}

test(
  `fuzzed jobs: worker up and responsive, every job ends with a kind, valid jobs stored once (seed ${SEED})`,
  { timeout: 180_000 },
  async (t) => {
    const cases = generate(SEED);
    const { queue, queueName, collection } = fx.newQueue("fuzz");
    const worker = await fx.spawn({
      REDIS_URL: SHARED_REDIS_URL,
      QUEUE_NAME: queueName,
      QDRANT_URL: fx.server.url,
      COLLECTION: collection,
      MODEL_DIR: fx.modelDir,
      MAX_SEQ_LENGTH: "256",
      MAX_BATCH_TOKENS: "2048",
      CHUNK_TOKENS: "128",
      WORKER_CONCURRENCY: "16",
      SINK_RETRY_BASE_MS: "20",
    });
    const port = await worker.started;
    const live = probeLiveness(port, 25, 2000);
    const started = Date.now();
    try {
      await queue.addBulk(
        cases.map((c) => ({
          name: c.name,
          data: c.data,
          opts: { jobId: c.id, attempts: 2, backoff: { type: "fixed", delay: 50 } },
        })),
      );
      await waitFor(
        async () => {
          worker.assertAlive();
          const n = await queue.getJobCounts("completed", "failed");
          return n.completed + n.failed === cases.length;
        },
        120_000,
        "every fuzzed job to complete or fail",
      );
      const tookMs = Date.now() - started;
      await live.stop();
      assert.equal(worker.proc.exitCode, null, `the worker exited: ${worker.output().slice(-2000)}`);
      assert.deepEqual(live.failures, [], "/health/live failed during the run");
      const slowest = live.latencies.indexOf(live.max());
      assert.ok(
        live.max() < 200,
        `/health/live took up to ${Math.round(live.max())} ms, ${live.sentAt[slowest] - started} ms into the run`,
      );

      const failed = new Map((await queue.getFailed(0, -1)).map((j) => [j.id!, j.failedReason]));
      const completed = new Set((await queue.getCompleted(0, -1)).map((j) => j.id!));
      const byKind: Record<string, number> = {};
      for (const [id, reason] of failed) {
        const kind = /^([a-z_]+): /.exec(reason)?.[1];
        assert.ok(kind && KINDS.includes(kind), `job ${id} failed without a known kind: ${JSON.stringify(reason)}`);
        assert.notEqual(kind, "internal", `job ${id} hit an unexpected exception: ${reason}`);
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
      const writes = fx.server.writeCounts(collection);
      for (const c of cases.filter((x) => x.kind === "valid")) {
        assert.ok(
          completed.has(c.id),
          `valid job ${c.id} did not complete: ${failed.get(c.id)} ${JSON.stringify(c.data)}`,
        );
        const d = c.data as JobData;
        for (const ch of d.chunks)
          assert.equal(
            writes.get(pointId(d.docId, ch.index as number)),
            1,
            `${c.id} chunk ${ch.index} not written exactly once`,
          );
      }
      t.diagnostic(
        JSON.stringify({
          seed: SEED,
          jobs: cases.length,
          completed: completed.size,
          failedByKind: byKind,
          tookMs,
          livenessProbes: live.latencies.length,
          livenessMaxMs: Math.round(live.max()),
        }),
      );
      worker.proc.kill("SIGTERM");
      assert.equal((await worker.exited).code, 0, "the worker did not stop cleanly after the run");
    } catch (err) {
      await live.stop();
      (err as Error).message = `${(err as Error).message}\n  fuzz seed ${SEED}: rerun with FUZZ_SEED=${SEED}`;
      throw err;
    }
  },
);
