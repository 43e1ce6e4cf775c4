/** `npm run bench:stale`: Qdrant write requests per document and throughput on a corpus of
 *  one-chunk documents (issue 15), for each way of removing stale points: `per-document` (one
 *  filtered delete per document, the behaviour before grouping: STALE_DELETE_MAX_DOCS=1),
 *  `grouped` (the defaults), `grouped-linger` (STALE_DELETE_LINGER_MS, to measure a waiting
 *  window) and `fresh` (jobs enqueued with `--fresh`: no delete at all). Each run is a first
 *  ingestion into an empty collection: a worker process (`node dist/worker/main.js`, the generated
 *  test model) on a fresh queue of the local Redis, writing through the real Qdrant client to the
 *  strict Qdrant-compatible test server in this process, which counts the requests. Documents are
 *  sentences of the reference transcripts (`../shared/data/transcripts`), or generated sentences
 *  when those are absent (said so in the output). Timed from the first enqueue to the last job
 *  completed; the producer, the worker, the test server and Redis share this machine's cores.
 *  Writes bench/results/stale/<time>-<commit>.json and .md. */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command } from "commander";
import { Queue } from "bullmq";
import { parseConfig } from "../../shared/config.js";
import { redisConnection } from "../../shared/redis.js";
import type { SourceDocument } from "../../producer/document.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { docText } from "../../kit/corpus.js";
import { testModel, uniqueQueue } from "../../kit/harness.js";
import { spawnWorker } from "../../kit/processes.js";
import { startQdrantTestServer, type QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { readCorpus, resolveCorpus } from "../lib/corpus.js";
import { gitInfo, machineInfo } from "../lib/machine.js";
import { repoRoot } from "../lib/paths.js";

const MODES = {
  "per-document": { env: { STALE_DELETE_MAX_DOCS: "1" }, fresh: false },
  "grouped-linger0": { env: { STALE_DELETE_LINGER_MS: "0" }, fresh: false },
  "grouped-linger10": { env: { STALE_DELETE_LINGER_MS: "10" }, fresh: false },
  fresh: { env: {}, fresh: true },
} as const;
type Mode = keyof typeof MODES;

interface RunResult {
  mode: Mode;
  round: number;
  documents: number;
  upserts: number;
  deletes: number;
  writesPerDocument: number;
  seconds: number;
  chunksPerSecond: number;
  failed: number;
  stored: number;
}

/** One-sentence documents: sentences of 20-300 characters from the corpus, evenly spread, de-duplicated. */
async function oneSentenceDocs(n: number): Promise<{ docs: SourceDocument[]; source: string }> {
  const corpus = resolveCorpus();
  const sentences = new Set<string>();
  if (corpus.kind === "reference") {
    for (const d of (await readCorpus(corpus)).docs)
      for (const seg of d.segments)
        for (const s of seg.text.split(/(?<=[.!?])\s+/)) if (s.length >= 20 && s.length <= 300) sentences.add(s.trim());
  }
  const all = [...sentences];
  let texts: string[];
  let source: string;
  if (all.length >= n) {
    texts = Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
    source = `${n} sentences of ${corpus.label}, evenly spread over ${all.length} distinct sentences of 20-300 characters`;
  } else {
    texts = Array.from({ length: n }, (_, i) => docText(i, 2));
    source = `GENERATED sentences (kit/corpus.ts docText): the reference transcripts are not beside this checkout`;
  }
  const docs = texts.map((text, i) => ({
    id: `s${i}`,
    kind: "text" as const,
    segments: [{ text }],
    metadata: {},
    source: { file: "bench" },
  }));
  return { docs, source };
}

async function runOnce(
  mode: Mode,
  round: number,
  docs: SourceDocument[],
  ctx: { server: QdrantTestServer; modelDir: string; redisUrl: string; workerEnv: Record<string, string> },
): Promise<RunResult> {
  const queueName = uniqueQueue("bench-stale");
  const collection = queueName.replace(/-/g, "_");
  const env = { QUEUE_NAME: queueName, COLLECTION: collection, MODEL_DIR: ctx.modelDir, REDIS_URL: ctx.redisUrl };
  const cfg = parseConfig({ ...ctx.workerEnv, ...env });
  const connection = redisConnection(ctx.redisUrl, cfg);
  const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
  const worker = await spawnWorker({ ...ctx.workerEnv, ...MODES[mode].env, ...env, QDRANT_URL: ctx.server.url });
  try {
    await worker.started;
    const countTokens = loadTokenCounter(path.join(ctx.modelDir, "tokenizer.json"));
    const t0 = performance.now();
    // Every completed job is kept, so the completed count reaches the number of jobs.
    const enqueue = { ...enqueueOptionsFrom(cfg, countTokens), removeOnComplete: docs.length };
    const s = await enqueueDocuments(queue, docs, { ...enqueue, fresh: MODES[mode].fresh });
    if (s.chunks !== docs.length) throw new Error(`expected one chunk per document, got ${s.chunks} chunks`);
    let counts = await queue.getJobCounts("completed", "failed");
    while (counts.completed + counts.failed < s.jobs) {
      worker.assertAlive();
      await new Promise((r) => setTimeout(r, 20));
      counts = await queue.getJobCounts("completed", "failed");
    }
    const seconds = (performance.now() - t0) / 1000;
    const reqs = ctx.server.requests.filter((r) => r.path.startsWith(`/collections/${collection}/points`));
    const upserts = reqs.filter((r) => r.method === "PUT" && r.path === `/collections/${collection}/points`).length;
    const deletes = reqs.filter((r) => r.path === `/collections/${collection}/points/delete`).length;
    return {
      mode,
      round,
      documents: docs.length,
      upserts,
      deletes,
      writesPerDocument: (upserts + deletes) / docs.length,
      seconds,
      chunksPerSecond: s.chunks / seconds,
      failed: counts.failed,
      stored: ctx.server.pointIds(collection).size,
    };
  } finally {
    await worker.stop();
    await queue.obliterate({ force: true });
    await queue.close();
    await connection.quit();
  }
}

const fmt = (x: number, d = 2) => x.toFixed(d);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function report(results: RunResult[], header: string[]): string {
  const lines = [
    ...header,
    "",
    "| mode | round | documents | upserts | deletes | writes/doc | seconds | chunks/s | failed | stored |",
  ];
  lines.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results)
    lines.push(
      `| ${r.mode} | ${r.round} | ${r.documents} | ${r.upserts} | ${r.deletes} | ${fmt(r.writesPerDocument, 3)} | ` +
        `${fmt(r.seconds)} | ${fmt(r.chunksPerSecond, 0)} | ${r.failed} | ${r.stored} |`,
    );
  lines.push("", "Medians over rounds:", "", "| mode | writes/doc | deletes | chunks/s |", "|---|---|---|---|");
  for (const mode of new Set(results.map((r) => r.mode))) {
    const rs = results.filter((r) => r.mode === mode);
    lines.push(
      `| ${mode} | ${fmt(median(rs.map((r) => r.writesPerDocument)), 3)} | ${median(rs.map((r) => r.deletes))} | ` +
        `${fmt(median(rs.map((r) => r.chunksPerSecond)), 0)} |`,
    );
  }
  return lines.join("\n") + "\n";
}

