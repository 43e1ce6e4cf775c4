/** `npm run bench:pack -- [options]` (`--help` lists them): what packing small documents saves
 *  Redis (issue 16, item 3). One-sentence documents (sentences of the reference transcripts'
 *  segments, in corpus order) are enqueued by the producer library, packed and unpacked in turn,
 *  and embedded by real worker processes on the generated test model into the strict Qdrant test
 *  server in this process (the Qdrant stand-in). Each mode gets its own private `redis-server`
 *  (no persistence) started here, so its CPU time can be read from /proc/<pid>/stat, and its
 *  `INFO commandstats` gives the commands. The window runs from the first enqueue to the last
 *  job done (workers started and idle before it), so producer and worker commands both count.
 *  Prints how it ran and the figures, and writes bench/results/pack/<timestamp>-<commit>.json with
 *  a Markdown summary beside it. Exits non-zero when a run went wrong (failed jobs, points missing). */
import { writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { Queue } from "bullmq";
import { parseConfig } from "../../shared/config.js";
import { redisConnection, type RedisClient } from "../../shared/redis.js";
import type { SourceDocument } from "../../producer/document.js";
import { splitSentences } from "../../producer/chunk-atoms.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { packBoundsFrom } from "../../producer/packer.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { freePort, testModel, waitFor } from "../../kit/harness.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import { startChild, type Child } from "../../kit/reliability.js";
import { startQdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { processCpuSeconds } from "../lib/cpu.js";
import { readCorpus, resolveCorpus } from "../lib/corpus.js";
import { startRun } from "../lib/harness.js";
import { repoRoot } from "../lib/paths.js";

const program = new Command("bench:pack")
  .description("chunks/s and Redis CPU per chunk, packed vs unpacked one-sentence documents")
  .option("--docs <n>", "one-sentence documents per mode", (v) => parseInt(v, 10), 100_000)
  .option("--modes <list>", "comma list of packed, unpacked (in this order)", "unpacked,packed")
  .option("--workers <n>", "worker processes", (v) => parseInt(v, 10), 1)
  .option("--concurrency <n>", "WORKER_CONCURRENCY of each worker (jobs in flight)", (v) => parseInt(v, 10), 256)
  .option("--corpus <folder>", "corpus folder (default: the reference transcripts when present)")
  .option("--out <folder>", "results folder (default bench/results/pack)")
  .option("--no-write", "print only; write no results file")
  .parse(process.argv);
const o = program.opts<{
  docs: number;
  modes: string;
  workers: number;
  concurrency: number;
  corpus?: string;
  out?: string;
  write: boolean;
}>();
const log = console.log;

/** Budgets for the generated model: small, so warm-up is quick and memory small (a shared machine). */
const WORKER_ENV = {
  LOG_LEVEL: "info", // the "worker started" line tells the harness the worker is up
  MAX_SEQ_LENGTH: "128",
  MAX_BATCH_TOKENS: "4096",
  MAX_BATCH_ATTENTION: "16384",
  CHUNK_TOKENS: "128",
  STORE_TEXT: "false",
  REMOVE_ON_COMPLETE: "1000",
};

/** `n` one-sentence documents: the corpus's sentences in order (repeated with a new id when fewer). */
function sentenceDocs(docs: SourceDocument[], n: number): { docs: SourceDocument[]; unique: number } {
  const sentences: string[] = [];
  for (const d of docs)
    for (const s of d.segments)
      for (const t of splitSentences(s.text)) if (t.trim().split(/\s+/).length >= 3) sentences.push(t.trim());
  if (sentences.length === 0) throw new Error("the corpus holds no sentence of three words or more");
  const out: SourceDocument[] = [];
  for (let i = 0; i < n; i++) {
    const text = sentences[i % sentences.length];
    out.push({ id: `s${i}`, kind: "text", segments: [{ text }], metadata: {}, source: { file: "bench" } });
  }
  return { docs: out, unique: Math.min(n, sentences.length) };
}

async function commandStats(c: RedisClient): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const line of (await c.info("commandstats")).split("\n")) {
    const r = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (r) m.set(r[1], Number(r[2]));
  }
  return m;
}

async function startRedis(): Promise<{ url: string; pid: number; child: Child }> {
  const port = await freePort();
  const child = startChild("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--logfile",
    "",
  ]);
  const url = `redis://127.0.0.1:${port}`;
  const c = redisConnection(url);
  c.on("error", () => undefined); // refused until the server listens: waitFor retries
  await waitFor(async () => (await c.ping().catch(() => "")) === "PONG", 10_000, "redis-server answering");
  await c.quit();
  return { url, pid: child.proc.pid!, child };
}

