/** Producer command line: `ingest` reads files and folders (JSONL, text, SRT, WebVTT,
 *  transcript JSON), chunks them with the model's tokenizer and enqueues one job per
 *  document; `backfill` does the same for whole archives (streamed, backpressure, resumable,
 *  below live traffic in priority; see backfill.ts); `stats` prints the queue's counts as
 *  JSON. Configuration comes from the same environment variables as the worker; flags
 *  override the chunking ones. */
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { Queue } from "bullmq";
import { loadConfigOrExit, type Config } from "../shared/config.js";
import { redisConnection } from "../shared/redis.js";
import { BACKFILL_DEFAULTS, BackfillError, runBackfill, type BackfillSummary } from "./backfill.js";
import { CheckpointError } from "./backfill/checkpoint.js";
import { formatSeconds } from "./backfill/progress.js";
import { enqueueDocuments, enqueueOptionsFrom, StrictModeError, type EnqueueSummary } from "./enqueue.js";
import { formatBytes } from "./readers/reader-errors.js";
import { inputEntries } from "./input-files.js";
import { intInRange } from "../shared/cli-options.js";
import { queueStats } from "./queue-stats.js";
import { formatRequeueSummary, requeueFailed } from "./requeue-failed.js";
import { readDocuments, type InputFormat } from "./readers/index.js";
import { loadTokenCounter } from "./token-counter.js";
import { skippedEvent, type ReadEvent, type SourceDocument } from "./document.js";
import type { ChunkProgress } from "./chunker.js";

const wholeNumber = intInRange(0);
const atLeastOne = intInRange(1);
const positiveNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
};
const DUPLICATE_IDS_HELP =
  "enqueue a document whose id an earlier one in this run had (it overwrites its points); default: skip it, counted";
/** BullMQ's priority range. */
const priority = intInRange(1, 2_097_151);

async function* readAll(paths: string[], format: "auto" | InputFormat, idPrefix?: string): AsyncGenerator<ReadEvent> {
  for await (const e of inputEntries(paths)) {
    if (e.kind === "skipped") yield skippedEvent(e.file, e.reason);
    else yield* readDocuments(e.file, { format, idPrefix });
  }
}

/** Progress lines on stderr while one document takes longer than `everyMs` to chunk (a multi-MiB cue). */
function chunkProgressLog(everyMs = 5000): (doc: SourceDocument, p: ChunkProgress) => void {
  let current: SourceDocument | undefined;
  let started = 0;
  let last = 0;
  return (doc, p) => {
    const now = performance.now();
    if (doc !== current) [current, started, last] = [doc, now, now];
    if (now - last < everyMs) return;
    last = now;
    const pct = p.totalChars === 0 ? 100 : Math.floor((100 * p.chars) / p.totalChars);
    const mchars = (n: number) => (n / 1e6).toFixed(1);
    process.stderr.write(
      `chunking ${doc.source.file}: ${pct}% (${mchars(p.chars)} of ${mchars(p.totalChars)} M characters), ` +
        `${p.chunks} chunks, ${((now - started) / 1000).toFixed(0)} s\n`,
    );
  };
}

function printSummary(s: EnqueueSummary, ms: number, json: boolean, dryRun: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ ...s, elapsedMs: Math.round(ms), dryRun }, null, 2) + "\n");
    return;
  }
  const verb = dryRun ? "would enqueue" : "enqueued";
  process.stdout.write(`${verb} ${s.documents} documents as ${s.jobs} jobs: ${s.chunks} chunks, ${s.tokens} tokens in ${(ms / 1000).toFixed(1)} s\n`);
  if (s.repaired > 0) {
    process.stdout.write(`repaired ${s.repaired} documents: invalid UTF-8 or lone surrogates became U+FFFD\n`);
  }
  if (s.skipped > 0) {
    process.stdout.write(`skipped ${s.skipped} records:\n`);
    for (const [reason, n] of Object.entries(s.skippedByReason)) process.stdout.write(`  ${n} x ${reason}\n`);
    for (const r of s.skippedSamples.slice(0, 10)) process.stdout.write(`  e.g. ${r.file}${r.line ? `:${r.line}` : ""}: ${r.reason}\n`);
  }
}

interface IngestOptions {
  format: "auto" | InputFormat;
  idPrefix?: string;
  chunkTokens: number;
  overlap: number;
  priority?: number;
  dryRun?: boolean;
  strict?: boolean;
  json?: boolean;
  skipUnchanged?: boolean;
  allowDuplicateIds?: boolean;
}

