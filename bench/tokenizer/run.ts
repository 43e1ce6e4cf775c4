/** Tokens per CPU-second and memory of one tokenizer thread, for each TOKENIZER_BACKEND, through
 *  the worker's own TokenizerPool (tokenizer-thread.ts: <s>/</s>, truncation to MAX_SEQ_LENGTH), on
 *  the real XLM-R 250k tokenizer and the reference transcripts cut by the producer's chunker into
 *  16-, 128- and 512-token chunks. Trades breadth for isolation: each backend runs in a child
 *  process of its own (one pool thread, tasks of 64 texts as a job brings them), so its RSS and CPU
 *  time are its alone. CPU time is the whole child's (main thread, pool thread, and the libuv
 *  thread the native backend encodes on), so tokens per CPU-second do not depend on what else the
 *  machine runs; wall time does. Also checks that both backends give identical ids per chunk and
 *  measures RSS with one and with two pool threads (the second thread's cost). Usage:
 *  `npm run bench:tokenizer -- [--tokens N] [--corpus DIR]` (N: tokens of chunks per size, default
 *  300,000); writes bench/results/tokenizer/. */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { chunkDocument } from "../../producer/chunker.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import type { TokenizerBackend } from "../../worker/adapters/tokenizer-backend.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import { readCorpus, resolveCorpus } from "../lib/corpus.js";
import { gitInfo, machineInfo } from "../lib/machine.js";
import { referenceRoot, repoRoot } from "../lib/paths.js";
import { writeResults } from "../lib/results-file.js";

const SIZES = [16, 128, 512];
const TASK = 64; // texts per pool task: a job's chunks (MAX_CHUNKS_PER_JOB)
const MIB = 2 ** 20;

interface ChildResult {
  backend: TokenizerBackend;
  threads: number;
  rssBeforeMiB: number;
  rssReadyMiB: number;
  peakRssMiB?: number;
  sizes?: Array<{ size: number; chunks: number; tokens: number; cpuSeconds: number; wallSeconds: number }>;
  hashes?: string[][];
}

const rss = () => Math.round(process.memoryUsage().rss / MIB);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const peak = () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024);

async function child(backend: TokenizerBackend, threads: number, tokenizerPath: string, sets?: string): Promise<void> {
  const rssBefore = rss();
  const pool = new TokenizerPool({ tokenizerPath, maxLength: 8192, eosId: 2, backend, threads });
  await pool.ready();
  const out: ChildResult = { backend, threads, rssBeforeMiB: rssBefore, rssReadyMiB: rss() };
  if (sets) {
    const chunkSets = JSON.parse(readFileSync(sets, "utf8")) as string[][];
    out.sizes = [];
    out.hashes = [];
    for (const [k, all] of chunkSets.entries()) {
      // The first third warms up (JIT, the native tokenizer's word cache): a worker runs for hours.
      const warm = Math.floor(all.length / 3);
      for (let i = 0; i < warm; i += TASK) await pool.encode(all.slice(i, Math.min(i + TASK, warm)));
      const texts = all.slice(warm);
      const hashes: string[] = [];
      let tokens = 0;
      const c0 = cpu();
      const t0 = performance.now();
      for (let i = 0; i < texts.length; i += TASK) {
        for (const c of await pool.encode(texts.slice(i, i + TASK))) {
          tokens += c.ids.length;
          hashes.push(createHash("sha1").update(c.ids).digest("hex").slice(0, 12));
        }
      }
      const wallSeconds = (performance.now() - t0) / 1000;
      out.sizes.push({ size: SIZES[k], chunks: texts.length, tokens, cpuSeconds: cpu() - c0, wallSeconds });
      out.hashes.push(hashes);
    }
    out.peakRssMiB = peak();
  }
  await pool.close();
  process.stdout.write(JSON.stringify(out));
}

