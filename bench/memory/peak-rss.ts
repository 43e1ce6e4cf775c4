/** Peak memory of a whole worker process (`npm run worker`) at the settings in the environment, on a
 *  corpus: the worker starts on the bench's generated model (6 layers, 384 hidden, 6 heads, the
 *  reference XLM-R tokenizer when present), the producer enqueues the corpus, and the worker's
 *  peak RSS (VmHWM) is read after the warm-up and after every chunk is written (JSONL sink). Trades
 *  breadth for one honest figure per run: one worker, one corpus, no timing. Issue 15's target: a
 *  CPU worker at defaults peaks under 1.5 GB. Usage: `node dist/bench/memory/peak-rss.js [corpus
 *  folder]`, with worker settings (e.g. MAX_BATCH_ATTENTION) in the environment. Uses Redis at
 *  REDIS_URL with a fresh queue, removed afterwards. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { configShape } from "../../shared/config.js";
import { ensureBenchModel } from "../lib/bench-model.js";
import { referenceRoot, repoRoot } from "../lib/paths.js";

const corpus = process.argv[2] ?? path.join(referenceRoot, "data", "transcripts");
const MIB = 1024 * 1024;

function vmHwm(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

function lineCount(file: string): number {
  if (!existsSync(file)) return 0;
  const text = readFileSync(file, "utf8");
  return text.length === 0 ? 0 : text.split("\n").filter(Boolean).length;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(
      () => reject(new Error(`no "${pattern.source}" within ${timeoutMs} ms:\n${buf}`)),
      timeoutMs,
    );
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const line = buf.split("\n").find((l) => pattern.test(l));
      if (line) {
        clearTimeout(timer);
        resolve(buf);
      }
    });
    child.once("exit", (code) => reject(new Error(`worker exited with ${code} before "${pattern.source}":\n${buf}`)));
  });
}

async function main(): Promise<void> {
  const model = await ensureBenchModel(
    { layers: 6, hidden: 384, heads: 6, intermediate: 1536, tokenizer: "auto", generatedVocab: 8000 },
    false,
  );
  const tmp = mkdtempSync(path.join(os.tmpdir(), "peak-rss-"));
  const queueName = `peak-rss-${process.pid}-${Date.now()}`;
  const own = Object.fromEntries(
    Object.keys(configShape).flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])),
  );
  const env = {
    PATH: process.env.PATH ?? "",
    ...own,
    MODEL_DIR: model.files.dir,
    QUEUE_NAME: queueName,
    HTTP_PORT: "0",
    SINK_FILE: path.join(tmp, "vectors.jsonl"),
    LOG_LEVEL: "info",
  };
  const worker = spawn(process.execPath, [path.join(repoRoot, "dist", "worker", "main.js")], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const queue = new Queue(queueName, {
    connection: { url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" } as never,
  });
  try {
    const startLog = await waitForLine(worker, /"worker started"/, 300_000);
    const afterWarmUp = vmHwm(worker.pid!);
    const largest = startLog.split("\n").find((l) => l.includes("largest batch the planner"));
    const ingest = spawn(
      process.execPath,
      [path.join(repoRoot, "dist", "producer", "cli.js"), "ingest", "--json", corpus],
      {
        env,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    ingest.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    await new Promise((r) => ingest.once("exit", r));
    const summary = JSON.parse(out.slice(out.indexOf("{"))) as { chunks: number; jobs?: number };
    const t0 = performance.now();
    while (lineCount(env.SINK_FILE) < summary.chunks) await new Promise((r) => setTimeout(r, 500));
    const seconds = (performance.now() - t0) / 1000;
    const peak = vmHwm(worker.pid!);
    console.log(
      JSON.stringify({
        settings: own,
        model: model.description,
        chunks: summary.chunks,
        seconds: Number(seconds.toFixed(1)),
        largestBatch: largest ? JSON.parse(largest) : undefined,
        peakRssMiBAfterWarmUp: Math.round(afterWarmUp / MIB),
        peakRssMiB: Math.round(peak / MIB),
      }),
    );
  } finally {
    worker.kill("SIGTERM");
    await new Promise((r) => (worker.exitCode === null ? worker.once("exit", r) : r(undefined)));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