async function main(): Promise<void> {
  const o = new Command("bench:stale")
    .option("--docs <n>", "one-chunk documents per run", (v) => parseInt(v, 10), 2000)
    .option("--rounds <n>", "runs of each mode, interleaved", (v) => parseInt(v, 10), 1)
    .option("--modes <list>", `comma list of ${Object.keys(MODES).join(", ")}`, Object.keys(MODES).join(","))
    .option("--out <dir>", "results folder", path.join(repoRoot, "bench", "results", "stale"))
    .parse()
    .opts<{ docs: number; rounds: number; modes: string; out: string }>();
  const modes = o.modes.split(",").map((m) => m.trim()) as Mode[];
  for (const m of modes) if (!(m in MODES)) throw new Error(`unknown mode ${m}; expected ${Object.keys(MODES)}`);
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const model = await testModel();
  const { docs, source } = await oneSentenceDocs(o.docs);
  const workerEnv = { MAX_SEQ_LENGTH: "512", MAX_BATCH_TOKENS: "8192", CHUNK_TOKENS: "512", LOG_LEVEL: "info" };
  const server = await startQdrantTestServer();
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const results: RunResult[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++)
      for (const mode of modes) {
        const r = await runOnce(mode, round, docs, { server, modelDir: model.dir, redisUrl, workerEnv });
        process.stderr.write(`${mode} #${round}: ${JSON.stringify(r)}\n`);
        results.push(r);
      }
  } finally {
    await server.close();
  }
  machine.loadAverage.end = os.loadavg()[0];
  const git = gitInfo();
  const header = [
    `# Stale-point removal on one-chunk documents (npm run bench:stale -- --docs ${o.docs} --rounds ${o.rounds} --modes ${modes.join(",")})`,
    "",
    `- started ${startedAt}, commit ${git.commit}${git.dirty ? " (dirty)" : ""}`,
    `- machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, 1-min load ${fmt(machine.loadAverage.start)} → ${fmt(machine.loadAverage.end)}; ` +
      "SHARED with other work: timings are noisy, compare modes within one run only",
    `- documents: ${source}`,
    "- model: the GENERATED TEST MODEL (random weights, tiny), not BGE-M3; Qdrant: the in-process STRICT TEST SERVER " +
      "(not a real Qdrant), which counts requests; a worker process on the local Redis",
    `- worker settings: ${Object.entries(workerEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}, others default; per mode: ${modes.map((m) => `${m} ${JSON.stringify(MODES[m])}`).join("; ")}`,
    "- writes/doc = (upsert requests + delete requests) / documents; seconds = first enqueue to last job completed",
  ];
  const md = report(results, header);
  process.stdout.write(md);
  mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${startedAt.replace(/[:.]/g, "-").slice(0, 19)}Z-${git.commit}`);
  writeFileSync(
    `${base}.json`,
    JSON.stringify({ startedAt, git, machine, source, workerEnv, modes, results }, null, 2) + "\n",
  );
  writeFileSync(`${base}.md`, md);
  process.stderr.write(`wrote ${path.relative(repoRoot, base)}.json and .md\n`);
}

await main();
