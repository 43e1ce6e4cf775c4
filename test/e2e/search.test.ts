/** The search command as a user runs it (`node dist/worker/search-cli.js`, a real child
 *  process with the generated model) against chunks a real worker stored through real Redis
 *  in the strict Qdrant test server, or in a real Qdrant when QDRANT_URL is set; its expected
 *  failures; and the exact Query API requests each mode builds. Hybrid (RRF fusion of
 *  prefetches) and ColBERT rerank (max_sim over a prefetch) run on every run: the test
 *  server computes them as Qdrant does. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { Queue } from "bullmq";
import { QdrantClient } from "@qdrant/js-client-rest";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { redisConnection } from "../../shared/redis.js";
import type { SourceDocument } from "../../producer/document.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { startWorker } from "../../worker/app.js";
import { collectionVectors } from "../../worker/search/qdrant-search.js";
import { SearchUsageError, VectorMismatchError, OutputDisabledError } from "../../worker/search/search-errors.js";
import { oneLine } from "../../worker/search/search-output.js";
import {
  checkQueryVectors,
  planSearch,
  requireOutputs,
  type CollectionVectors,
} from "../../worker/search/search-plan.js";
import { buildQueryRequest } from "../../worker/search/search-query.js";
import {
  freePort,
  qdrantTarget,
  repoRoot,
  testConfig,
  testModel,
  uniqueQueue,
  waitFor,
  type QdrantTarget,
} from "../../kit/harness.js";

const cli = path.join(repoRoot, "dist", "worker", "search-cli.js");
const connection = redisConnection(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
let target: QdrantTarget;
let modelDir: string;
let client: QdrantClient;
const cleanups: Array<() => Promise<unknown>> = [];

const DOCS: Array<[string, string]> = [
  ["budget", "The minister replied that the budget for the regional transport plan was still under review."],
  ["water", "During the afternoon session the house discussed the new law on water management in small towns."],
  ["amendments", "A clerk read the list of amendments aloud, and the members voted on them one by one."],
  ["opening", "The committee meeting opened at nine in the morning with a short statement from the chair."],
  [
    "long",
    "Several members interrupted, and the chair called for order twice. The exchange was heated but polite. " +
      "Both speeches were later quoted in the evening news. The technical staff updated the official minutes. " +
      "Amendment number fifteen passed with support from three different parties after a narrow vote.",
  ],
];

type Sparse = { indices: number[]; values: number[] };

interface StoredCollection {
  name: string;
  /** Text of each stored chunk by `${doc_id}#${chunk_index}`. */
  chunks: Map<string, string>;
  /** Stored sparse vectors by chunk key; the random test model weighs every token of some texts 0, and those have none. */
  sparse: Map<string, Sparse>;
  /** Chunks with sparse terms no other chunk has: a chunk's own text must find them first in sparse and hybrid mode too
   *  (elsewhere a shared token can outweigh its own terms, since sparse scores are unnormalised dot products). */
  alone: string[];
}

const dotProduct = (a: Sparse, b: Sparse) =>
  a.indices.reduce((sum, idx, i) => sum + a.values[i] * (b.values[b.indices.indexOf(idx)] ?? 0), 0);

const stored = new Map<string, Promise<StoredCollection>>();

/** Embeds DOCS with a real worker into a fresh collection (once per OUTPUTS) and reads the chunks back. */
function storedCollection(outputs: string): Promise<StoredCollection> {
  if (!stored.has(outputs)) stored.set(outputs, storeDocs(outputs));
  return stored.get(outputs)!;
}