async function ingest(cfg: Config, paths: string[], o: IngestOptions) {
  const countTokens = loadTokenCounter(path.join(cfg.MODEL_DIR, "tokenizer.json"));
  const connection = o.dryRun ? undefined : redisConnection(cfg.REDIS_URL, cfg);
  const queue = connection ? new Queue(cfg.QUEUE_NAME, { connection, prefix: cfg.QUEUE_PREFIX }) : undefined;
  const started = performance.now();
  try {
    const s = await enqueueDocuments(queue, readAll(paths, o.format, o.idPrefix), {
      ...enqueueOptionsFrom(cfg, countTokens),
      chunkTokens: o.chunkTokens, overlapTokens: o.overlap, priority: o.priority, dryRun: o.dryRun, strict: o.strict, skipUnchanged: o.skipUnchanged,
      allowDuplicateIds: o.allowDuplicateIds, onChunkProgress: o.json ? undefined : chunkProgressLog(),
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
    .option("--chunk-tokens <n>", "target chunk size in tokens (default CHUNK_TOKENS)", wholeNumber)
    .option("--overlap <n>", "overlap between chunks in tokens (default CHUNK_OVERLAP_TOKENS)", wholeNumber)
    .option("--priority <n>", "BullMQ priority, 1 = highest (default: none, FIFO)", wholeNumber)
    .option("--dry-run", "read, chunk and count tokens without enqueueing")
    .option("--strict", "stop at the first bad record instead of skipping it")
    .option("--skip-unchanged", "workers skip chunks whose stored point has the same content hash and model")
    .option("--allow-duplicate-ids", DUPLICATE_IDS_HELP)
    .option("--json", "print the summary as JSON")
    .action(async (paths: string[], o) => {
      const c = cfg();
      await ingest(c, paths, { ...o, chunkTokens: o.chunkTokens ?? c.CHUNK_TOKENS, overlap: o.overlap ?? c.CHUNK_OVERLAP_TOKENS });
    });
  addBackfillCommand(program, cfg);
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
    .option("--limit <n>", "requeue at most n jobs, oldest failure first", wholeNumber)
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

function printBackfillSummary(s: BackfillSummary): void {
  const out: string[] = [];
  const r = s.run;
  if (s.alreadyComplete) out.push(`backfill ${s.runId} was already complete (${s.checkpoint}); nothing to do (--restart to run it again)`);
  else {
    const verb = s.dryRun ? "would enqueue" : "enqueued";
    out.push(`backfill ${s.runId}: ${verb} ${r.documents} documents as ${r.jobs} jobs: ${r.chunks} chunks, ${r.tokens} tokens from ${r.files} files (${formatBytes(r.bytes)}) in ${s.elapsedSeconds} s${s.interrupted ? " (interrupted)" : ""}`);
  }
  if (s.resumed || s.alreadyComplete) out.push(`  whole run so far: ${s.total.documents} documents, ${s.total.jobs} jobs, ${s.total.chunks} chunks, ${s.total.tokens} tokens, ${s.total.files} files`);
  if (s.checkpoint) out.push(`  checkpoint: ${s.checkpoint} (${s.complete ? "complete" : "resumable"})`);
  if (s.alreadyComplete) {
    process.stdout.write(out.join("\n") + "\n");
    return;
  }
  if (s.backlog) out.push(`  backlog: peak ${s.backlog.peakJobs} jobs / ${s.backlog.peakChunks} chunks (high-water ${s.backlog.highJobs} / ${s.backlog.highChunks}), paused ${s.backlog.pauses} times for ${s.backlog.pausedSeconds} s; priority ${s.priority}`);
  if (s.worker) out.push(`  workers (this invocation's jobs${s.worker.drained ? ", all finished" : ", seen so far"}): ${s.worker.completedJobs} completed, ${s.worker.failedJobs} failed, ${s.worker.duplicateJobs} already in Redis (not added again), ${s.worker.unchangedChunks} chunks unchanged (not re-embedded)`);
  if (s.estimate) {
    const e = s.estimate;
    out.push(`  estimate: Redis peak ${formatBytes(e.peakRedisBytes)} for ${e.peakJobsInRedis} jobs (${formatBytes(e.unboundedRedisBytes)} without backpressure); mean job ${formatBytes(e.meanJobDataBytes)}, ${e.meanChunksPerJob} chunks`);
    out.push(`  embedding time: ${e.embedSeconds === null ? "unknown: pass --tokens-per-second with a throughput measured on your workers" : formatSeconds(e.embedSeconds)}`);
    for (const a of e.assumptions) out.push(`    assumes ${a}`);
  }
  if (s.total.skipped > 0) {
    out.push(`  skipped ${s.total.skipped} records:`);
    for (const [reason, n] of Object.entries(s.skippedByReason)) out.push(`    ${n} x ${reason}`);
    for (const x of s.skippedSamples.slice(0, 10)) out.push(`    e.g. ${x.file}${x.line ? `:${x.line}` : ""}: ${x.reason}`);
  }
  out.push(`  peak memory: ${formatBytes(s.maxRssBytes)}`);
  process.stdout.write(out.join("\n") + "\n");
}

function addBackfillCommand(program: Command, cfg: () => Config): void {
  const d = BACKFILL_DEFAULTS;
  program
    .command("backfill")
    .description("embed a whole archive through the queue: streamed, with backpressure on the backlog, resumable, below live traffic in priority")
    .argument("<inputs...>", "files, folders or globs (quote globs: 'archive/**/*.jsonl')")
    .option("--run-id <id>", "names the checkpoint (default: derived from the inputs and QUEUE_NAME)")
    .option("--checkpoint <where>", "redis (a key beside the queue) or a file path", "redis")
    .option("--restart", "ignore this run id's checkpoint and start from the beginning")
    .option("--format <format>", "auto | jsonl | text | srt | vtt | transcript-json", "auto")
    .option("--id-prefix <prefix>", "prefix for document ids")
    .option("--chunk-tokens <n>", "target chunk size in tokens (default CHUNK_TOKENS)", wholeNumber)
    .option("--overlap <n>", "overlap between chunks in tokens (default CHUNK_OVERLAP_TOKENS)", wholeNumber)
    .option("--priority <n>", "BullMQ priority of the backfill's jobs; jobs without a priority (live ingest) and lower numbers go first", priority, d.priority)
    .option("--high-water-jobs <n>", "pause while the backlog holds this many jobs or more", atLeastOne, d.highWaterJobs)
    .option("--low-water-jobs <n>", "resume once the backlog is down to this many jobs", wholeNumber, d.lowWaterJobs)
    .option("--high-water-chunks <n>", "pause while the backlog holds this many chunks or more", atLeastOne, d.highWaterChunks)
    .option("--low-water-chunks <n>", "resume once the backlog is down to this many chunks", wholeNumber, d.lowWaterChunks)
    .option("--bulk <n>", "jobs per addBulk", atLeastOne, d.bulkSize)
    .option("--skip-unchanged", "workers skip chunks whose stored point has the same content hash and model")
    .option("--allow-duplicate-ids", DUPLICATE_IDS_HELP)
    .option("--dry-run", "read, chunk and count tokens without Redis; print totals and a sizing estimate")
    .option("--tokens-per-second <n>", "dry run: your workers' measured throughput, for an embedding-time estimate", positiveNumber)
    .option("--wait", "after enqueueing, wait until the workers have finished this run's jobs")
    .option("--progress-interval <seconds>", "seconds between progress lines when stderr is not a terminal", positiveNumber, d.progressIntervalMs / 1000)
    .option("--no-progress", "neither a progress bar nor progress lines")
    .option("--json", "print the summary as JSON")
    .action(async (inputs: string[], o) => {
      const c = cfg();
      const countTokens = loadTokenCounter(path.join(c.MODEL_DIR, "tokenizer.json"));
      const ac = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write(`${sig}: stopping; the checkpoint keeps what was enqueued (send again to exit at once)\n`);
        ac.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const s = await runBackfill(c, {
          inputs, runId: o.runId, checkpoint: o.checkpoint, restart: o.restart, format: o.format, idPrefix: o.idPrefix,
          chunkTokens: o.chunkTokens, overlapTokens: o.overlap, priority: o.priority, bulkSize: o.bulk,
          marks: { highJobs: o.highWaterJobs, lowJobs: o.lowWaterJobs, highChunks: o.highWaterChunks, lowChunks: o.lowWaterChunks },
          skipUnchanged: o.skipUnchanged, allowDuplicateIds: o.allowDuplicateIds, dryRun: o.dryRun, wait: o.wait,
          tokensPerSecond: o.tokensPerSecond,
          progress: o.progress === false ? "none" : process.stderr.isTTY ? "bar" : "log", progressIntervalMs: o.progressInterval * 1000,
          signal: ac.signal, countTokens,
        });
        if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + "\n");
        else printBackfillSummary(s);
        if (s.interrupted) process.exitCode = 130;
        else if ((s.worker?.failedJobs ?? 0) > 0 || (s.run.documents === 0 && s.run.skipped > 0)) process.exitCode = 1;
      } catch (err) {
        if (err instanceof CheckpointError || err instanceof BackfillError) {
          process.stderr.write(`${err.message}\n`);
          process.exitCode = 1;
        } else throw err;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await buildCli(() => loadConfigOrExit()).parseAsync(process.argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