interface ModeResult {
  mode: string;
  documents: number;
  chunks: number;
  jobs: number;
  wallSeconds: number;
  enqueueSeconds: number;
  chunksPerSecond: number;
  redisCpuSeconds: number;
  redisCpuMsPerChunk: number;
  redisCommands: number;
  redisCommandsPerChunk: number;
  redisCommandsPerJob: number;
  topCommands: Record<string, number>;
  workerCpuSeconds: number;
  failedJobs: number;
  pointsStored: number;
}

async function runMode(mode: string, docs: SourceDocument[], modelDir: string): Promise<ModeResult> {
  const redis = await startRedis();
  const server = await startQdrantTestServer();
  const connection = redisConnection(redis.url);
  const queueName = `bench-pack-${mode}`;
  const collection = `bench_pack_${mode}`;
  const env = { ...WORKER_ENV, REDIS_URL: redis.url, QUEUE_NAME: queueName, QDRANT_URL: server.url };
  const cfg = parseConfig({ ...env, MODEL_DIR: modelDir, COLLECTION: collection });
  const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
  const workers: ChildWorker[] = [];
  try {
    for (let i = 0; i < o.workers; i++)
      workers.push(
        await spawnWorker({
          ...env,
          MODEL_DIR: modelDir,
          COLLECTION: collection,
          WORKER_CONCURRENCY: String(o.concurrency),
        }),
      );
    await Promise.all(workers.map((w) => w.started));
    const countTokens = loadTokenCounter(path.join(modelDir, "tokenizer.json"));
    const opts = { ...enqueueOptionsFrom(cfg, countTokens), bulkSize: 500 };
    const cpu0 = processCpuSeconds(redis.pid);
    const w0 = workers.map((w) => processCpuSeconds(w.proc.pid!));
    const cmd0 = await commandStats(connection);
    const t0 = performance.now();
    const summary = await enqueueDocuments(
      queue,
      docs,
      mode === "packed" ? { ...opts, pack: packBoundsFrom(cfg) } : opts,
    );
    const enqueueSeconds = (performance.now() - t0) / 1000;
    await waitFor(
      async () => {
        for (const w of workers) w.assertAlive();
        const c = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
        return c.waiting + c.prioritized + c.active + c.delayed === 0;
      },
      3_600_000,
      "the backlog to drain",
    );
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu1 = processCpuSeconds(redis.pid);
    const cmd1 = await commandStats(connection);
    const workerCpuSeconds = workers.reduce((n, w, i) => n + processCpuSeconds(w.proc.pid!) - w0[i], 0);
    const deltas = [...cmd1].map(([k, v]) => [k, v - (cmd0.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
    const redisCommands = deltas.reduce((n, [, v]) => n + v, 0);
    const failedJobs = (await queue.getJobCounts("failed")).failed;
    const chunks = summary.chunks;
    const redisCpuSeconds = cpu1 - cpu0;
    return {
      mode,
      documents: summary.documents,
      chunks,
      jobs: summary.jobs,
      wallSeconds,
      enqueueSeconds,
      chunksPerSecond: chunks / wallSeconds,
      redisCpuSeconds,
      redisCpuMsPerChunk: (1000 * redisCpuSeconds) / chunks,
      redisCommands,
      redisCommandsPerChunk: redisCommands / chunks,
      redisCommandsPerJob: redisCommands / summary.jobs,
      topCommands: Object.fromEntries([...deltas].sort((a, b) => b[1] - a[1]).slice(0, 6)),
      workerCpuSeconds,
      failedJobs,
      pointsStored: server.pointIds(collection).size,
    };
  } finally {
    for (const w of workers) await w.stop("SIGTERM", 30_000).catch(() => undefined);
    await queue.close();
    await connection.quit();
    await server.close();
    await redis.child.stop("SIGKILL").catch(() => undefined);
  }
}

const f = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<number> {
  const run = startRun(log);
  const source = resolveCorpus(o.corpus);
  const corpus = await readCorpus(source);
  const { docs, unique } = sentenceDocs(corpus.docs, o.docs);
  const model = await testModel();
  log(`corpus: ${source.label}; ${docs.length} one-sentence documents (${unique} distinct sentences)`);
  if (source.kind === "sample") log("NOTE: the bundled synthetic sample, not real transcripts.");
  log(
    `method: per mode a private redis-server (no persistence), the strict Qdrant test server in this process ` +
      `(the Qdrant stand-in), ${o.workers} worker process(es) on the generated test model (tiny, not BGE-M3; ` +
      `MAX_SEQ_LENGTH=${WORKER_ENV.MAX_SEQ_LENGTH}, MAX_BATCH_TOKENS=${WORKER_ENV.MAX_BATCH_TOKENS}, ` +
      `WORKER_CONCURRENCY=${o.concurrency}); window = first enqueue to empty backlog; Redis CPU from /proc/<pid>/stat, ` +
      `commands from INFO commandstats (includes this script's few polls). The machine may be shared: timings are noisy.`,
  );
  const results: ModeResult[] = [];
  for (const mode of o.modes.split(",").map((m) => m.trim())) {
    if (mode !== "packed" && mode !== "unpacked") throw new Error(`--modes: unknown mode "${mode}"`);
    const r = await runMode(mode, docs, model.dir);
    results.push(r);
    log(
      `${mode}: ${r.documents} documents, ${r.chunks} chunks in ${r.jobs} jobs; ${f(r.wallSeconds, 1)} s ` +
        `(enqueue ${f(r.enqueueSeconds, 1)} s); ${f(r.chunksPerSecond, 0)} chunks/s; Redis CPU ${f(r.redisCpuSeconds)} s = ` +
        `${f(r.redisCpuMsPerChunk, 4)} ms/chunk; ${r.redisCommands} commands = ${f(r.redisCommandsPerChunk)}/chunk, ` +
        `${f(r.redisCommandsPerJob, 1)}/job; worker CPU ${f(r.workerCpuSeconds, 1)} s; failed ${r.failedJobs}; ` +
        `points ${r.pointsStored}`,
    );
  }
  const md = [
    `# bench:pack ${run.started.toISOString()} (commit ${run.git.commit}${run.git.dirty ? ", dirty" : ""})`,
    "",
    `Machine: ${run.machine.cpus} x ${run.machine.cpuModel}, Node ${run.machine.node}; shared with other work, timings are noisy.`,
    `Corpus: ${source.label}; ${docs.length} one-sentence documents (${unique} distinct).`,
    `Model: generated test model (tiny, not BGE-M3). Sink: strict Qdrant test server (stand-in). Workers: ${o.workers}, WORKER_CONCURRENCY=${o.concurrency}.`,
    "",
    "| mode | docs | chunks | jobs | wall s | chunks/s | Redis CPU s | Redis CPU ms/chunk | commands/chunk | commands/job |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.map(
      (r) =>
        `| ${r.mode} | ${r.documents} | ${r.chunks} | ${r.jobs} | ${f(r.wallSeconds, 1)} | ${f(r.chunksPerSecond, 0)} | ` +
        `${f(r.redisCpuSeconds)} | ${f(r.redisCpuMsPerChunk, 4)} | ${f(r.redisCommandsPerChunk)} | ${f(r.redisCommandsPerJob, 1)} |`,
    ),
    "",
  ].join("\n");
  if (o.write) {
    const dir = o.out ? path.resolve(o.out) : path.join(repoRoot, "bench", "results", "pack");
    mkdirSync(dir, { recursive: true });
    const base = path.join(
      dir,
      `${run.started
        .toISOString()
        .replace(/\.\d+Z$/, "Z")
        .replace(/:/g, "-")}-${run.git.commit}`,
    );
    const json = {
      startedAt: run.started.toISOString(),
      git: run.git,
      machine: run.machine,
      args: process.argv.slice(2),
      corpus: source.label,
      documents: docs.length,
      distinctSentences: unique,
      workerEnv: WORKER_ENV,
      workers: o.workers,
      concurrency: o.concurrency,
      results,
    };
    writeFileSync(`${base}.json`, JSON.stringify(json, null, 2) + "\n");
    writeFileSync(`${base}.md`, md);
    log(`results: ${o.out ? base : path.relative(repoRoot, base)}.json and .md`);
  }
  const bad = results.filter((r) => r.failedJobs > 0 || r.pointsStored !== r.chunks);
  for (const r of bad)
    log(`PROBLEM: ${r.mode}: ${r.failedJobs} failed jobs, ${r.pointsStored} of ${r.chunks} points stored`);
  return bad.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
