/**
 * Contract tests for the in-process Qdrant test server, driven through the
 * real `@qdrant/js-client-rest` client. With QDRANT_URL set (and optionally
 * QDRANT_API_KEY) the client-facing tests run against that real Qdrant
 * instead, which is how the server's strictness is checked against the
 * original; introspection and fault-injection tests are then skipped.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { QdrantClient } from "@qdrant/js-client-rest";
import { startQdrantTestServer, type QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { DEFAULT_RRF_K, float32Json, rrfFuse } from "../../kit/qdrant-server/score-fusion.js";
import { maxSim } from "../../kit/qdrant-server/vector-scoring.js";

const REAL_URL = process.env.QDRANT_URL;
const REAL_KEY = process.env.QDRANT_API_KEY;
const IN_PROCESS_ONLY = REAL_URL
  ? "needs the in-process server (introspection / fault injection); QDRANT_URL is set"
  : false;

let server: QdrantTestServer | null = null;
let baseUrl = "";
let client: QdrantClient;

function newClient(url: string, apiKey?: string): QdrantClient {
  return new QdrantClient({ url, apiKey, checkCompatibility: false, timeout: 10_000 });
}

function collectionName(): string {
  return `qts_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
}

/** Asserts the client call fails with `status` and an error message matching `pattern`. */
async function expectQdrantError(call: Promise<unknown>, status: number, pattern?: RegExp): Promise<void> {
  const err = await call.then(
    () => assert.fail(`expected HTTP ${status}, call succeeded`),
    (e: unknown) => e as { status?: number; data?: { status?: { error?: string } } },
  );
  const message = err.data?.status?.error ?? "";
  assert.equal(err.status, status, `status (message: ${message})`);
  if (pattern) assert.match(message, pattern);
}

const SCHEMA = {
  vectors: {
    dense: { size: 4, distance: "Cosine" as const, on_disk: true, datatype: "float16" as const },
    colbert: {
      size: 4,
      distance: "Cosine" as const,
      multivector_config: { comparator: "max_sim" as const },
      hnsw_config: { m: 0 },
    },
  },
  sparse_vectors: { sparse: { modifier: "idf" as const } },
};

async function createCollection(): Promise<string> {
  const name = collectionName();
  assert.equal(await client.createCollection(name, SCHEMA), true);
  return name;
}

function point(id: number | string, extra: Record<string, unknown> = {}) {
  return {
    id,
    vector: {
      dense: [1, 0, 0, 0],
      sparse: { indices: [3, 7], values: [0.5, 0.25] },
      colbert: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
      ],
    },
    payload: { doc: "a", n: 1, ...extra },
  };
}

async function exactCount(name: string): Promise<number> {
  return (await client.count(name, { exact: true })).count;
}

before(async () => {
  if (REAL_URL) {
    baseUrl = REAL_URL;
  } else {
    server = await startQdrantTestServer();
    baseUrl = server.url;
  }
  client = newClient(baseUrl, REAL_KEY);
});

after(async () => {
  await server?.close();
});

describe("service endpoints", () => {
  test("root reports a version the client accepts and health endpoints answer", async () => {
    const info = await client.versionInfo();
    assert.equal(info.title, "qdrant - vector search engine");
    assert.match(info.version, /^1\.\d+\.\d+/);
    const health = await fetch(`${baseUrl}/healthz`);
    assert.equal(health.status, 200);
  });

  test("unknown route is 404, malformed JSON is 400 Format error", async () => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (REAL_KEY) headers["api-key"] = REAL_KEY;
    const unknown = await fetch(`${baseUrl}/no/such/route`, { headers });
    assert.equal(unknown.status, 404);
    const bad = await fetch(`${baseUrl}/collections/${collectionName()}/points/scroll`, {
      method: "POST",
      headers,
      body: "{not json",
    });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { status: { error: string } };
    assert.match(body.status.error, /^Format error in JSON body: /);
  });

  test("bodies over 32 MiB are rejected before parsing", async () => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (REAL_KEY) headers["api-key"] = REAL_KEY;
    const huge = `{"points":[],"pad":"${"x".repeat(33 * 1024 * 1024)}"}`;
    const res = await fetch(`${baseUrl}/collections/${collectionName()}/points`, {
      method: "PUT",
      headers,
      body: huge,
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { status: { error: string } };
    assert.match(body.status.error, /larger than allowed|exceeded limit/);
  });
});

