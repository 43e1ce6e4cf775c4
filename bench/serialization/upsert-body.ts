/** `npm run bench:upsert-body`: CPU per chunk of building Qdrant upsert requests, before and
 *  after issue 15, on real transcript chunks. Chunks are cut by the producer's chunker from the
 *  reference transcripts (the bundled sample when they are absent) at 128 and 512 tokens and
 *  tokenized with the XLM-R tokenizer (the generated test tokenizer when it is absent); each
 *  point gets the worker's real payload (`toPoint`), sparse weights on the chunk's own token ids,
 *  and, standing in for the model, random unit-norm float32 vectors of BGE-M3's sizes (1024-d
 *  dense; with ColBERT, one 1024-d row per token after CLS): formatting cost depends on the
 *  values' magnitudes, which match a real model's. Timed per request of `--points` points:
 *  - client path (main thread): `toQdrantPoint` + `JSON.stringify` of the body + `TextEncoder`
 *    (what `@qdrant/js-client-rest` and the HTTP client do);
 *  - prebuilt, model thread: `encodeVectorJson` per chunk;
 *  - prebuilt, main thread: `upsertBody` (ids and payloads to JSON, vector bytes spliced);
 *  - gRPC (measured, not used by the worker): the same points as one `UpsertPoints` message of
 *    the official gRPC client's types, built and encoded (grpc-upsert.ts);
 *  - the message from the model thread, posted and received in one thread through a
 *    MessageChannel with its buffers transferred, with and without the vector JSON; receive (the
 *    main thread's share) and send timed apart, in wall time, the least round.
 *  Process CPU time (wall time on a loaded machine counts waiting for a core), median of `--rounds`
 *  rounds after a warm-up. Prints machine, inputs and method, and writes them with every figure to
 *  bench/results/serialization/upsert-body/.
 *  The machine may be shared: compare within one run. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import os from "node:os";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Command } from "commander";
import { chunkDocument } from "../../producer/chunker.js";
import type { ChunkEmbedding } from "../../worker/core/heads.js";
import { toPoint } from "../../worker/core/point-payload.js";
import type { VectorPoint } from "../../worker/core/ports.js";
import { toQdrantPoint } from "../../worker/adapters/qdrant-sink.js";
import { upsertBody } from "../../worker/adapters/qdrant-upsert-body.js";
import { encodeVectorJson } from "../../worker/adapters/qdrant-vector-json.js";
import { ensureTestModel } from "../../kit/test-model/write-test-model.js";
import { readCorpus, resolveCorpus } from "../lib/corpus.js";
import { referenceRoot, repoRoot } from "../lib/paths.js";
import { benchReport } from "./report.js";
import { grpcUpsertBytes } from "./grpc-upsert.js";

const opts = new Command()
  .option("--chunks <n>", "chunks per scenario (ColBERT: an eighth, at least 8)", (v) => Number(v), 128)
  .option("--points <n>", "points per upsert request (ColBERT: a quarter)", (v) => Number(v), 64)
  .option("--rounds <n>", "timed rounds (median reported)", (v) => Number(v), 7)
  .parse()
  .opts<{ chunks: number; points: number; rounds: number }>();

const DIM = 1024;

/** A seeded 32-bit generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const next = random(15);

/** `rows` unit-norm rows of DIM Gaussian coordinates. */
function unitRows(rows: number): Float32Array {
  const out = new Float32Array(rows * DIM);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < DIM; i++) {
      const g = Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
      out[r * DIM + i] = g;
      s += g * g;
    }
    for (let i = 0; i < DIM; i++) out[r * DIM + i] /= Math.sqrt(s);
  }
  return out;
}

