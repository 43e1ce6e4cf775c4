/** Producer command line: `ingest` reads files and folders (JSONL, text, SRT, WebVTT,
 *  transcript JSON), chunks them with the model's tokenizer and enqueues one job per
 *  document; `stats` prints the queue's counts as JSON. Configuration comes from the same
 *  environment variables as the worker; flags override the chunking ones. */
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { Queue } from "bullmq";
import { loadConfigOrExit, type Config } from "../shared/config.js";
import { redisConnection } from "../shared/redis.js";
import { enqueueDocuments, enqueueOptionsFrom, StrictModeError, type EnqueueSummary } from "./enqueue.js";
import { expandInputs } from "./input-files.js";
import { queueStats } from "./queue-stats.js";
import { formatRequeueSummary, requeueFailed } from "./requeue-failed.js";
import { readDocuments, type InputFormat } from "./readers/index.js";
import { loadTokenCounter } from "./token-counter.js";
import type { ReadEvent } from "./document.js";

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number");
  return n;
};

async function* readAll(paths: string[], format: "auto" | InputFormat, idPrefix?: string): AsyncGenerator<ReadEvent> {
  for await (const file of expandInputs(paths)) yield* readDocuments(file, { format, idPrefix });
}

function printSummary(s: EnqueueSummary, ms: number, json: boolean, dryRun: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ ...s, elapsedMs: Math.round(ms), dryRun }, null, 2) + "\n");
    return;
  }
  const verb = dryRun ? "would enqueue" : "enqueued";
  process.stdout.write(`${verb} ${s.documents} documents as ${s.jobs} jobs: ${s.chunks} chunks, ${s.tokens} tokens in ${(ms / 1000).toFixed(1)} s\n`);
  if (s.skipped > 0) {
    process.stdout.write(`skipped ${s.skipped} records:\n`);
    for (const [reason, n] of Object.entries(s.skippedByReason)) process.stdout.write(`  ${n} x ${reason}\n`);
    for (const r of s.skippedSamples.slice(0, 10)) process.stdout.write(`  e.g. ${r.file}${r.line ? `:${r.line}` : ""}: ${r.reason}\n`);
  }
}

async function ingest(cfg: Config, paths: string[], o: { format: "auto" | InputFormat; idPrefix?: string; chunkTokens: number; overlap: number; priority?: number; dryRun?: boolean; strict?: boolean; json?: boolean }) {
  const countTokens = loadTokenCounter(path.join(cfg.MODEL_DIR, "tokenizer.json"));
  const connection = o.dryRun ? undefined : redisConnection(cfg.REDIS_URL, cfg);
  const queue = connection ? new Queue(cfg.QUEUE_NAME, { connection, prefix: cfg.QUEUE_PREFIX }) : undefined;
  const started = performance.now();
  try {
    const s = await enqueueDocuments(queue, readAll(paths, o.format, o.idPrefix), {
      ...enqueueOptionsFrom(cfg, countTokens),
      chunkTokens: o.chunkTokens, overlapTokens: o.overlap, priority: o.priority, dryRun: o.dryRun, strict: o.strict,
    });
    printSummary(s, performance.now() - started, Boolean(o.json), Boolean(o.dryRun));
    if (s.documents === 0 && s.skipped > 0) process.exitCode = 1;
  } catch (err) {
    if (err instanceof StrictModeError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
    } else throw err;
  } finally {
    await queue?.close();
    await connection?.quit();
  }
}

export function buildCli(cfg: () => Config): Command {
  const program = new Command("producer").description("Enqueue documents for embedding and inspect the queue");
  program
    .command("ingest")
    .description("read files or folders, chunk them by tokens and enqueue one job per document")
    .argument("<paths...>", "files or folders (.jsonl .ndjson .txt .md .srt .vtt .json)")
    .option("--format <format>", "auto | jsonl | text | srt | vtt | transcript-json", "auto")
    .option("--id-prefix <prefix>", "prefix for document ids taken from file names")
    .option("--chunk-tokens <n>", "target chunk size in tokens (default CHUNK_TOKENS)", positiveInt)
    .option("--overlap <n>", "overlap between chunks in tokens (default CHUNK_OVERLAP_TOKENS)", positiveInt)
    .option("--priority <n>", "BullMQ priority, 1 = highest (default: none, FIFO)", positiveInt)
    .option("--dry-run", "read, chunk and count tokens without enqueueing")
    .option("--strict", "stop at the first bad record instead of skipping it")
    .option("--json", "print the summary as JSON")
    .action(async (paths: string[], o) => {
      const c = cfg();
      await ingest(c, paths, { ...o, chunkTokens: o.chunkTokens ?? c.CHUNK_TOKENS, overlap: o.overlap ?? c.CHUNK_OVERLAP_TOKENS });
    });
  program
    .command("stats")
    .description("print the queue's job counts as JSON")
    .action(async () => {
      const c = cfg();
      const connection = redisConnection(c.REDIS_URL, c);
      const queue = new Queue(c.QUEUE_NAME, { connection, prefix: c.QUEUE_PREFIX });
      try {
        process.stdout.write(JSON.stringify({ queue: c.QUEUE_NAME, ...(await queueStats(queue)) }, null, 2) + "\n");
      } finally {
        await queue.close();
        await connection.quit();
      }
    });
  program
    .command("requeue-failed")
    .description("list failed jobs (id, document, attempts, reason, time) and move the matching ones back to waiting")
    .option("--reason <kinds>", "only reasons of these kinds, comma list (the part before the colon: sink, validation, inference, ...)")
    .option("--match <regex>", "only failed reasons matching this regular expression")
    .option("--limit <n>", "requeue at most n jobs, oldest failure first", positiveInt)
    .option("--dry-run", "list what would be requeued; move nothing")
    .option("--keep-attempts", "keep the attempt count: one more try instead of JOB_ATTEMPTS with backoff")
    .option("--json", "print the result as JSON")
    .action(async (o: { reason?: string; match?: string; limit?: number; dryRun?: boolean; keepAttempts?: boolean; json?: boolean }) => {
      let match: RegExp | undefined;
      try {
        match = o.match === undefined ? undefined : new RegExp(o.match);
      } catch (err) {
        throw new InvalidArgumentError(`--match: ${(err as Error).message}`);
      }
      const c = cfg();
      const connection = redisConnection(c.REDIS_URL, c);
      const queue = new Queue(c.QUEUE_NAME, { connection, prefix: c.QUEUE_PREFIX });
      try {
        const reasons = o.reason?.split(",").map((r) => r.trim()).filter(Boolean);
        const s = await requeueFailed(queue, { reasons, match, limit: o.limit, dryRun: o.dryRun, keepAttempts: o.keepAttempts });
        process.stdout.write(o.json ? JSON.stringify({ queue: c.QUEUE_NAME, ...s }, null, 2) + "\n" : formatRequeueSummary(s));
        if (s.jobs.some((j) => j.error)) process.exitCode = 1;
      } finally {
        await queue.close();
        await connection.quit();
      }
    });
  return program;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await buildCli(() => loadConfigOrExit()).parseAsync(process.argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