async function storeDocs(outputs: string): Promise<StoredCollection> {
  const queueName = uniqueQueue("search");
  const name = `search_${queueName.replace(/-/g, "_")}`;
  const cfg = testConfig({
    MODEL_DIR: modelDir,
    QUEUE_NAME: queueName,
    QDRANT_URL: target.url,
    QDRANT_API_KEY: target.apiKey,
    COLLECTION: name,
    OUTPUTS: outputs,
    CHUNK_TOKENS: "24",
    CHUNK_OVERLAP_TOKENS: "0",
  });
  const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
  const worker = await startWorker(cfg, {
    log: createLogger({ level: "silent" }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  cleanups.push(async () => {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await client.deleteCollection(name).catch(() => undefined);
  });
  const docs: SourceDocument[] = DOCS.map(([id, text]) => ({
    id,
    kind: "text",
    segments: [{ text }],
    metadata: {},
    source: { file: "search-test" },
  }));
  const summary = await enqueueDocuments(
    queue,
    docs,
    enqueueOptionsFrom(cfg, loadTokenCounter(path.join(modelDir, "tokenizer.json"))),
  );
  await waitFor(
    async () => (await client.count(name, { exact: true })).count === summary.chunks,
    60_000,
    "every chunk stored",
  );
  const page = await client.scroll(name, { limit: 1000, with_payload: true, with_vector: ["sparse"] });
  const key = (p: (typeof page.points)[number]) => `${p.payload!.doc_id}#${p.payload!.chunk_index}`;
  const chunks = new Map(page.points.map((p) => [key(p), String(p.payload!.text)]));
  const sparse = new Map<string, Sparse>();
  for (const p of page.points) {
    const v = (p.vector as { sparse?: Sparse } | undefined)?.sparse;
    if (v) sparse.set(key(p), v);
  }
  const alone = [...sparse.keys()].filter((k) =>
    [...sparse].every(([o, v]) => o === k || dotProduct(sparse.get(k)!, v) === 0),
  );
  assert.ok(chunks.has("long#2"), `the long document should span at least 3 chunks: ${[...chunks.keys()].join(", ")}`);
  assert.ok(
    sparse.size >= 3 && alone.length >= 1,
    `too few chunks with sparse terms to test: ${[...sparse.keys()].join(", ")}; alone: ${alone.join(", ")}`,
  );
  return { name, chunks, sparse, alone };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Async on purpose: the in-process test server must keep answering while the child runs. */
function runSearch(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv = {
    PATH: process.env.PATH,
    MODEL_DIR: modelDir,
    QDRANT_URL: target.url,
    QDRANT_API_KEY: target.apiKey,
    LOG_LEVEL: "silent",
    ...env,
  };
  const child = spawn(process.execPath, [cli, ...args], {
    env: childEnv as NodeJS.ProcessEnv,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

interface JsonHit {
  rank: number;
  id: string;
  score: number;
  doc_id: string;
  chunk_index: number;
  text: string;
  metadata: unknown;
}

async function topHits(
  c: StoredCollection,
  key: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<JsonHit[]> {
  const r = await runSearch([c.chunks.get(key)!, "--collection", c.name, "--json", ...args], env);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { hits: JsonHit[]; collection: string };
  assert.equal(out.collection, c.name);
  return out.hits;
}

/** One line on stderr, no stack trace, the given exit code. */
function assertOneLineError(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

before(async () => {
  target = await qdrantTarget();
  modelDir = (await testModel()).dir;
  client = new QdrantClient({ url: target.url, apiKey: target.apiKey, checkCompatibility: false });
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await target.close();
  await connection.quit();
});

test("search --mode dense: a stored chunk's own text finds that chunk first, for every chunk", async () => {
  const c = await storedCollection("dense,sparse");
  for (const key of c.chunks.keys()) {
    const [top] = await topHits(c, key, ["--mode", "dense", "--limit", "3"]);
    assert.equal(`${top.doc_id}#${top.chunk_index}`, key);
    assert.ok(Math.abs(top.score - 1) < 1e-3, `cosine of a text with itself should be 1, got ${top.score}`);
  }
});

test("search --mode sparse: a chunk's own text scores its stored weights; a chunk sharing no term with others comes first", async () => {
  const c = await storedCollection("dense,sparse");
  for (const [key, stored] of c.sparse) {
    const hits = await topHits(c, key, ["--mode", "sparse", "--limit", String(c.chunks.size)]);
    const self = hits.find((h) => `${h.doc_id}#${h.chunk_index}` === key);
    assert.ok(self, `${key} is not among its own hits`);
    const want = dotProduct(stored, stored);
    assert.ok(
      Math.abs(self.score - want) < 1e-3 * want,
      `${key}: the query's sparse vector should equal the stored one (score ${self.score}, stored self dot product ${want})`,
    );
    assert.ok(
      hits.every((h, i) => i === 0 || h.score <= hits[i - 1].score),
      "hits are sorted by score",
    );
    if (c.alone.includes(key)) assert.equal(`${hits[0].doc_id}#${hits[0].chunk_index}`, key);
  }
});

test("search --json: every hit has rank, id, score, doc_id, chunk_index, text and metadata; --filter-doc and --limit apply", async () => {
  const c = await storedCollection("dense,sparse");
  const r = await runSearch([
    c.chunks.get("long#1")!,
    "--collection",
    c.name,
    "--mode",
    "dense",
    "--json",
    "--filter-doc",
    "long",
    "--limit",
    "2",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(
    {
      mode: out.mode,
      rerank: out.rerank,
      limit: out.limit,
      prefetch_limit: out.prefetch_limit,
      filter_doc: out.filter_doc,
      query: out.query,
    },
    { mode: "dense", rerank: null, limit: 2, prefetch_limit: null, filter_doc: "long", query: c.chunks.get("long#1") },
  );
  assert.equal(out.hits.length, 2);
  out.hits.forEach((h: JsonHit, i: number) => {
    assert.deepEqual(Object.keys(h).sort(), ["chunk_index", "doc_id", "id", "metadata", "rank", "score", "text"]);
    assert.equal(h.rank, i + 1);
    assert.equal(h.doc_id, "long");
    assert.equal(h.text, c.chunks.get(`long#${h.chunk_index}`));
    assert.equal(typeof h.score, "number");
  });
  assert.equal(out.hits[0].chunk_index, 1);
});

test("search prints aligned lines with score, doc id, chunk index and the text cut to --width", async () => {
  const c = await storedCollection("dense,sparse");
  const r = await runSearch([
    c.chunks.get("water#0")!,
    "--collection",
    c.name,
    "--mode",
    "dense",
    "--limit",
    "2",
    "--width",
    "30",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0], new RegExp(`^dense search in "${c.name}": 2 hits$`));
  assert.match(lines[1], /^1 {2}1\.0000 {2}water\s+#0 {2}During the afternoon session\S* ?\S*…$/);
  assert.equal(lines[1].split("  ").at(-1)!.length, 30);
  assert.equal(lines.length, 3);
});

test("search --mode hybrid: RRF fusion of dense and sparse finds the chunk first", async () => {
  const c = await storedCollection("dense,sparse");
  const key = c.alone[0];
  const hits = await topHits(c, key, ["--mode", "hybrid"]);
  assert.equal(`${hits[0].doc_id}#${hits[0].chunk_index}`, key, "first in both rankings is first after fusion");
  const byDefault = await topHits(c, key, []);
  assert.deepEqual(
    byDefault.map((h) => h.id),
    hits.map((h) => h.id),
    "hybrid is the default on a collection with a sparse vector",
  );
});

test("search --rerank colbert: dense and hybrid candidates reranked by max_sim find the chunk first", async () => {
  const c = await storedCollection("dense,sparse,colbert");
  // Each query row's best match is itself (max_sim sums those), and every chunk is a candidate (prefetch 40 > chunks).
  const key = c.alone[0];
  for (const mode of ["dense", "hybrid"]) {
    const hits = await topHits(c, key, ["--mode", mode, "--rerank", "colbert"], { OUTPUTS: "dense,sparse,colbert" });
    assert.equal(`${hits[0].doc_id}#${hits[0].chunk_index}`, key, `--mode ${mode}`);
  }
});

test("search with an empty query exits 2 with one line and loads nothing", async () => {
  assertOneLineError(await runSearch(["   "], { QDRANT_URL: "http://127.0.0.1:9" }), 2, /^search: the query is empty/);
});

test("search on a collection that does not exist names it", async () => {
  assertOneLineError(
    await runSearch(["budget", "--collection", "no_such_collection_x"]),
    1,
    /no collection "no_such_collection_x".*--collection or set COLLECTION/,
  );
});

test("search --rerank colbert on a collection without a colbert vector says how to get one", async () => {
  const c = await storedCollection("dense,sparse");
  const r = await runSearch(["budget", "--collection", c.name, "--mode", "dense", "--rerank", "colbert"], {
    OUTPUTS: "dense,sparse,colbert",
  });
  assertOneLineError(
    r,
    1,
    /--rerank colbert needs a vector named "colbert", which this collection does not have; the worker writes it only when its OUTPUTS include colbert/,
  );
});

test("search in a mode whose model output is off names the OUTPUTS setting to change", async () => {
  const c = await storedCollection("dense,sparse");
  const r = await runSearch(["budget", "--collection", c.name, "--mode", "sparse"], { OUTPUTS: "dense" });
  assertOneLineError(
    r,
    2,
    /--mode sparse needs the model's sparse output, but OUTPUTS=dense leaves it off; set OUTPUTS=dense,sparse$/,
  );
});

test("search when Qdrant is unreachable says where it looked", async () => {
  const url = `http://127.0.0.1:${await freePort()}`;
  assertOneLineError(
    await runSearch(["budget"], { QDRANT_URL: url }),
    1,
    new RegExp(`cannot reach Qdrant at ${url}.*ECONNREFUSED`),
  );
});

test("search passes on Qdrant's own message when it refuses the query (HTTP 400)", async (t) => {
  if (!target.server) return void t.skip("needs the test server, told to refuse fusion as a Qdrant without it would");
  const c = await storedCollection("dense,sparse");
  target.server.setFault({ kind: "unsupported", key: "fusion" });
  const r = await runSearch(["budget", "--collection", c.name]).finally(() => target.server!.setFault(null));
  assertOneLineError(r, 1, /Qdrant refused the query on "search_.*" \(HTTP 400\): .*not supported by the test server/);
});

// ---- request builder and plan: pure ----

const dense = [0.6, 0.8];
const sparse = { indices: [5, 9], values: [0.3, 0.1] };
const colbert = [
  [1, 0],
  [0, 1],
];
const full: CollectionVectors = { name: "c", dense: { size: 2 }, sparse: true, colbert: { size: 2 } };
const docFilter = { must: [{ key: "doc_id", match: { value: "d1" } }] };

test("buildQueryRequest: dense and sparse are one nearest search on their named vector", () => {
  assert.deepEqual(buildQueryRequest(planSearch({ mode: "dense", limit: 5 }, full), { dense, sparse }), {
    query: dense,
    using: "dense",
    limit: 5,
    with_payload: true,
  });
  assert.deepEqual(buildQueryRequest(planSearch({ mode: "sparse", limit: 5, docId: "d1" }, full), { dense, sparse }), {
    query: sparse,
    using: "sparse",
    limit: 5,
    filter: docFilter,
    with_payload: true,
  });
});

test("buildQueryRequest: hybrid prefetches dense and sparse and fuses them with RRF; the filter sits on the prefetches", () => {
  assert.deepEqual(
    buildQueryRequest(planSearch({ limit: 3, prefetchLimit: 12, docId: "d1" }, full), { dense, sparse }),
    {
      prefetch: [
        { query: dense, using: "dense", limit: 12, filter: docFilter },
        { query: sparse, using: "sparse", limit: 12, filter: docFilter },
      ],
      query: { fusion: "rrf" },
      limit: 3,
      with_payload: true,
    },
  );
});

test("buildQueryRequest: a ColBERT rerank wraps the retrieval as its prefetch", () => {
  assert.deepEqual(
    buildQueryRequest(planSearch({ mode: "dense", rerank: "colbert", limit: 2 }, full), { dense, colbert }),
    {
      prefetch: { query: dense, using: "dense", limit: 8 },
      query: colbert,
      using: "colbert",
      limit: 2,
      with_payload: true,
    },
  );
  assert.deepEqual(
    buildQueryRequest(planSearch({ mode: "hybrid", rerank: "colbert", limit: 2, prefetchLimit: 6 }, full), {
      dense,
      sparse,
      colbert,
    }),
    {
      prefetch: {
        prefetch: [
          { query: dense, using: "dense", limit: 6 },
          { query: sparse, using: "sparse", limit: 6 },
        ],
        query: { fusion: "rrf" },
        limit: 6,
      },
      query: colbert,
      using: "colbert",
      limit: 2,
      with_payload: true,
    },
  );
});

test("planSearch: hybrid by default with a sparse vector, dense without; refuses missing vectors and a prefetch below the limit", () => {
  assert.equal(planSearch({ limit: 10 }, full).mode, "hybrid");
  assert.equal(planSearch({ limit: 10 }, { name: "c", dense: { size: 2 }, sparse: false }).mode, "dense");
  assert.equal(planSearch({ limit: 10 }, full).prefetchLimit, 40);
  assert.throws(
    () => planSearch({ limit: 1, rerank: "colbert" }, { name: "c", dense: { size: 2 }, sparse: true }),
    VectorMismatchError,
  );
  assert.throws(
    () => planSearch({ mode: "sparse", limit: 1 }, { name: "c", dense: { size: 2 }, sparse: false }),
    /--mode sparse needs a vector named "sparse"/,
  );
  assert.throws(() => planSearch({ limit: 10, prefetchLimit: 5 }, full), /--prefetch-limit 5 is below --limit 10/);
  assert.doesNotThrow(() => planSearch({ mode: "dense", limit: 10, prefetchLimit: 5 }, full));
});

test("requireOutputs and checkQueryVectors: outputs that are off, empty query vectors and other sizes are named", () => {
  const plan = planSearch({ mode: "hybrid", rerank: "colbert", limit: 1 }, full);
  assert.throws(
    () => requireOutputs(plan, ["dense", "sparse"]),
    (e: unknown) => e instanceof OutputDisabledError && /set OUTPUTS=dense,sparse,colbert$/.test(e.message),
  );
  assert.doesNotThrow(() => requireOutputs(plan, ["dense", "sparse", "colbert"]));
  assert.throws(
    () => checkQueryVectors(plan, full, { dense, colbert }),
    (e: unknown) => e instanceof SearchUsageError && /no sparse vector/.test(e.message),
  );
  assert.throws(
    () => checkQueryVectors(plan, full, { dense: [1, 0, 0], sparse, colbert }),
    /vector "dense" has size 2, but the query's has 3/,
  );
  assert.throws(
    () => checkQueryVectors(plan, full, { dense, sparse, colbert: [[1, 0, 0]] }),
    /vector "colbert" has size 2, but the query's has 3/,
  );
  assert.doesNotThrow(() => checkQueryVectors(plan, full, { dense, sparse, colbert }));
});

test("collectionVectors reads named vectors and ignores an unnamed one; oneLine folds and cuts text", () => {
  assert.deepEqual(
    collectionVectors("c", { vectors: { dense: { size: 4 }, colbert: { size: 4 } }, sparse_vectors: { sparse: {} } }),
    { name: "c", dense: { size: 4 }, sparse: true, colbert: { size: 4 } },
  );
  assert.deepEqual(collectionVectors("c", { vectors: { size: 4, distance: "Cosine" } }), {
    name: "c",
    dense: undefined,
    sparse: false,
    colbert: undefined,
  });
  assert.equal(oneLine("a\n  b\tc", 0), "a b c");
  assert.equal(oneLine("abcdef", 4), "abc…");
  assert.equal(oneLine("abc", 3), "abc");
});
