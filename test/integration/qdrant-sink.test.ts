/** The Qdrant sink's two upsert paths (QDRANT_UPSERT_BODY=prebuilt, the default, and client)
 *  against the strict in-process Qdrant-compatible server: named dense, sparse and ColBERT
 *  multivector points with UUID ids, with and without pre-built vector JSON, stored alike by both
 *  and equal to the float32 vectors sent; and every failure (Qdrant's 400 for a point it refuses,
 *  an injected 503, a refused connection, a timeout, a wrong api key) worded identically by both
 *  paths and classified alike for retries and splitting. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { QdrantClient } from "@qdrant/js-client-rest";
import { testConfig } from "../../kit/harness.js";
import { startQdrantTestServer, type QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import type { ModelInfo, VectorPoint } from "../../worker/core/ports.js";
import { SinkError } from "../../worker/errors.js";
import { pointId } from "../../shared/ids.js";
import { QdrantSink } from "../../worker/adapters/qdrant-sink.js";
import { encodeVectorJson } from "../../worker/adapters/qdrant-vector-json.js";
import { suiteFixture } from "../support/suite-fixture.js";

const fx = suiteFixture({ redis: false, model: false, qdrant: "server" });
const MODES = ["prebuilt", "client"] as const;
type Mode = (typeof MODES)[number];

const info: ModelInfo = {
  name: "sink-test",
  provider: "cpu",
  device: "cpu",
  available: ["dense", "sparse", "colbert"],
  outputs: ["dense", "sparse", "colbert"],
  denseDim: 8,
  colbertDim: 4,
  onnxOutputs: [],
  maxSeqLength: 64,
};

let collections = 0;
function sinkFor(mode: Mode, env: Record<string, string> = {}, server: QdrantTestServer = fx.server) {
  const collection = `sink_${mode}_${++collections}_${process.pid}`;
  const cfg = testConfig({ QDRANT_URL: server.url, COLLECTION: collection, QDRANT_UPSERT_BODY: mode, ...env });
  const sink = new QdrantSink(cfg);
  fx.onCleanup(() => sink.close());
  return { sink, collection, cfg };
}

function unit(values: number[]): Float32Array {
  const n = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / n);
}

/** Points as the model thread hands them over: every other one with pre-built vector JSON. */
function points(doc: string, n: number, denseDim = 8): VectorPoint[] {
  return Array.from({ length: n }, (_, i) => {
    const dense = unit(Array.from({ length: denseDim }, (_, k) => Math.sin(i * 7 + k) + 0.1));
    const sparse = { indices: Uint32Array.from([3 + i, 70, 250001]), values: Float32Array.from([0.1, 0.25, 1 / 3]) };
    const colbert = Float32Array.from([...unit([1, 2, 3, i]), ...unit([0.3, -0.2, 0.1, 0.7])]);
    const p: VectorPoint = {
      id: pointId(doc, i),
      dense,
      sparse,
      colbert,
      colbertDim: 4,
      payload: { doc_id: doc, chunk_index: i, text: `chunk ${i} ✓` },
    };
    if (i % 2 === 0) p.vectorJson = encodeVectorJson(p);
    return p;
  });
}

const close = (a: number[], b: ArrayLike<number>, what: string) => {
  assert.equal(a.length, b.length, what);
  a.forEach((x, i) => assert.ok(Math.abs(Math.fround(x) - b[i]) <= 1e-6, `${what}[${i}]: ${x} vs ${b[i]}`));
};

for (const mode of MODES) {
  test(`${mode}: named dense, sparse and ColBERT points with UUID ids are stored as sent`, async () => {
    const { sink, collection } = sinkFor(mode);
    await sink.init(info);
    assert.equal(sink.usesVectorJson, mode === "prebuilt");
    const sent = points(`doc-${mode}`, 5);
    await sink.upsert(sent);
    const stored = fx.server.points(collection);
    assert.equal(stored.size, 5);
    for (const p of sent) {
      const s = stored.get(p.id)!;
      assert.ok(s, `point ${p.id} stored`);
      close(s.vector.dense as number[], p.dense!, "dense");
      const sparse = s.vector.sparse as { indices: number[]; values: number[] };
      assert.deepEqual(sparse.indices, [...p.sparse!.indices]);
      close(sparse.values, p.sparse!.values, "sparse");
      const rows = s.vector.colbert as number[][];
      assert.equal(rows.length, 2);
      close(rows.flat(), p.colbert!, "colbert");
      assert.deepEqual(s.payload, p.payload);
    }
    // Read back through the official client too, as search does.
    const client = new QdrantClient({ url: fx.server.url, checkCompatibility: false });
    const got = await client.retrieve(collection, { ids: [sent[1].id], with_vector: true, with_payload: true });
    assert.equal(got.length, 1);
    assert.deepEqual(got[0].payload, sent[1].payload);
  });
}

