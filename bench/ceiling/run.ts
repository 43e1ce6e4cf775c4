/** `npm run bench:ceiling -- [options]` (`--help` lists them): the worker process as `npm run
 *  worker` assembles it, with only ONNX Runtime's session replaced by an instant stand-in of
 *  BGE-M3's outputs (instant-session.ts), on backlogs of chunks the producer's chunker cut from
 *  the reference transcripts at each chunk size, dense+sparse and with ColBERT. Reports CPU per
 *  1,000 chunks per thread, the main thread's ceiling and its ratio to an H100's estimated
 *  BGE-M3 tokens/s, and the issue-15 targets met or missed; writes
 *  bench/results/ceiling/<timestamp>-<commit>.json with a Markdown summary beside it. Without
 *  --corpus and without the reference transcripts it skips, saying so (exit 0). Exits non-zero
 *  if a run lost or failed a chunk; a missed target is a result, not an error. */
import path from "node:path";
import { parseConfig } from "../../shared/config.js";
import { redisConnection } from "../../shared/redis.js";
import { enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { ensureBenchModel } from "../lib/bench-model.js";
import { BenchChild, killAllChildren } from "../lib/child-process.js";
import { readCorpus, resolveCorpus, windowChunks, type BenchJob } from "../lib/corpus.js";
import { quietGate, redisPid, runHeader, standInNotes, startRun, workerEnv } from "../lib/harness.js";
import { displayPath, repoRoot } from "../lib/paths.js";
import { resultsBaseName, writeResults } from "../lib/results-file.js";
import {
  CEILING_LABEL,
  CEILING_SCHEMA,
  type CeilingCase,
  type CeilingMode,
  type CeilingResults,
} from "../lib/results-schema.js";
import { GPU_ESTIMATES } from "../e2e/gpu-figures.js";
import { evaluateCeilingTargets, medianFigures, runFigures, tokenizerCpuIsBound } from "./figures.js";
import { measureCeilingRun, type CeilingContext } from "./measure-ceiling.js";
import { parseCeilingArgs } from "./options.js";
import { renderCeilingSummary, renderCeilingTable } from "./report-format.js";

/** The model file is only located and scanned at start-up (the stand-in session never reads it). */
const SCANNED_MODEL = { layers: 1, hidden: 32, heads: 1, intermediate: 64, generatedVocab: 8000 };

const args = process.argv.slice(2);
const o = parseCeilingArgs(args);
const log = console.log;
const source = resolveCorpus(o.corpus);
if (!o.corpus && source.kind !== "reference") {
  log(
    "bench:ceiling skipped: the reference transcripts (../shared/data/transcripts) are not beside this checkout; " +
      "pass --corpus <folder> to measure on other text",
  );
  process.exit(0);
}
const h100 = GPU_ESTIMATES.find((g) => g.gpu.startsWith("H100"));
if (!h100) throw new Error("bench/e2e/gpu-figures.ts has no H100 estimate");

const run = startRun(log);
const elapsed = () => ((performance.now() - run.t0) / 1000).toFixed(0);
const model = await ensureBenchModel({ ...SCANNED_MODEL, tokenizer: o.tokenizer }, false);
const env = workerEnv(o, model.files.dir);
const cfg = parseConfig(env);
const { docs, skipped } = await readCorpus(source);
if (docs.length === 0) throw new Error(`no documents in ${source.label}`);
log(`corpus: ${source.label}; ${docs.length} documents; tokenizer ${model.description.tokenizer}`);

const enqueue = {
  ...enqueueOptionsFrom(cfg, loadTokenCounter(model.files.tokenizerPath)),
  maxChunksPerJob: o.perJob,
  overlapTokens: 0,
};
const specs: Array<{ mode: CeilingMode; size: number; n: number }> = [
  ...o.sizes.map((size) => ({ mode: "dense+sparse" as const, size, n: o.chunks })),
  ...o.colbertSizes.map((size) => ({ mode: "colbert" as const, size, n: o.colbertChunks })),
];
const prepared = specs.map((s) => {
  const perDoc = Math.max(4, Math.ceil((2 * s.n) / docs.length));
  const set = windowChunks(docs, s.n, perDoc, { ...enqueue, chunkTokens: s.size });
  log(`${s.mode} ${s.size}: ${set.how}; ${set.jobs.length} jobs (${elapsed()} s)`);
  return { ...s, jobs: set.jobs as BenchJob[], how: `${set.how}; ${set.jobs.length} jobs of up to ${o.perJob} chunks` };
});

const qdrantChild = BenchChild.start("./qdrant-stand-in-child.js", {});
const connection = redisConnection(cfg.REDIS_URL, cfg);
const cases: CeilingCase[] = prepared.map((p) => ({
  mode: p.mode,
  targetTokens: p.size,
  how: p.how,
  runs: [],
  perRun: [],
  median: undefined as never,
}));
try {
  const ready = await qdrantChild.next<{ type: string; url: string }>("ready", 60_000);
  const redis = await redisPid(connection);
  const ctx: CeilingContext = {
    connection,
    qdrant: { child: qdrantChild, url: ready.url },
    env,
    prefix: cfg.QUEUE_PREFIX,
    gate: quietGate(o, redis),
  };
  for (let round = 1; round <= o.runs; round++) {
    for (const [i, p] of prepared.entries()) {
      const outputs = p.mode === "colbert" ? "dense,sparse,colbert" : "dense,sparse";
      const r = await measureCeilingRun(ctx, p.jobs, { OUTPUTS: outputs }, round);
      const f = runFigures(r, h100);
      cases[i].runs.push(r);
      cases[i].perRun.push(f);
      log(
        `round ${round} ${p.mode} ${p.size}: ${r.chunks} chunks (${f.meanTokens.toFixed(0)} tokens mean) in ${r.windowSeconds.toFixed(1)} s; ` +
          `main ${f.mainPer1k.toFixed(3)} CPU s per 1,000 chunks -> ceiling ${Math.round(f.ceilingChunksPerSecond)} chunks/s ` +
          `(${Math.round(f.ceilingTokensPerSecond)} tokens/s, ${(f.ratioToH100High * 100).toFixed(0)}% of the H100 high estimate); ` +
          `tokenizer ${Math.round(f.tokenizerTokensPerCpuSecond)} tokens per CPU-s${tokenizerCpuIsBound(r) ? " (native backend: at least; its CPU counted with GC/other threads)" : ""} [${CEILING_LABEL}] (${elapsed()} s)`,
      );
    }
  }
} catch (err) {
  killAllChildren();
  console.error(`bench:ceiling failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
} finally {
  await connection.quit().catch(() => undefined);
}
await qdrantChild.request({ type: "close" }, "closed").catch(() => undefined);
await qdrantChild.stop(5000);

for (const c of cases) c.median = medianFigures(c.perRun);

/** How tokenizer CPU was charged, from the backend each worker reported on its `/health`. */
function tokenizerMethod(list: CeilingCase[]): string {
  const backends = [...new Set(list.flatMap((c) => c.runs.map((r) => r.tokenizerBackend ?? "unknown")))];
  const seen = `Tokenizer backend (the worker's /health): ${backends.join(", ") || "none ran"}.`;
  if (!list.some((c) => c.runs.some(tokenizerCpuIsBound))) return seen;
  return (
    `${seen} The native tokenizers package encodes on libuv's threadpool, not in the tokenizer threads, so with it ` +
    "tokenizer CPU = tokenizer threads + GC/other threads: an upper bound (it includes V8's GC and compiler threads), " +
    "so its tokens per CPU-second are a lower bound, and the tokenizer target is evaluated on that; the GC/other column still lists those threads too."
  );
}
const results: CeilingResults = {
  schema: CEILING_SCHEMA,
  bench: "ceiling",
  label: CEILING_LABEL,
  ...runHeader(run, args, o, cfg, model, { source, documents: docs.length, skipped }),
  method: [
    `${CEILING_LABEL}: the worker process is assembled by startWorker exactly as \`npm run worker\` does it (BullMQ consumer, ${o.tokenizerThreads} tokenizer thread(s), pipeline and batcher, the model thread, the Qdrant sink over HTTP: upserts as prebuilt bodies over node:http, everything else through @qdrant/js-client-rest); only ONNX Runtime's session inside the real model thread is replaced by bench/ceiling/instant-session.ts, which answers at once with float32 tensors of BGE-M3's shapes (dense_vecs [B,1024], sparse_vecs [B,L,1], colbert_vecs [B,L-1,1024]); decoding, the output layout, normalisation, sparse weights and ColBERT rows run as in production.`,
    `Jobs: the producer's token-window chunker (CHUNK_TOKENS = each case's size, no overlap) on the corpus, jobs made by the producer's jobsForDocument (up to ${o.perJob} chunks each); one job of 8 chunks warms the worker up first.`,
    "Each run: a fresh worker process, queue and collection; the queue is paused while the whole backlog is added, then resumed; the window runs from the resume to the last job finished, so every job's fetch, tokenization, batching, upsert and completion fall inside it. A run counts only if the worker embedded exactly the chunks enqueued, no job failed and the stand-in received one point per chunk.",
    "Per-thread CPU: /proc/<pid>/task/<tid>/schedstat of the worker process at the window's ends; threads are told apart by a module preloaded with --import into every worker thread, which reports its thread id and role (Node 20 names every thread `node`). GC/other = every thread that is not the main, a tokenizer or the model thread (V8's GC and compiler threads, libuv's pool).",
    "Main-thread ceiling = chunks (tokens) / main-thread CPU seconds: the rate at which this one thread could go if everything else ran elsewhere and the model were free. Tokenizer tokens per CPU-second = tokens / CPU seconds of all tokenizer threads.",
    tokenizerMethod(cases),
    "Qdrant: a minimal stand-in in its own process (bench/children/qdrant-stand-in-child.ts) that parses every upsert body as JSON and counts point ids; it stores no vectors.",
    `${o.runs} run(s) per case, cases interleaved within each round; every figure in the table is the median of that figure over the runs. Batch settings: MAX_BATCH_TOKENS=${o.maxBatchTokens}, MAX_BATCH_SIZE=${o.maxBatchSize}, PAD_MULTIPLE=${o.padMultiple}, WORKER_CONCURRENCY=${o.concurrency}.`,
  ],
  model: {
    ...model.description,
    outputs:
      "instant stand-in session (bench/ceiling/instant-session.ts); the generated 1-layer graph beside the tokenizer is only located and scanned at start-up",
  },
  h100: { gpu: h100.gpu, low: h100.low, high: h100.high, how: h100.how },
  cases,
  targets: [],
  notes: [
    "Other processes on the machine share its cores and caches: they lengthen the wall-clock figures and also raise the CPU seconds per chunk (the runs table shows the spread; the load average is in the header). Compare runs taken on a quiet machine.",
    "No end-to-end ratio is measured here: `npm run bench` measures those on the real (generated) model.",
    ...standInNotes(source, model),
  ],
};
results.targets = evaluateCeilingTargets(cases, h100);
const dir = path.resolve(repoRoot, o.out);
const file = displayPath(path.join(dir, `${resultsBaseName(results)}.json`));
log("\n" + renderCeilingTable(results));
for (const t of results.targets)
  log(`${t.met ? "met" : "MISSED"}: ${t.id}: ${+t.value.toPrecision(4)} (target ${t.comparator} ${t.threshold})`);
if (o.write) {
  const written = writeResults(dir, results, renderCeilingSummary(results, file));
  log(`wrote ${displayPath(written.json)} and ${displayPath(written.md)}`);
}
process.exit(0);
