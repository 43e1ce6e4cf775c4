/** Packed jobs without Redis: the producer's packer keeps every bound and makes the same packs and
 *  job ids from the same documents; the worker's parse and bounds fail a bad document alone and a
 *  pack over a bound as a whole; `decidePack` splits off what failed for its own reason and
 *  retries the pack for what did not. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseConfig } from "../../shared/config.js";
import { JobLimitError } from "../../shared/errors.js";
import { jobId } from "../../shared/ids.js";
import { checkPackBounds } from "../../shared/job-bounds.js";
import { placementDocId, shardFor, type Placeable } from "../../shared/queue-shards.js";
import type { EmbedJobData } from "../../shared/job.js";
import {
  jobChunkCount,
  jobDocIds,
  packedDocSchema,
  packJobSchema,
  singleJobFromPackedDoc,
  type PackJobData,
} from "../../shared/pack.js";
import type { Chunk, SourceDocument } from "../../producer/document.js";
import { enqueueOptionsFrom, jobsForDocument, type BulkJob } from "../../producer/enqueue.js";
import { JobPacker, packBoundsFrom, PackOptionsError, type PackBounds } from "../../producer/packer.js";
import { describeFailedJob } from "../../producer/requeue-failed.js";
import { decidePack } from "../../worker/core/pack-outcome.js";
import { parsePackData } from "../../worker/adapters/pack-consumer.js";
import { SinkError, ShutdownError, ValidationError } from "../../worker/errors.js";
import type { Job } from "bullmq";

const cfg = parseConfig({ MAX_CHUNKS_PER_JOB: "8" });
const opts = enqueueOptionsFrom(cfg, (t) => t.split(" ").length);

function docJobs(id: string, nChunks: number, textChars = 20, version = 1000): Array<BulkJob<EmbedJobData>> {
  const doc: SourceDocument = { id, kind: "text", segments: [], metadata: { n: nChunks }, source: { file: "f" } };
  const chunks: Chunk[] = Array.from({ length: nChunks }, (_, index) => ({
    index,
    text: `${id} ${index} ${"x".repeat(textChars)}`,
    tokens: 3,
    metadata: {},
  }));
  return jobsForDocument(doc, chunks, opts, version);
}

function packAll(bounds: PackBounds, docs: Array<Array<BulkJob<EmbedJobData>>>): BulkJob[] {
  const p = new JobPacker(bounds);
  const out = docs.flatMap((d) => p.add(d));
  return [...out, ...p.flush()];
}

const isPack = (j: BulkJob): j is BulkJob<PackJobData> => (j.data as { kind?: string }).kind === "pack";

test("packs keep every bound, lose no document, pass the worker's bounds and schemas, and are deterministic", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ chunks: fc.integer({ min: 1, max: 12 }), chars: fc.integer({ min: 1, max: 400 }) }), {
        minLength: 1,
        maxLength: 60,
      }),
      fc.record({
        maxDocs: fc.integer({ min: 1, max: 8 }),
        maxChunks: fc.integer({ min: 1, max: 8 }),
        maxBytes: fc.integer({ min: 200, max: 4000 }),
      }),
      (specs, bounds) => {
        const docs = specs.map((s, i) => docJobs(`d${i}`, s.chunks, s.chars));
        const jobs = packAll(bounds, docs);
        const seen: string[] = [];
        for (const j of jobs) {
          if (!isPack(j)) {
            seen.push((j.data as EmbedJobData).docId);
            continue;
          }
          const d = j.data.docs;
          assert.ok(d.length >= 2 && d.length <= bounds.maxDocs);
          assert.ok(jobChunkCount(j.data) <= bounds.maxChunks);
          assert.ok(d.reduce((n, x) => n + Buffer.byteLength(JSON.stringify(x)), 0) <= bounds.maxBytes);
          assert.equal(checkPackBounds(j.data, cfg).size, 0);
          assert.ok(packJobSchema.safeParse(j.data).success);
          for (const x of d) assert.ok(packedDocSchema.safeParse(x).success);
          seen.push(...jobDocIds(j.data));
        }
        // Every document exactly once (multi-part documents once per part).
        const expected = docs.flatMap((d) => d.map((j) => j.data.docId));
        assert.deepEqual([...seen].sort(), [...expected].sort());
        const again = packAll(
          bounds,
          specs.map((s, i) => docJobs(`d${i}`, s.chunks, s.chars)),
        );
        assert.deepEqual(
          again.map((j) => j.opts.jobId),
          jobs.map((j) => j.opts.jobId),
        );
      },
    ),
    { numRuns: 200 },
  );
});

test("a pack's job id follows its documents' ids and content; a pack of one keeps the single job id", () => {
  const bounds = packBoundsFrom(cfg);
  const a = packAll(bounds, [docJobs("a", 1), docJobs("b", 1), docJobs("c", 1)]);
  const laterVersion = packAll(bounds, [
    docJobs("a", 1, 20, 2000),
    docJobs("b", 1, 20, 2000),
    docJobs("c", 1, 20, 2000),
  ]);
  const edited = packAll(bounds, [docJobs("a", 1), docJobs("b", 1, 21), docJobs("c", 1)]);
  assert.equal(a.length, 1);
  assert.match(a[0].opts.jobId!, /^pack-3-[0-9a-f]{24}$/);
  assert.equal(laterVersion[0].opts.jobId, a[0].opts.jobId, "same content re-enqueued: same pack id (dedupes)");
  assert.notEqual(edited[0].opts.jobId, a[0].opts.jobId, "edited content: a new pack id");
  const one = packAll(bounds, [docJobs("solo", 2)]);
  assert.equal(one[0].opts.jobId, docJobs("solo", 2)[0].opts.jobId);
  assert.equal((one[0].data as EmbedJobData).docId, "solo");
  // A document over MAX_CHUNKS_PER_JOB spans several jobs and is never packed.
  const long = packAll(bounds, [docJobs("x", 1), docJobs("long", 20), docJobs("y", 1)]);
  assert.deepEqual(
    long.filter((j) => !isPack(j)).map((j) => (j.data as EmbedJobData).part),
    [0, 1, 2],
  );
  assert.deepEqual(
    long.filter(isPack).flatMap((j) => jobDocIds(j.data)),
    ["x", "y"],
  );
  assert.equal(a[0].opts.attempts, opts.attempts);
});

test("pack bounds: defaults from the configuration, refusals name the setting", () => {
  assert.deepEqual(packBoundsFrom(cfg), { maxDocs: 8, maxChunks: 8, maxBytes: 128 * 1024 });
  const small = parseConfig({ MAX_METADATA_BYTES: "8192" });
  assert.equal(packBoundsFrom(small).maxBytes, 1024);
  assert.throws(() => packBoundsFrom(cfg, { maxChunks: 9 }), /--pack-max-chunks=9 is more than MAX_CHUNKS_PER_JOB=8/);
  assert.throws(() => packBoundsFrom(small, { maxBytes: 2000 }), PackOptionsError);
});

test("the worker's pack parse fails a bad document alone and a pack over a bound as a whole", () => {
  const packed = packAll(packBoundsFrom(cfg), [docJobs("a", 1), docJobs("b", 1), docJobs("c", 1), docJobs("d", 1)]);
  const data = structuredClone(packed[0].data) as { docs: Array<Record<string, unknown>> };
  data.docs[1] = { ...data.docs[1], chunks: [{ index: "zero", text: "t" }] };
  data.docs[2] = { ...data.docs[2], metadata: JSON.parse('{"__proto__": {"polluted": true}}') };
  delete data.docs[3].docId;
  const docs = parsePackData(data, cfg);
  assert.equal(docs.length, 4);
  assert.ok(docs[0].job && !docs[0].error);
  assert.match(docs[1].error!.message, /^chunks\.0\.index: /);
  assert.match(docs[2].error!.message, /"__proto__"/);
  assert.match(docs[3].error!.message, /^docId: /);
  assert.equal(docs[3].docId, null);
  // Split-off jobs: the unpacked job id when the document names itself, else one from the pack's id.
  const named = singleJobFromPackedDoc(data.docs[1], "pack-x", 1);
  assert.equal(named.id, jobId("b", 0, data.docs[1].docHash as string));
  assert.deepEqual([named.data.part, named.data.parts, named.data.docId], [0, 1, "b"]);
  assert.equal(singleJobFromPackedDoc(data.docs[3], "pack-x", 3).id, "pack-x-d3");
  assert.equal(singleJobFromPackedDoc(7, "pack-x", 5).id, "pack-x-d5");

  const tooMany = { v: 1, kind: "pack", docs: Array.from({ length: 5 }, (_, i) => docJobs(`m${i}`, 2)[0].data) };
  assert.throws(
    () => parsePackData(tooMany, cfg),
    (e: unknown) => e instanceof JobLimitError && /pack has 10 chunks, more than MAX_CHUNKS_PER_JOB=8/.test(e.message),
  );
  assert.throws(() => parsePackData({ v: 1, kind: "pack", docs: [] }, cfg), /^ValidationError: pack: docs: /);
});

test("decidePack: own failures are split off, a transient one retries the pack, a shutdown hands it back", () => {
  const ok = (index: number) => ({
    index,
    docId: `d${index}`,
    result: { chunks: 2, tokens: 10, truncated: 0, points: 2, unchanged: 1 },
  });
  const bad = new ValidationError("chunk 0 has empty text");
  const down = new SinkError("upsert failed (HTTP 503)", 503);
  const rejected = new SinkError("upsert failed (HTTP 400)", 400);
  const done = decidePack([
    ok(0),
    { index: 1, docId: "d1", error: bad },
    ok(2),
    { index: 3, docId: "d3", error: rejected },
  ]);
  assert.equal(done.kind, "complete");
  if (done.kind !== "complete") return;
  assert.deepEqual(done.result, { chunks: 4, tokens: 20, truncated: 0, points: 4, unchanged: 2, documents: 4 });
  assert.deepEqual(
    done.split.map((o) => o.index),
    [1, 3],
  );
  const retry = decidePack([ok(0), { index: 1, docId: "d1", error: bad }, { index: 2, docId: "d2", error: down }]);
  assert.equal(retry.kind, "retry");
  if (retry.kind === "retry") {
    assert.equal(retry.error, down);
    assert.deepEqual(
      retry.split.map((o) => o.index),
      [1],
    );
  }
  assert.equal(decidePack([ok(0), { index: 1, docId: "d1", error: new ShutdownError("drain") }]).kind, "hand-back");
});

test("requeue-failed names a failed pack by its first document and how many it holds", () => {
  const packed = packAll(packBoundsFrom(cfg), [docJobs("a", 1), docJobs("b", 1), docJobs("c", 1)]);
  const row = describeFailedJob({ id: "p", data: packed[0].data, attemptsMade: 5, failedReason: "sink: x" } as Job);
  assert.equal(row.docId, "a (+2 packed)");
  const single = describeFailedJob({ id: "s", data: docJobs("z", 1)[0].data, attemptsMade: 1 } as Job);
  assert.equal(single.docId, "z");
});

test("on a sharded queue every pack holds documents of one shard, placed on that shard; unsharded packing is unchanged", () => {
  const docs = Array.from({ length: 60 }, (_, i) => docJobs(`doc-${i}`, 1));
  const bounds: PackBounds = { maxDocs: 8, maxChunks: 8, maxBytes: 100_000 };
  for (const shards of [2, 3]) {
    const p = new JobPacker(bounds, shards);
    const jobs = [...docs.flatMap((d) => p.add(d)), ...p.flush()];
    const placed = new Map<string, number>();
    for (const j of jobs) {
      const ids = isPack(j) ? j.data.docs.map((d) => d.docId) : [(j.data as EmbedJobData).docId];
      const home = shardFor(placementDocId(j.data as Placeable), shards);
      for (const id of ids) {
        assert.equal(shardFor(id, shards), home, `${id} packed away from its shard (${shards} shards)`);
        placed.set(id, home);
      }
    }
    assert.equal(placed.size, 60, "a document was lost or duplicated");
    assert.ok(jobs.filter(isPack).length < 60, "nothing was packed");
  }
  const one = packAll(bounds, docs).map((j) => j.opts.jobId);
  const p1 = new JobPacker(bounds, 1);
  assert.deepEqual(
    [...docs.flatMap((d) => p1.add(d)), ...p1.flush()].map((j) => j.opts.jobId),
    one,
  );
});
