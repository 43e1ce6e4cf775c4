/** The stale remover with fake sinks (issue 15): removals that complete together, or while a
 *  delete is in flight, leave as one request of at most `maxDocs` documents, each selector exactly
 *  once; a removal settles only with the request carrying it; an outage fails only that request's
 *  removals, a rejected selector only its own; without grouping, one `deleteStale` per document.
 *  Then through the pipeline with fake ports: a document's removal only after its own points are
 *  stored, grouped across jobs, and none at all for fresh jobs. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import { SinkError } from "../../worker/errors.js";
import { createMetrics } from "../../worker/metrics.js";
import { EmbeddingPipeline, type PipelineJob } from "../../worker/core/pipeline.js";
import type {
  ChunkTokenizer,
  EmbeddingModel,
  StaleSelector,
  VectorPoint,
  VectorSink,
} from "../../worker/core/ports.js";
import { StaleRemover, type StaleRemoverOptions } from "../../worker/core/stale-remover.js";
import { fakeModelInfo } from "../support/fake-model-info.js";

/** A sink whose delete requests the test answers: each request waits for `release` unless `auto`. */
class FakeDeleteSink implements VectorSink {
  requests: StaleSelector[][] = [];
  single: StaleSelector[] = [];
  log: string[] = [];
  private gates: Array<() => void> = [];
  constructor(
    private readonly o: {
      auto?: boolean;
      grouped?: boolean;
      answer?: (sels: StaleSelector[]) => SinkError | undefined;
    } = {},
  ) {
    if (o.grouped === false) this.deleteStaleMany = undefined;
  }
  async init() {}
  describe() {
    return "fake";
  }
  async close() {}
  async upsert(points: VectorPoint[]) {
    await new Promise((r) => setTimeout(r, 2));
    for (const p of points) this.log.push(`upsert ${p.payload.doc_id}`);
  }
  async deleteStale(sel: StaleSelector) {
    this.single.push(sel);
    this.log.push(`delete ${sel.docId}`);
  }
  deleteStaleMany?: (sels: StaleSelector[]) => Promise<void> = async (sels) => {
    this.requests.push(sels);
    if (!this.o.auto) await new Promise<void>((r) => this.gates.push(r));
    const err = this.o.answer?.(sels);
    if (err) throw err;
    for (const s of sels) this.log.push(`delete ${s.docId}`);
  };
  /** Lets the oldest waiting request answer. */
  release() {
    this.gates.shift()?.();
  }
  get waiting() {
    return this.gates.length;
  }
}

const sel = (i: number): StaleSelector => ({ docId: `d${i}`, fromChunk: 1, belowVersion: 100 + i });
const opts = (o: Partial<StaleRemoverOptions> = {}): StaleRemoverOptions => ({
  maxDocs: 4,
  lingerMs: 0,
  retries: 2,
  retryBaseMs: 1,
  ...o,
});
const tick = () => new Promise((r) => setImmediate(r));

/** Every removal's outcome: undefined = applied, else its error. */
function track(remover: StaleRemover, sels: StaleSelector[]) {
  const outcome = new Map<string, Error | undefined>();
  const all = Promise.all(
    sels.map((s) =>
      remover.remove(s).then(
        () => void outcome.set(s.docId, undefined),
        (e: Error) => void outcome.set(s.docId, e),
      ),
    ),
  );
  return { outcome, all };
}

test("removals of one turn leave together, at most maxDocs per request, each selector exactly once", async () => {
  const sink = new FakeDeleteSink({ auto: true });
  const remover = new StaleRemover(sink, opts({ maxDocs: 4, maxInFlight: 8 }));
  const sels = Array.from({ length: 10 }, (_, i) => sel(i));
  const { outcome, all } = track(remover, sels);
  await all;
  assert.deepEqual(
    sink.requests.map((r) => r.length),
    [4, 4, 2],
  );
  assert.deepEqual(sink.requests.flat(), sels, "every selector once, unchanged, in order");
  assert.ok([...outcome.values()].every((e) => e === undefined));
  assert.equal(sink.single.length, 0);
});