async function loadTokenizer(): Promise<{ tok: Tokenizer; label: string }> {
  const dir = path.join(referenceRoot, "reference", "tokenizers", "xlm-roberta-250k");
  const file = existsSync(dir) ? readdirSync(dir).find((f) => /\.json(\.gz)?$/.test(f)) : undefined;
  if (file) {
    const raw = readFileSync(path.join(dir, file));
    const json = JSON.parse((file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8"));
    return { tok: new Tokenizer(json, {}), label: "XLM-R 250k (reference, BGE-M3's vocabulary)" };
  }
  const files = await ensureTestModel(path.join(repoRoot, ".cache", "bench-serialization-model"), {});
  const json = JSON.parse(readFileSync(files.tokenizerPath, "utf8"));
  return { tok: new Tokenizer(json, {}), label: "GENERATED test tokenizer (reference XLM-R tokenizer not present)" };
}

interface Scenario {
  name: string;
  tokens: number;
  colbert: boolean;
}

async function points(s: Scenario, tok: Tokenizer, texts: string[]): Promise<VectorPoint[]> {
  const out: VectorPoint[] = [];
  const n = s.colbert ? Math.max(8, opts.chunks >> 3) : opts.chunks;
  for (let i = 0; i < n; i++) {
    const text = texts[i % texts.length];
    const ids = (tok.encode(text).ids as number[]).slice(0, s.tokens);
    const weights = new Map<number, number>();
    for (const id of ids) if (id > 3) weights.set(id, Math.max(weights.get(id) ?? 0, Math.fround(next() * 0.3)));
    const indices = Uint32Array.from([...weights.keys()].sort((a, b) => a - b));
    const emb: ChunkEmbedding = {
      dense: unitRows(1),
      sparse: { indices, values: Float32Array.from(indices, (id) => weights.get(id)!) },
    };
    if (s.colbert) {
      emb.colbert = unitRows(ids.length - 1);
      emb.colbertDim = DIM;
    }
    const job = { docId: `doc-${i}`, docHash: "h", enqueuedAt: 1_765_000_000_000, metadata: { source: "bench" } };
    const chunk = { index: i, text, metadata: { speakers: ["A"], start: i, end: i + 1 } };
    out.push(
      toPoint(job, chunk, { length: ids.length, truncated: false }, emb, { MODEL_NAME: "bge-m3", STORE_TEXT: true }),
    );
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Untimed rounds first, so V8 has optimised the code being timed: the first few dozen calls
 *  run 10-20x slower, and a running worker is long past them. */
const WARMUP_ROUNDS = 3;
function warmUp(fn: () => void): void {
  const until = cpuMs() + 1500;
  for (let w = 0; w < 30 && (w < WARMUP_ROUNDS || cpuMs() < until); w++) fn();
}

/** CPU time (user + system) of this process, milliseconds: on a loaded machine wall time would
 *  count the time spent waiting for a core. Includes V8's GC helper threads. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** A full GC before each timed round (with --expose-gc), so no round pays for an earlier one's garbage. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Median over rounds of the CPU time `fn` takes over all points, microseconds per chunk. */
function perChunk(n: number, fn: () => void): number {
  warmUp(fn);
  const times: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    collectGarbage();
    const t = cpuMs();
    fn();
    times.push(cpuMs() - t);
  }
  return (median(times) * 1000) / n;
}

function groups<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** The model thread's message for each request, posted and received in this thread with its
 *  buffers transferred: send (the model thread's share) and receive (the main thread's) timed
 *  apart, in wall time, the least over rounds (freeing the previous round's megabytes runs on
 *  other threads and would count in process CPU; the least round is the one nothing else slowed).
 *  Returns microseconds per chunk. */
function transferCost(all: VectorPoint[], size: number, withJson: boolean): { send: number; receive: number } {
  const list = groups(all, size);
  const { port1, port2 } = new MessageChannel();
  let send = Infinity;
  let receive = Infinity;
  for (let r = 0; r < WARMUP_ROUNDS + opts.rounds; r++) {
    const fresh = list.map((g) =>
      g.map((e) => ({
        dense: e.dense!.slice(),
        sparse: { indices: e.sparse!.indices.slice(), values: e.sparse!.values.slice() },
        colbert: e.colbert?.slice(),
        colbertDim: e.colbertDim,
        vectorJson: withJson ? e.vectorJson!.slice() : undefined,
      })),
    );
    collectGarbage();
    let s = 0;
    let v = 0;
    for (const msg of fresh) {
      const bufs: ArrayBuffer[] = [];
      for (const e of msg) {
        bufs.push(e.dense.buffer, e.sparse.indices.buffer, e.sparse.values.buffer);
        if (e.colbert) bufs.push(e.colbert.buffer);
        if (e.vectorJson) bufs.push(e.vectorJson.buffer as ArrayBuffer);
      }
      const t0 = performance.now();
      port1.postMessage(msg, bufs);
      const t1 = performance.now();
      receiveMessageOnPort(port2);
      v += performance.now() - t1;
      s += t1 - t0;
    }
    if (r >= WARMUP_ROUNDS) {
      send = Math.min(send, s);
      receive = Math.min(receive, v);
    }
  }
  port1.close();
  port2.close();
  return { send: (send * 1000) / all.length, receive: (receive * 1000) / all.length };
}

const report = benchReport("upsert-body");
const say = report.say;
const m = report.machine;
const corpus = resolveCorpus();
const { docs } = await readCorpus(corpus);
const { tok, label } = await loadTokenizer();
const countTokens = (t: string) => tok.encode(t, { add_special_tokens: false }).ids.length;
say(`bench:upsert-body — ${m.cpus} x ${m.cpuModel}, Node ${m.node}, load average ${os.loadavg()[0].toFixed(2)}`);
say(`corpus: ${corpus.label}; tokenizer: ${label}`);
say(
  `method: ${opts.chunks} chunks per scenario (ColBERT: ${Math.max(8, opts.chunks >> 3)}), requests of ${opts.points} ` +
    `points (ColBERT: ${Math.max(1, opts.points >> 2)}), process CPU time (user + system, GC threads included; ` +
    `${(globalThis as { gc?: unknown }).gc ? "a full GC before each round" : "no GC between rounds: run with --expose-gc"}), ` +
    `median of ${opts.rounds} rounds after 3-30 warm-up rounds (up to 1.5 s of CPU); vectors are random unit-norm float32 of BGE-M3's sizes ` +
    "standing in for the model (see the file's header). The machine may be shared: compare within one run.",
);
say("\nmicroseconds of CPU per chunk:");
say(
  "  scenario                         client path  prebuilt: model thread  main thread  receive (send) +json  " +
    "receive (send) without  vector JSON KB  gRPC build+encode  gRPC KB",
);
const scenarios: Scenario[] = [
  { name: "128 tokens, dense+sparse", tokens: 128, colbert: false },
  { name: "512 tokens, dense+sparse", tokens: 512, colbert: false },
  { name: "128 tokens, dense+sparse+colbert", tokens: 128, colbert: true },
];
const rows: Record<string, number>[] = [];
for (const s of scenarios) {
  const texts: string[] = [];
  for (const d of docs) {
    if (texts.length >= opts.chunks) break;
    if (d.segments.length === 0) continue;
    const chunks = chunkDocument(d, { targetTokens: s.tokens, overlapTokens: 0, countTokens });
    for (const c of chunks) if (countTokens(c.text) >= s.tokens * 0.8) texts.push(c.text);
  }
  const all = await points(s, tok, texts);
  const size = s.colbert ? Math.max(1, opts.points >> 2) : opts.points;
  const requests = groups(all, size);
  const encoder = new TextEncoder();
  const client = perChunk(all.length, () => {
    for (const g of requests) encoder.encode(JSON.stringify({ points: g.map(toQdrantPoint) }));
  });
  const model = perChunk(all.length, () => {
    for (const p of all) p.vectorJson = encodeVectorJson(p);
  });
  const main = perChunk(all.length, () => {
    for (const g of requests) upsertBody(g);
  });
  let grpcBytes = 0;
  const grpc = perChunk(all.length, () => {
    grpcBytes = 0;
    for (const g of requests) grpcBytes += grpcUpsertBytes("c", g).byteLength;
  });
  const tj = transferCost(all, size, true);
  const tn = transferCost(all, size, false);
  const withJson = tj.receive;
  const kb = all.reduce((n, p) => n + p.vectorJson!.byteLength, 0) / all.length / 1024;
  const tokens = all.reduce((n, p) => n + (p.payload.token_count as number), 0) / all.length;
  rows.push({
    client,
    model,
    main,
    withJson,
    withJsonSend: tj.send,
    without: tn.receive,
    withoutSend: tn.send,
    grpc,
    grpcKb: grpcBytes / all.length / 1024,
    tokens,
  });
  const pair = (a: number, b: number) => `${a.toFixed(1)} (${b.toFixed(1)})`;
  const cells = [
    client.toFixed(1).padStart(11),
    model.toFixed(1).padStart(22),
    main.toFixed(1).padStart(11),
    pair(tj.receive, tj.send).padStart(20),
    pair(tn.receive, tn.send).padStart(22),
    kb.toFixed(1).padStart(14),
    grpc.toFixed(1).padStart(10),
    (grpcBytes / all.length / 1024).toFixed(1).padStart(8),
  ];
  say(`  ${s.name.padEnd(32)} ${cells.join("  ")}   (${tokens.toFixed(0)} tokens/chunk)`);
}
const [base, , colbert] = rows;
const perToken = (k: string) => (colbert[k] - base[k]) / (colbert.tokens - 1);
say(
  `\nColBERT, per token (128-token chunks with minus without ColBERT): client path ${perToken("client").toFixed(2)} us, ` +
    `prebuilt main thread ${perToken("main").toFixed(2)} us + receiving the message ${perToken("withJson").toFixed(2)} us, ` +
    `model thread ${perToken("model").toFixed(2)} us; gRPC message build+encode ${perToken("grpc").toFixed(2)} us`,
);
say(`(load average at the end ${os.loadavg()[0].toFixed(2)})`);
const colbertPerToken = Object.fromEntries(
  ["client", "model", "main", "withJson", "grpc"].map((k) => [k, perToken(k)]),
);
const file = report.finish({
  corpus: corpus.label,
  tokenizer: label,
  options: opts,
  unit: "microseconds of process CPU per chunk",
  scenarios: scenarios.map((s, i) => ({ ...s, ...rows[i] })),
  colbertPerToken,
});
console.log(`results: ${file}`);
