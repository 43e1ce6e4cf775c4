/** The producer library against a real Redis: one job per document (several for long
 *  documents, each bounded), deterministic job ids so a re-run adds nothing, skipped records
 *  counted by reason, dry runs that touch no queue, and strict mode that stops. */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import { Queue } from "bullmq";
import { embedJobSchema } from "../../shared/job.js";
import { redisConnection } from "../../shared/redis.js";
import type { ReadEvent, SourceDocument } from "../../producer/document.js";
import { enqueueDocuments, StrictModeError, type EnqueueOptions } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { testModel, uniqueQueue } from "../../kit/harness.js";

const connection = redisConnection(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const queues: Queue[] = [];
let opts: EnqueueOptions;

before(async () => {
  const dir = (await testModel()).dir;
  opts = {
    countTokens: loadTokenCounter(path.join(dir, "tokenizer.json")),
    chunkTokens: 32,
    overlapTokens: 4,
    maxChunksPerJob: 5,
    attempts: 3,
    backoffMs: 100,
    removeOnComplete: 100,
    removeOnFail: 100,
  };
});

after(async () => {
  for (const q of queues) {
    await q.obliterate({ force: true });
    await q.close();
  }
  await connection.quit();
});

function newQueue(): Queue {
  const q = new Queue(uniqueQueue("enq"), { connection });
  queues.push(q);
  return q;
}

const doc = (id: string, words: number): SourceDocument => ({
  id,
  kind: "text",
  metadata: { lang: "en" },
  source: { file: "mem" },
  segments: [
    { text: Array.from({ length: words }, (_, i) => `Sentence number ${i} talks about the meeting.`).join(" ") },
  ],
});

test("long documents span several bounded jobs; every job passes the worker's schema", async () => {
  const q = newQueue();
  const s = await enqueueDocuments(q, [doc("short", 2), doc("long", 120)], opts);
  const jobs = await q.getJobs(["waiting"]);
  assert.equal(s.documents, 2);
  assert.equal(jobs.length, s.jobs);
  const long = jobs.filter((j) => j.data.docId === "long").sort((a, b) => a.data.part - b.data.part);
  assert.ok(long.length > 1, "a long document should span several jobs");
  const indexes = long.flatMap((j) => j.data.chunks.map((c: { index: number }) => c.index));
  assert.deepEqual(indexes, [...indexes.keys()], "chunk indexes must run 0..n-1 across parts");
  for (const j of jobs) {
    assert.ok(j.data.chunks.length <= opts.maxChunksPerJob);
    assert.ok(embedJobSchema.safeParse(j.data).success);
    assert.equal(j.data.parts, j.data.docId === "long" ? long.length : 1);
    assert.equal(j.opts.attempts, 3);
  }
});

test("re-running the producer adds no duplicate jobs; changed content gets new ids", async () => {
  const q = newQueue();
  const first = await enqueueDocuments(q, [doc("a", 3), doc("b", 3)], opts);
  await enqueueDocuments(q, [doc("a", 3), doc("b", 3)], opts);
  assert.equal(await q.count(), first.jobs);
  await enqueueDocuments(q, [doc("a", 4)], opts);
  assert.ok((await q.count()) > first.jobs, "changed document should be enqueued again");
});

test("skipped records are counted by reason and never stop the run; strict mode stops", async () => {
  const q = newQueue();
  const events: ReadEvent[] = [
    { kind: "skipped", file: "in.jsonl", line: 3, reason: "line 3: invalid JSON: Unexpected token" },
    { kind: "document", doc: doc("ok", 2) },
    { kind: "document", doc: { ...doc("blank", 1), segments: [{ text: "   " }] } },
    { kind: "skipped", file: "in.jsonl", line: 9, reason: "line 9: invalid JSON: Unexpected end" },
    { kind: "document", doc: doc("x".repeat(1025), 2) },
  ];
  const s = await enqueueDocuments(q, events, opts);
  assert.equal(s.documents, 1);
  assert.equal(s.skipped, 4);
  assert.equal(s.skippedByReason["document id is empty or longer than 1024 characters"], 1);
  assert.equal(s.skippedByReason["invalid JSON"], 2);
  assert.equal(s.skippedSamples[0].line, 3);
  await assert.rejects(enqueueDocuments(q, events, { ...opts, strict: true }), StrictModeError);
});

test("dry run chunks and counts without touching a queue", async () => {
  const s = await enqueueDocuments(undefined, [doc("x", 30)], { ...opts, dryRun: true });
  assert.ok(s.chunks > 1 && s.tokens > 0 && s.jobs > 0);
});

test("metadata of unknown types: converted by rule (Date, bigint, Map, Set, NaN) or the document is skipped naming the path", async () => {
  const q = newQueue();
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  class Custom {}
  const withMeta = (id: string, metadata: Record<string, unknown>) =>
    ({ ...doc(id, 2), metadata }) as unknown as SourceDocument;
  const s = await enqueueDocuments(
    q,
    [
      withMeta("converted", {
        when: new Date("2024-05-01T10:00:00Z"),
        big: 12345678901234567890n,
        tags: new Set(["a", "b"]),
        m: new Map([["k", 1]]),
        nan: NaN,
        gone: undefined,
        nested: { list: [1, undefined, "x"] },
      }),
      withMeta("fn", { callback: () => 1 }),
      withMeta("sym", { nested: { s: Symbol("x") } }),
      withMeta("cycle", cyclic),
      withMeta("class", { obj: new Custom() }),
      withMeta("fine", { lang: "en" }),
    ],
    opts,
  );
  assert.equal(s.documents, 2);
  assert.equal(s.skipped, 4);
  const reasons = s.skippedSamples.map((r) => r.reason);
  assert.ok(
    reasons.some((r) => /"fn": unsupported metadata: metadata\.callback is a function/.test(r)),
    reasons.join("\n"),
  );
  assert.ok(reasons.some((r) => /"sym".*metadata\.nested\.s is a symbol/.test(r)));
  assert.ok(reasons.some((r) => /"cycle".*metadata\.self refers back to itself/.test(r)));
  assert.ok(reasons.some((r) => /"class".*metadata\.obj is a Custom object/.test(r)));
  assert.deepEqual(s.skippedByReason, { "unsupported metadata": 4 });
  const job = (await q.getJobs(["waiting"])).find((j) => j.data.docId === "converted")!;
  assert.ok(embedJobSchema.safeParse(job.data).success, "converted metadata must pass the worker's schema");
  assert.deepEqual(
    { ...job.data.metadata, source_file: undefined, kind: undefined },
    {
      when: "2024-05-01T10:00:00.000Z",
      big: "12345678901234567890",
      tags: ["a", "b"],
      m: { k: 1 },
      nan: null,
      nested: { list: [1, null, "x"] },
      source_file: undefined,
      kind: undefined,
    },
  );
});