for (const mode of MODES) {
  test(`${mode}: a body of several megabytes (long ColBERT multivectors) is sent in parts and stored whole`, async () => {
    const { sink, collection } = sinkFor(mode);
    await sink.init(info);
    const sent = points(`big-${mode}`, 3).map((p, i) => {
      const rows = 20_000 + i;
      const colbert = Float32Array.from({ length: rows * 4 }, (_, k) => Math.fround(Math.cos(k) / 2));
      const q: VectorPoint = { ...p, colbert, colbertDim: 4, vectorJson: undefined };
      q.vectorJson = encodeVectorJson(q);
      return q;
    });
    assert.ok(sent.reduce((n, p) => n + p.vectorJson!.byteLength, 0) > 2_000_000);
    await sink.upsert(sent);
    const stored = fx.server.points(collection);
    for (const p of sent) {
      const rows = stored.get(p.id)!.vector.colbert as number[][];
      assert.equal(rows.length, p.colbert!.length / 4);
      // Stored rows are normalised (Cosine): compare directions through the last row's ratios.
      const last = rows.at(-1)!;
      const want = p.colbert!.subarray(p.colbert!.length - 4);
      const n = Math.hypot(...want);
      last.forEach((x, k) => assert.ok(Math.abs(x - want[k] / n) < 1e-6));
    }
  });
}

/** What each path's upsert failed with under `setUp`, message with the collection name neutralised. */
async function failure(
  mode: Mode,
  make: (p: VectorPoint[]) => VectorPoint[],
  setUp?: () => void,
  env: Record<string, string> = {},
  server: QdrantTestServer = fx.server,
): Promise<{ message: string; status?: number; retryable: boolean; contentSuspect: boolean }> {
  const { sink, collection } = sinkFor(mode, env, server);
  await sink.init(info);
  const sent = make(points(`fail-${mode}`, 3));
  setUp?.();
  try {
    await sink.upsert(sent);
  } catch (err) {
    assert.ok(err instanceof SinkError, `a SinkError, got ${String(err)}`);
    return {
      message: err.message.replaceAll(collection, "<collection>"),
      status: err.status,
      retryable: err.retryable,
      contentSuspect: err.contentSuspect,
    };
  } finally {
    server.setFault(null);
  }
  assert.fail(`${mode}: the upsert succeeded`);
}

async function sameFailure(
  what: string,
  make: (p: VectorPoint[]) => VectorPoint[],
  setUp?: () => void,
  env?: Record<string, string>,
) {
  const [prebuilt, client] = [await failure("prebuilt", make, setUp, env), await failure("client", make, setUp, env)];
  assert.deepEqual(prebuilt, client, `${what}: both paths fail alike`);
  return prebuilt;
}

test("a point Qdrant refuses (wrong dense dimension): HTTP 400 with Qdrant's reason, content suspect, both paths alike", async () => {
  const wrongDim = (ps: VectorPoint[]) => {
    ps[1] = { ...ps[1], dense: ps[1].dense!.subarray(0, 5) };
    ps[1].vectorJson = encodeVectorJson(ps[1]);
    return ps;
  };
  const f = await sameFailure("wrong dimension", wrongDim);
  assert.equal(f.status, 400);
  assert.equal(f.contentSuspect, true);
  assert.equal(f.retryable, false);
  assert.match(f.message, /^upsert of 3 points to "<collection>" failed \(HTTP 400\): .*dim/i);
});

test("a non-finite value: Qdrant refuses the point (HTTP 400), both paths alike", async () => {
  const nan = (ps: VectorPoint[]) => {
    ps[0] = { ...ps[0], dense: Float32Array.from(ps[0].dense!, (v, i) => (i === 2 ? NaN : v)), vectorJson: undefined };
    return ps;
  };
  const f = await sameFailure("NaN", nan);
  assert.equal(f.status, 400);
  assert.equal(f.contentSuspect, true);
});

test("an injected 503: retryable, not content suspect, both paths alike", async () => {
  const f = await sameFailure(
    "503",
    (ps) => ps,
    () => fx.server.setFault({ kind: "status", status: 503 }),
  );
  assert.equal(f.status, 503);
  assert.equal(f.retryable, true);
  assert.equal(f.contentSuspect, false);
  assert.match(f.message, /\(HTTP 503\): Injected fault: HTTP 503/);
});

test("a refused connection and a timeout: no status, retryable, both paths alike", async () => {
  const refused = await sameFailure(
    "refused",
    (ps) => ps,
    () => fx.server.setFault({ kind: "refuse" }),
  );
  assert.equal(refused.status, undefined);
  assert.equal(refused.retryable, true);
  assert.match(refused.message, /^upsert of 3 points to "<collection>" failed: /);
  const slow = await sameFailure(
    "timeout",
    (ps) => ps,
    () => fx.server.setFault({ kind: "delay", ms: 1500 }),
    { QDRANT_TIMEOUT_MS: "300" },
  );
  assert.equal(slow.status, undefined);
  assert.equal(slow.retryable, true);
  assert.match(slow.message, /aborted/);
});

test("a wrong api key: HTTP 401, both paths alike; the right key works on both", async () => {
  const server = await startQdrantTestServer({ apiKey: "right-key" });
  fx.onCleanup(() => server.close());
  const results = [];
  for (const mode of MODES) {
    const { sink, collection, cfg } = sinkFor(mode, { QDRANT_API_KEY: "right-key" }, server);
    await sink.init(info);
    await sink.upsert(points(`key-${mode}`, 2));
    assert.equal(server.points(collection).size, 2);
    const wrong = new QdrantSink({ ...cfg, QDRANT_API_KEY: "wrong-key" });
    const err = await wrong.upsert(points(`key-${mode}`, 2)).then(
      () => assert.fail(`${mode}: upsert with a wrong key succeeded`),
      (e: SinkError) => e,
    );
    results.push({ message: err.message.replaceAll(collection, "<collection>"), status: err.status });
  }
  assert.deepEqual(results[0], results[1]);
  assert.equal(results[0].status, 401);
});