describe("collections", () => {
  test("create, inspect, exists, conflict and delete", async () => {
    const name = await createCollection();
    const info = await client.getCollection(name);
    assert.equal(info.status, "green");
    assert.equal(info.points_count, 0);
    const vectors = info.config.params.vectors as Record<
      string,
      { size: number; distance: string; multivector_config?: unknown }
    >;
    assert.equal(vectors.dense.size, 4);
    assert.equal(vectors.dense.distance, "Cosine");
    assert.deepEqual(vectors.colbert.multivector_config, { comparator: "max_sim" });
    assert.deepEqual(info.config.params.sparse_vectors, { sparse: { modifier: "idf" } });
    assert.deepEqual(await client.collectionExists(name), { exists: true });
    const listed = await client.getCollections();
    assert.ok(listed.collections.some((c) => c.name === name));
    await expectQdrantError(client.createCollection(name, SCHEMA), 409, /Collection `.*` already exists!/);
    assert.equal(await client.deleteCollection(name), true);
    assert.deepEqual(await client.collectionExists(name), { exists: false });
    await expectQdrantError(client.getCollection(name), 404, /Not found: Collection `.*` doesn't exist!/);
  });

  test("invalid vector params are rejected and nothing is created", async () => {
    const name = collectionName();
    await expectQdrantError(
      client.createCollection(name, { vectors: { dense: { size: 0, distance: "Cosine" } } }),
      422,
      /size/,
    );
    const badDistance = { vectors: { dense: { size: 4, distance: "Hamming" } } } as unknown as typeof SCHEMA;
    await expectQdrantError(client.createCollection(name, badDistance), 400, /Format error/);
    const badModifier = { sparse_vectors: { s: { modifier: "bm25" } } } as unknown as typeof SCHEMA;
    await expectQdrantError(client.createCollection(name, badModifier), 400, /Format error/);
    assert.deepEqual(await client.collectionExists(name), { exists: false });
  });

  test("payload index shows up in payload_schema", async () => {
    const name = await createCollection();
    await client.upsert(name, { points: [point(1, { doc: "x" })] });
    const res = await client.createPayloadIndex(name, { field_name: "doc", field_schema: "keyword", wait: true });
    assert.equal(res.status, "completed");
    const info = await client.getCollection(name);
    assert.equal(info.payload_schema.doc?.data_type, "keyword");
    await expectQdrantError(
      client.createPayloadIndex(collectionName(), { field_name: "doc", field_schema: "keyword" }),
      404,
    );
    await client.deleteCollection(name);
  });
});

describe("points", () => {
  let name = "";
  before(async () => {
    name = await createCollection();
  });
  after(async () => {
    await client.deleteCollection(name);
  });

  test("upsert (list and batch forms) and read back", async () => {
    const uuidSimple = "A1B2C3D4E5F60718293A4B5C6D7E8F90";
    const res = await client.upsert(name, { wait: true, points: [point(1), point(uuidSimple, { doc: "u" })] });
    assert.equal(res.status, "completed");
    await client.upsert(name, {
      batch: {
        ids: [2, 3],
        vectors: {
          dense: [
            [0, 2, 0, 0],
            [0, 0, 3, 0],
          ],
        },
        payloads: [{ doc: "b" }, { doc: "c" }],
      },
    });
    const got = await client.retrieve(name, { ids: [1, "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90", 2], with_vector: true });
    assert.deepEqual(
      got.map((p) => p.id),
      [1, "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90", 2],
    );
    const v1 = got[0].vector as Record<string, unknown>;
    assert.deepEqual(v1.sparse, { indices: [3, 7], values: [0.5, 0.25] });
    assert.deepEqual(v1.colbert, [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
    ]);
    // Cosine vectors come back normalised.
    const v2 = (got[2].vector as Record<string, number[]>).dense;
    assert.ok(Math.abs(v2[1] - 1) < 1e-6 && Math.abs(v2[0]) < 1e-6, `normalised dense: ${JSON.stringify(v2)}`);
    assert.deepEqual(got[1].payload, { doc: "u", n: 1 });
    assert.equal(await exactCount(name), 4);
  });

  const rejections: Array<[string, unknown, number, RegExp]> = [
    ["wrong dense dimension", { dense: [1, 2, 3] }, 400, /Vector dimension error: expected dim: 4, got 3/],
    ["unknown vector name", { foo: [1, 2, 3, 4] }, 400, /Not existing vector name error: foo/],
    [
      "sparse length mismatch",
      { sparse: { indices: [1, 2], values: [0.1] } },
      422,
      /must be the same length as indices/,
    ],
    ["duplicate sparse index", { sparse: { indices: [4, 4], values: [0.1, 0.2] } }, 422, /must be unique/],
    ["negative sparse index", { sparse: { indices: [-1], values: [0.1] } }, 400, /Format error/],
    [
      "multivector on a plain dense name",
      { dense: [[1, 0, 0, 0]] },
      400,
      /Conversion between multi and regular vectors failed/,
    ],
    ["dense vector for a sparse name", { sparse: [1, 0, 0, 0] }, 400, /Wrong input/],
    ["sparse vector for a dense name", { dense: { indices: [1], values: [1] } }, 400, /Wrong input/],
    ["NaN in a vector (serialised as null)", { dense: [Number.NaN, 0, 0, 0] }, 400, /Format error/],
    ["non-number in a vector", { dense: ["x", 0, 0, 0] }, 400, /Format error/],
    [
      "ragged multivector",
      {
        colbert: [
          [1, 0, 0, 0],
          [1, 0],
        ],
      },
      422,
      /same dimension/,
    ],
  ];
  for (const [label, vector, status, pattern] of rejections) {
    test(`rejects ${label} and stores nothing`, async () => {
      const before = await exactCount(name);
      const points = [point(100), { id: 101, vector, payload: {} }];
      try {
        await expectQdrantError(client.upsert(name, { wait: true, points } as never), status, pattern);
        assert.equal(await exactCount(name), before);
        assert.deepEqual(await client.retrieve(name, { ids: [100, 101] }), []);
      } finally {
        // Keep one broken check from cascading into the following cases.
        await client.delete(name, { wait: true, points: [100, 101] });
      }
    });
  }

  for (const badId of ["abc", -1, 1.5, "123"]) {
    test(`rejects point id ${JSON.stringify(badId)}`, async () => {
      const before = await exactCount(name);
      await expectQdrantError(client.upsert(name, { points: [point(badId as never)] }), 400, /not a valid point ID/);
      assert.equal(await exactCount(name), before);
    });
  }

  test("payload must be an object; missing collection is 404", async () => {
    await expectQdrantError(
      client.upsert(name, { points: [{ ...point(102), payload: [1] as never }] }),
      400,
      /Format error/,
    );
    await expectQdrantError(client.upsert(collectionName(), { points: [point(1)] }), 404);
  });
});

describe("filters, scroll, count, delete, query", () => {
  let name = "";
  before(async () => {
    name = await createCollection();
    const points = Array.from({ length: 12 }, (_, i) => ({
      id: i + 1,
      vector: { dense: [1, i, 0, 0], sparse: { indices: [i % 3, 10], values: [1, 0.5] } },
      payload: { kind: i % 2 === 0 ? "even" : "odd", n: i, meta: { lang: i < 6 ? "en" : "de" }, tags: [`t${i % 4}`] },
    }));
    await client.upsert(name, { wait: true, points });
  });
  after(async () => {
    await client.deleteCollection(name);
  });

  test("match, any, except, range, nested keys, has_id, must_not, should", async () => {
    const count = async (filter: Record<string, unknown>) => (await client.count(name, { filter, exact: true })).count;
    assert.equal(await count({ must: [{ key: "kind", match: { value: "even" } }] }), 6);
    assert.equal(await count({ must: [{ key: "meta.lang", match: { value: "de" } }] }), 6);
    assert.equal(await count({ must: [{ key: "tags", match: { any: ["t0", "t1"] } }] }), 6);
    assert.equal(await count({ must: [{ key: "kind", match: { except: ["even"] } }] }), 6);
    assert.equal(await count({ must: [{ key: "n", range: { gte: 3, lt: 7 } }] }), 4);
    assert.equal(await count({ must: [{ has_id: [1, 2, 99] }] }), 2);
    assert.equal(
      await count({ must_not: [{ key: "kind", match: { value: "odd" } }], should: [{ key: "n", range: { lte: 4 } }] }),
      3,
    );
  });

  test("unknown filter condition shapes are rejected with 400", async () => {
    await expectQdrantError(client.count(name, { filter: { must: [{ banana: 1 }] } as never }), 400);
    await expectQdrantError(
      client.count(name, { filter: { must: [{ key: "n", match: { wrong: 1 } }] } as never }),
      400,
    );
  });

  test("scroll pages in id order with next_page_offset", async () => {
    const seen: unknown[] = [];
    let offset: unknown = undefined;
    let pages = 0;
    do {
      const page = await client.scroll(name, {
        limit: 5,
        offset: offset as number | undefined,
        filter: { must: [{ key: "n", range: { gte: 1 } }] },
      });
      seen.push(...page.points.map((p) => p.id));
      offset = page.next_page_offset ?? undefined;
      pages++;
    } while (offset !== undefined && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  test("dense and sparse nearest-neighbour queries", async () => {
    const dense = await client.query(name, { query: [1, 0, 0, 0], using: "dense", limit: 3, with_payload: true });
    assert.equal(dense.points[0].id, 1);
    assert.ok(Math.abs(dense.points[0].score - 1) < 1e-6);
    assert.equal((dense.points[0].payload as { n: number }).n, 0);
    const filtered = await client.query(name, {
      query: [1, 0, 0, 0],
      using: "dense",
      limit: 2,
      filter: { must: [{ key: "kind", match: { value: "odd" } }] },
    });
    assert.deepEqual(
      filtered.points.map((p) => p.id),
      [2, 4],
    );
    const sparse = await client.query(name, { query: { indices: [2], values: [1] }, using: "sparse", limit: 20 });
    assert.deepEqual(
      sparse.points.map((p) => p.id).sort((a, b) => Number(a) - Number(b)),
      [3, 6, 9, 12],
    );
    await expectQdrantError(client.query(name, { query: [1, 0, 0], using: "dense" }), 400, /dimension/);
    await expectQdrantError(
      client.query(name, { query: [1, 0, 0, 0], using: "nope" }),
      400,
      /Not existing vector name error: nope/,
    );
  });

  test("delete by filter and by ids", async () => {
    await client.delete(name, { wait: true, filter: { must: [{ key: "meta.lang", match: { value: "de" } }] } });
    assert.equal(await exactCount(name), 6);
    await client.delete(name, { wait: true, points: [1, 2] });
    assert.equal(await exactCount(name), 4);
  });
});

describe("query API: prefetch, RRF fusion, multivector max_sim", () => {
  let name = "";
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-5;
  const ids = (r: { points: Array<{ id: unknown }> }) => r.points.map((p) => p.id);
  const dense = (limit: number) => ({ query: [1, 0], using: "dense", limit });
  const sparse = (limit: number) => ({ query: { indices: [7], values: [1] }, using: "sparse", limit });
  const hybrid = { prefetch: [dense(3), sparse(3)], query: { fusion: "rrf" as const } };
  const rows = [
    [1, 0],
    [0, 1],
  ];
  // dense cosine to [1, 0]: 1 > 2 > 3 > 4; sparse on index 7: 3 > 4 > 2 (1 has none).
  const POINTS = [
    {
      id: 1,
      dense: [1, 0],
      sparse: { indices: [1], values: [1] },
      multi: [[1, 0]],
      colbert: [
        [2, 0],
        [0, 3],
      ],
      eu: [
        [0, 1],
        [3, 0],
      ],
    },
    {
      id: 2,
      dense: [0.8, 0.6],
      sparse: { indices: [7], values: [1] },
      multi: [
        [0.5, 0.5],
        [0, 2],
      ],
      colbert: [[1, 0]],
      eu: [[5, 5]],
    },
    {
      id: 3,
      dense: [0.6, 0.8],
      sparse: { indices: [7], values: [3] },
      multi: [[3, 0]],
      colbert: [[0, 1]],
      eu: [[1, 2]],
    },
    { id: 4, dense: [0, 1], sparse: { indices: [7], values: [2] }, multi: [[1, 1]], colbert: [[1, 1]], eu: [[0, 0]] },
  ];

  before(async () => {
    name = collectionName();
    const multi = (distance: "Dot" | "Cosine" | "Euclid") => ({
      size: 2,
      distance,
      multivector_config: { comparator: "max_sim" as const },
    });
    await client.createCollection(name, {
      vectors: {
        dense: { size: 2, distance: "Cosine" },
        multi: multi("Dot"),
        colbert: multi("Cosine"),
        eu: multi("Euclid"),
      },
      sparse_vectors: { sparse: {} },
    });
    const points = POINTS.map(({ id, ...vector }) => ({ id, vector, payload: { kind: id === 2 ? "b" : "a" } }));
    await client.upsert(name, { wait: true, points });
  });
  after(async () => {
    await client.deleteCollection(name);
  });

  test("RRF (pure): Qdrant's k = 2 and its own example, float32 scores as Qdrant's JSON writes them", () => {
    assert.equal(DEFAULT_RRF_K, 2);
    const r = (...list: number[]) => list.map((id) => ({ id, item: id }));
    const fused = rrfFuse([r(2, 1), r(1, 2, 3), r(5, 3, 1)]);
    assert.deepEqual(
      fused.map((f) => [f.id, f.score]),
      [
        [1, 1.0833334],
        [2, 0.8333334],
        [3, 0.5833334],
        [5, 0.5],
      ],
    );
    assert.deepEqual(
      rrfFuse([r(1), r(2)], 60).map((f) => f.score),
      [float32Json(1 / 60), float32Json(1 / 60)],
    );
    assert.equal(float32Json(1 / 3), 0.33333334);
  });

  test("max_sim (pure): sum over query rows of the best similarity; Euclid, Manhattan post-processed", () => {
    assert.equal(
      maxSim("Dot", rows, [
        [0.5, 0.5],
        [0, 2],
      ]),
      2.5,
    );
    assert.equal(
      maxSim(
        "Euclid",
        [
          [0, 0],
          [1, 0],
        ],
        [
          [0, 1],
          [3, 0],
        ],
      ),
      Math.sqrt(1 + 2),
    );
    assert.equal(
      maxSim(
        "Manhattan",
        [
          [0, 0],
          [1, 0],
        ],
        [
          [0, 1],
          [3, 0],
        ],
      ),
      1 + 2,
    );
  });

  test("fusion: RRF of dense and sparse prefetches; score_threshold, limit and offset on the fused list", async () => {
    const fused = await client.query(name, hybrid);
    assert.deepEqual(ids(fused), [3, 2, 1, 4]);
    assert.deepEqual(
      fused.points.map((p) => p.score),
      [0.75, 0.5833334, 0.5, 0.33333334],
    );
    assert.deepEqual(ids(await client.query(name, { ...hybrid, score_threshold: 0.55 })), [3, 2]);
    // The offset applies to the fused list only: the prefetches still keep 3 each (Qdrant 1.13+).
    assert.deepEqual(ids(await client.query(name, { ...hybrid, offset: 1, limit: 2 })), [2, 1]);
    const k60 = await client.query(name, { prefetch: hybrid.prefetch, query: { rrf: { k: 60 } } });
    assert.ok(near(k60.points[0].score, 1 / 62 + 1 / 60), `k=60 score ${k60.points[0].score}`);
  });

  test("the request's filter reaches every prefetch", async () => {
    const r = await client.query(name, { ...hybrid, filter: { must: [{ key: "kind", match: { value: "a" } }] } });
    assert.deepEqual(ids(r), [3, 4, 1]);
    assert.deepEqual(
      r.points.map((p) => p.score),
      [0.8333334, 0.5833334, 0.5],
    );
  });

  test("rerank: a max_sim query scores only the prefetch's candidates; nested prefetch reranks a fusion", async () => {
    assert.deepEqual(ids(await client.query(name, { query: rows, using: "multi" })), [3, 2, 4, 1]);
    const reranked = await client.query(name, { prefetch: dense(2), query: rows, using: "multi" });
    assert.deepEqual(
      reranked.points.map((p) => [p.id, p.score]),
      [
        [2, 2.5],
        [1, 1],
      ],
    );
    const prefetch = { ...hybrid, limit: 2 };
    const nested = await client.query(name, { prefetch, query: rows, using: "multi", with_payload: true });
    const got = nested.points.map((p) => [p.id, p.score, p.payload]);
    assert.deepEqual(got, [
      [3, 3, { kind: "a" }],
      [2, 2.5, { kind: "b" }],
    ]);
  });

  test("max_sim on Cosine normalises query and stored rows; on Euclid smaller is better", async () => {
    const cos = await client.query(name, { query: [[1, 1]], using: "colbert", limit: 4 });
    assert.equal(cos.points.find((p) => p.id === 4)!.score > 0.99, true);
    assert.ok(near(cos.points.find((p) => p.id === 1)!.score, Math.SQRT1_2));
    const eu = await client.query(name, {
      query: [
        [0, 0],
        [1, 0],
      ],
      using: "eu",
      limit: 4,
    });
    assert.deepEqual(ids(eu), [4, 1, 3, 2]);
    assert.ok(near(eu.points[1].score, Math.sqrt(3)), `euclid max_sim ${eu.points[1].score}`);
  });

  test("Qdrant's refusals: Fusion without prefetches, prefetches without a query, limit 0", async () => {
    const refused = (body: Record<string, unknown>) => client.query(name, body as never);
    await expectQdrantError(refused({ query: { fusion: "rrf" } }), 400, /cannot apply Fusion without prefetches/);
    await expectQdrantError(refused({ prefetch: hybrid.prefetch }), 400, /cannot have prefetches without a query/);
    await expectQdrantError(refused({ prefetch: [dense(0)], query: { fusion: "rrf" } }), 422);
    await expectQdrantError(refused({ prefetch: [dense(3)], query: { fusion: "best" } }), 400, /Format error/);
    const unknownName = refused({ prefetch: dense(3), query: [[1, 0]], using: "nope" });
    await expectQdrantError(unknownName, 400, /Not existing vector name error: nope/);
  });
});

describe("keyword payload index", () => {
  test("filters on an indexed keyword give the same results, also after points move between values", async () => {
    const name = await createCollection();
    await client.upsert(name, {
      wait: true,
      points: [1, 2, 3, 4].map((i) => point(i, { doc: i <= 2 ? "a" : "b", chunk: i })),
    });
    await client.createPayloadIndex(name, { field_name: "doc", field_schema: "keyword", wait: true });
    await client.upsert(name, {
      wait: true,
      points: [point(2, { doc: "b", chunk: 9, v: 3 }), point(5, { doc: "b", chunk: 5, v: 7 })],
    });
    const byDoc = (doc: string) => ({ must: [{ key: "doc", match: { value: doc } }] });
    assert.equal((await client.count(name, { filter: byDoc("a"), exact: true })).count, 1);
    assert.deepEqual(
      (await client.scroll(name, { filter: byDoc("b"), with_payload: false })).points.map((p) => p.id),
      [2, 3, 4, 5],
    );
    // The worker's stale-point filter: doc, chunk index at or past a bound, version below a bound or absent.
    await client.delete(name, {
      wait: true,
      filter: {
        must: [
          { key: "doc", match: { value: "b" } },
          { key: "chunk", range: { gte: 4 } },
          { should: [{ key: "v", range: { lt: 5 } }, { is_empty: { key: "v" } }] },
        ],
      },
    });
    assert.deepEqual(
      (await client.scroll(name, { with_payload: false })).points.map((p) => p.id),
      [1, 3, 5],
    );
    assert.equal((await client.count(name, { filter: byDoc("b"), exact: true })).count, 2);
    await client.deleteCollection(name);
  });
});

describe("in-process only", () => {
  test("api key: missing or wrong key is 401, right key works", { skip: IN_PROCESS_ONLY }, async () => {
    const secured = await startQdrantTestServer({ apiKey: "s3cret" });
    try {
      const noKey = await fetch(`${secured.url}/collections`);
      assert.equal(noKey.status, 401);
      assert.equal(await noKey.text(), "Must provide an API key or an Authorization bearer token");
      await expectQdrantError(newClient(secured.url, "wrong").getCollections(), 401);
      assert.deepEqual(await newClient(secured.url, "s3cret").getCollections(), { collections: [] });
      assert.equal((await fetch(`${secured.url}/healthz`)).status, 200);
    } finally {
      await secured.close();
    }
  });

  test(
    "writeCounts counts repeated upserts of the same id; rejected upserts count nothing",
    { skip: IN_PROCESS_ONLY },
    async () => {
      const srv = server!;
      const name = await createCollection();
      await client.upsert(name, { points: [point(7)] });
      await client.upsert(name, { points: [point(7), point(8)] });
      await expectQdrantError(client.upsert(name, { points: [point(7), { id: 9, vector: { dense: [1] } }] }), 400);
      assert.deepEqual([...srv.writeCounts(name)].sort(), [
        [7, 2],
        [8, 1],
      ]);
      assert.deepEqual([...srv.points(name).keys()].sort(), [7, 8]);
      await client.deleteCollection(name);
    },
  );

  test("holdUpserts keeps an upsert unanswered and unapplied until released", { skip: IN_PROCESS_ONLY }, async () => {
    const srv = server!;
    const name = await createCollection();
    const release = srv.holdUpserts();
    let answered = false;
    const pending = client.upsert(name, { wait: true, points: [point(1)] }).then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(answered, false);
    assert.equal(srv.points(name).size, 0);
    release();
    assert.equal((await pending).status, "completed");
    assert.equal(srv.points(name).size, 1);
    await client.deleteCollection(name);
  });

  test("setFault status answers 503 for `count` requests, then recovers", { skip: IN_PROCESS_ONLY }, async () => {
    const srv = server!;
    srv.setFault({ kind: "status", status: 503, count: 2 });
    await expectQdrantError(client.getCollections(), 503);
    await expectQdrantError(client.getCollections(), 503);
    await client.getCollections();
    const statuses = srv.requests.slice(-3).map((r) => r.status);
    assert.deepEqual(statuses, [503, 503, 200]);
  });

  test("setFault refuse resets connections until cleared; delay slows answers", { skip: IN_PROCESS_ONLY }, async () => {
    const srv = server!;
    srv.setFault({ kind: "refuse" });
    await assert.rejects(client.getCollections());
    srv.setFault(null);
    await client.getCollections();
    srv.setFault({ kind: "delay", ms: 120 });
    const t0 = Date.now();
    await client.getCollections();
    assert.ok(Date.now() - t0 >= 100, "delayed answer");
    srv.setFault(null);
  });

  test("setFault unsupported refuses requests using a key with 400", { skip: IN_PROCESS_ONLY }, async () => {
    const srv = server!;
    const name = await createCollection();
    srv.setFault({ kind: "unsupported", key: "fusion" });
    const fusion = { prefetch: [{ query: [1, 0, 0, 0], using: "dense" }], query: { fusion: "rrf" as const } };
    await expectQdrantError(client.query(name, fusion), 400, /`fusion` is not supported by the test server/);
    await client.query(name, { query: [1, 0, 0, 0], using: "dense" });
    srv.setFault(null);
    await client.query(name, fusion);
    await client.deleteCollection(name);
  });

  test("reset clears collections, request log and faults", { skip: IN_PROCESS_ONLY }, async () => {
    const srv = server!;
    await createCollection();
    srv.setFault({ kind: "status", status: 500 });
    srv.reset();
    assert.equal(srv.requests.length, 0);
    assert.deepEqual(await client.getCollections(), { collections: [] });
    assert.throws(() => srv.points("missing"), /no collection named/);
  });
});