test("while requests are in flight, new removals wait and leave together; each settles with its own request", async () => {
  const sink = new FakeDeleteSink();
  const remover = new StaleRemover(sink, opts({ maxDocs: 100, maxInFlight: 1 }));
  const first = track(remover, [sel(0)]);
  await tick();
  assert.equal(sink.requests.length, 1, "an idle remover sends at once (lingerMs 0)");
  const rest: ReturnType<typeof track>[] = [];
  for (let i = 1; i <= 5; i++) {
    rest.push(track(remover, [sel(i)]));
    await tick();
  }
  assert.equal(sink.requests.length, 1, "nothing more may leave while the only slot is busy");
  assert.equal(first.outcome.size, 0, "a removal settled before its request answered");
  sink.release();
  await first.all;
  await tick();
  assert.deepEqual(
    sink.requests[1]?.map((s) => s.docId),
    ["d1", "d2", "d3", "d4", "d5"],
  );
  assert.ok(
    rest.every((r) => r.outcome.size === 0),
    "the second request's removals settled before it answered",
  );
  sink.release();
  await Promise.all(rest.map((r) => r.all));
});

test("lingerMs: removals arriving within the window share a request", async () => {
  const sink = new FakeDeleteSink({ auto: true });
  const remover = new StaleRemover(sink, opts({ maxDocs: 100, lingerMs: 300 }));
  const a = track(remover, [sel(0)]);
  await tick();
  assert.equal(sink.requests.length, 0, "the first removal left before its window ended");
  const b = track(remover, [sel(1)]);
  await Promise.all([a.all, b.all]);
  assert.deepEqual(
    sink.requests.map((r) => r.map((s) => s.docId)),
    [["d0", "d1"]],
  );
});

for (const [what, status] of [
  ["refused connection", undefined],
  ["HTTP 503", 503],
] as const) {
  test(`${what} on one request: its removals fail after the retries, another request's succeed`, async () => {
    const failing = new Set(["d0", "d1"]);
    const sink = new FakeDeleteSink({
      auto: true,
      answer: (sels) =>
        sels.some((s) => failing.has(s.docId))
          ? new SinkError(`deleting stale points of 2 documents from "c" failed (HTTP ${status}): unavailable`, status)
          : undefined,
    });
    const remover = new StaleRemover(sink, opts({ maxDocs: 2, retries: 2 }));
    const { outcome, all } = track(remover, [sel(0), sel(1), sel(2), sel(3)]);
    await all;
    assert.deepEqual(
      [...outcome].filter(([, e]) => e).map(([id]) => id),
      ["d0", "d1"],
    );
    const e = outcome.get("d1") as SinkError;
    assert.ok(e instanceof SinkError && e.retryable);
    assert.match(e.message, /^document "d1": deleting stale points of 2 documents .*unavailable/);
    assert.equal(e.status, status);
    const failedRequests = sink.requests.filter((r) => r.some((s) => failing.has(s.docId)));
    assert.equal(failedRequests.length, 3, "one request plus two retries, no split on an outage");
  });
}

test("HTTP 400 for one selector: the request splits until it is alone; only its document fails, with Qdrant's detail", async () => {
  const detail = 'Format error in JSON body: value "bad" is not a valid doc id';
  const sink = new FakeDeleteSink({
    auto: true,
    answer: (sels) =>
      sels.some((s) => s.docId === "d5")
        ? new SinkError(`deleting stale points of ${sels.length} documents failed (HTTP 400): ${detail}`, 400)
        : undefined,
  });
  const remover = new StaleRemover(sink, opts({ maxDocs: 8 }));
  const sels = Array.from({ length: 8 }, (_, i) => sel(i));
  const { outcome, all } = track(remover, sels);
  await all;
  assert.deepEqual(
    [...outcome].filter(([, e]) => e).map(([id]) => id),
    ["d5"],
  );
  assert.match(outcome.get("d5")!.message, /HTTP 400.*not a valid doc id/);
  assert.equal((outcome.get("d5") as SinkError).retryable, false);
  const applied = sink.log.map((l) => l.replace("delete ", "")).sort();
  assert.deepEqual(applied, ["d0", "d1", "d2", "d3", "d4", "d6", "d7"]);
  assert.ok(sink.requests.length <= 1 + 2 * Math.log2(8), `too many requests: ${sink.requests.length}`);
});

for (const [what, o, sinkOpts] of [
  ["maxDocs 1", { maxDocs: 1 }, {}],
  ["a sink without deleteStaleMany", { maxDocs: 64 }, { grouped: false }],
] as const) {
  test(`${what}: one deleteStale per document, sent at once`, async () => {
    const sink = new FakeDeleteSink({ auto: true, ...sinkOpts });
    const remover = new StaleRemover(sink, opts(o));
    const { all } = track(remover, [sel(0), sel(1), sel(2)]);
    await all;
    assert.deepEqual(sink.requests, []);
    assert.deepEqual(
      sink.single.map((s) => s.docId),
      ["d0", "d1", "d2"],
    );
  });
}