function runChild(backend: TokenizerBackend, threads: number, tokenizerPath: string, sets?: string): ChildResult {
  const args = [fileURLToPath(import.meta.url), "--child", backend, String(threads), tokenizerPath];
  const out = execFileSync(process.execPath, sets ? [...args, sets] : args, { encoding: "utf8", maxBuffer: 2 ** 28 });
  return JSON.parse(out) as ChildResult;
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const perSize = Number(option("--tokens") ?? 300_000);
  const startedAt = new Date().toISOString();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "bench-tokenizer-"));
  try {
    const dir = path.join(referenceRoot, "reference", "tokenizers", "xlm-roberta-250k");
    const gz = readdirSync(dir).find((f) => f.endsWith(".json.gz"));
    if (!gz)
      throw new Error("the reference XLM-R tokenizer (../shared/reference/tokenizers/xlm-roberta-250k) is missing");
    const tokenizerPath = path.join(tmp, "tokenizer.json");
    writeFileSync(tokenizerPath, gunzipSync(readFileSync(path.join(dir, gz))));
    const source = resolveCorpus(option("--corpus"));
    const { docs } = await readCorpus(source);
    const countTokens = loadTokenCounter(tokenizerPath);
    // Chunks of each size, documents taken in order until the size has `perSize` tokens.
    const sets = SIZES.map((size) => {
      const texts: string[] = [];
      let tokens = 0;
      for (const doc of docs) {
        for (const c of chunkDocument(doc, { targetTokens: size, overlapTokens: 0, countTokens })) {
          texts.push(c.text);
          tokens += c.tokens;
        }
        if (tokens >= perSize) break;
      }
      return texts;
    });
    const setsFile = path.join(tmp, "sets.json");
    writeFileSync(setsFile, JSON.stringify(sets));
    const machine = machineInfo();
    const runs = (["native", "js"] as const).map((b) => runChild(b, 1, tokenizerPath, setsFile));
    const twoThreads = (["native", "js"] as const).map((b) => runChild(b, 2, tokenizerPath));
    machine.loadAverage.end = os.loadavg()[0];
    const identical = runs[0].hashes!.map((h, k) => h.filter((x, i) => x === runs[1].hashes![k][i]).length);
    const timed = runs[0].hashes!.map((h) => h.length);
    const rows = runs.flatMap((r) =>
      r.sizes!.map((s) => ({
        backend: r.backend,
        ...s,
        tokensPerCpuSecond: Math.round(s.tokens / s.cpuSeconds),
        tokensPerSecond: Math.round(s.tokens / s.wallSeconds),
      })),
    );
    const memory = runs.map((r, i) => ({
      backend: r.backend,
      oneThreadMiB: r.rssReadyMiB - r.rssBeforeMiB,
      secondThreadMiB: twoThreads[i].rssReadyMiB - twoThreads[i].rssBeforeMiB - (r.rssReadyMiB - r.rssBeforeMiB),
      peakRssAfterRunMiB: r.peakRssMiB,
    }));
    const results = {
      startedAt,
      git: gitInfo(),
      machine,
      method:
        `one TokenizerPool thread per child process, tasks of ${TASK} texts, the first third of each size's ` +
        "chunks as warm-up, CPU time of the whole child over the rest (process.cpuUsage); memory = RSS after " +
        "the pool is ready minus before it starts",
      corpus: source.label,
      tokenizer: `reference XLM-R 250k (${gz})`,
      identicalIds: SIZES.map((size, k) => ({ size, chunks: timed[k], identical: identical[k] })),
      throughput: rows,
      memory,
    };
    const md = [
      `# Tokenizer backends (${startedAt})`,
      "",
      `Machine: ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, load average ${machine.loadAverage.start.toFixed(2)} → ${machine.loadAverage.end.toFixed(2)} (a shared machine: other work moves wall times, less so CPU-seconds).`,
      `Method: ${results.method}. Corpus: ${source.label}. Tokenizer: ${results.tokenizer}.`,
      "",
      "| backend | chunk tokens | chunks | tokens | tokens per CPU-second | tokens per second (wall) |",
      "|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.backend} | ${r.size} | ${r.chunks} | ${r.tokens} | ${r.tokensPerCpuSecond} | ${r.tokensPerSecond} |`,
      ),
      "",
      "| backend | RSS of one thread, MiB | RSS of a second thread, MiB | peak RSS of the child after the run, MiB |",
      "|---|---|---|---|",
      ...memory.map((m) => `| ${m.backend} | ${m.oneThreadMiB} | ${m.secondThreadMiB} | ${m.peakRssAfterRunMiB} |`),
      "",
      "Identical ids (native vs js): " +
        results.identicalIds.map((x) => `${x.size}-token chunks ${x.identical}/${x.chunks}`).join(", "),
      "",
    ].join("\n");
    const written = writeResults(path.join(repoRoot, "bench", "results", "tokenizer"), results, md);
    process.stdout.write(md + `\nwritten: ${path.relative(repoRoot, written.json)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") {
  const [backend, threads, tokenizerPath, sets] = process.argv.slice(3);
  await child(backend as TokenizerBackend, Number(threads), tokenizerPath, sets);
} else {
  await main();
}