// ---- through the pipeline -----------------------------------------------------------------

const tokenizer: ChunkTokenizer = {
  async encode(texts) {
    return texts.map((t) => ({ ids: Int32Array.from([0, 5 + t.length, 2]), fullLength: 3, truncated: false }));
  },
  async close() {},
};
const model: EmbeddingModel = {
  info: fakeModelInfo(),
  async embed(b) {
    return b.sequences.map((s) => ({ dense: Float32Array.from([s.length, 1]) }));
  },
  async close() {},
};
const pipelineCfg = parseConfig({
  MAX_BATCH_TOKENS: "512",
  MAX_SEQ_LENGTH: "256",
  CHUNK_TOKENS: "128",
  BATCH_LINGER_MS: "1",
  UPSERT_LINGER_MS: "5",
  SINK_RETRIES: "1",
  SINK_RETRY_BASE_MS: "1",
  STALE_DELETE_MAX_DOCS: "64",
});

const oneChunkJob = (i: number, fresh?: boolean): PipelineJob => ({
  id: `j${i}`,
  docId: `d${i}`,
  docHash: "h",
  enqueuedAt: 1000 + i,
  metadata: {},
  chunks: [{ index: 0, text: `text ${i}`, metadata: {}, docChunks: 1 }],
  ...(fresh === undefined ? {} : { fresh }),
});

test("pipeline: one-chunk documents' removals are grouped, each after its own upsert; fresh jobs remove nothing", async () => {
  const sink = new FakeDeleteSink({ auto: true });
  const metrics = createMetrics({ defaultMetrics: false });
  const p = new EmbeddingPipeline(pipelineCfg, { tokenizer, model, sink }, metrics);
  const jobs = Array.from({ length: 40 }, (_, i) => oneChunkJob(i));
  await Promise.all(jobs.map((j) => p.submit(j)));
  assert.equal(sink.requests.flat().length, 40, "every document's removal was sent once");
  assert.deepEqual(new Set(sink.requests.flat().map((s) => s.docId)), new Set(jobs.map((j) => j.docId)));
  assert.ok(sink.requests.length < 40 / 4, `removals were not grouped: ${sink.requests.length} requests`);
  for (const j of jobs) {
    const up = sink.log.indexOf(`upsert ${j.docId}`);
    const del = sink.log.indexOf(`delete ${j.docId}`);
    assert.ok(up >= 0 && del > up, `${j.docId}: its delete must follow its own upsert (${up}, ${del})`);
    const s = sink.requests.flat().find((x) => x.docId === j.docId)!;
    assert.deepEqual(s, { docId: j.docId, fromChunk: 1, belowVersion: j.enqueuedAt });
  }
  const before = sink.requests.length;
  await Promise.all(Array.from({ length: 10 }, (_, i) => p.submit(oneChunkJob(100 + i, true))));
  assert.equal(sink.requests.length, before, "a fresh job sent a delete");
  const count = async (outcome: string) =>
    (await metrics.staleRemovals.get()).values.find((v) => v.labels.outcome === outcome)?.value;
  assert.equal(await count("removed"), 40);
  assert.equal(await count("skipped"), 10);
  assert.equal((await metrics.deletes.get()).values[0].value, before);
  await p.drain();
});

test("pipeline: a failing grouped delete fails only the jobs it carried, with the sink's reason", async () => {
  const sink = new FakeDeleteSink({
    auto: true,
    answer: (sels) =>
      sels.some((s) => s.docId === "d3") ? new SinkError("delete failed (HTTP 503): unavailable", 503) : undefined,
  });
  const p = new EmbeddingPipeline({ ...pipelineCfg, STALE_DELETE_MAX_DOCS: 2 }, { tokenizer, model, sink });
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => p.submit(oneChunkJob(i))));
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`d${i}`] : []));
  const carried = sink.requests.find((r) => r.some((s) => s.docId === "d3"))!.map((s) => s.docId);
  assert.deepEqual(failed, carried.sort());
  assert.ok(failed.length <= 2 && failed.length < results.length);
  const reason = (results[3] as PromiseRejectedResult).reason as SinkError;
  assert.equal(reason.kind, "sink");
  assert.match(reason.message, /HTTP 503\): unavailable/);
  await p.drain();
});
