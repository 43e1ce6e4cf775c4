/** Producer command line: `ingest` reads files and folders (JSONL, text, SRT, WebVTT,
 *  transcript JSON), chunks them with the model's tokenizer and enqueues one job per
 *  document; `backfill` does the same for whole archives (streamed, backpressure, resumable,
 *  below live traffic in priority; see backfill.ts); `stats` prints the queue's counts as
 *  JSON; `requeue-failed` moves failed jobs back to waiting. Configuration comes from the same
 *  environment variables as the worker; flags override the chunking ones. This file only
 *  parses the command line: each command is one library call (ingest-run.ts,
 *  backfill/backfill-command.ts, queue-commands.ts) that returns the exit code. */
import { Command, InvalidArgumentError } from "commander";
import { loadConfigOrExit, type Config } from "../shared/config.js";
import { BACKFILL_DEFAULTS } from "./backfill.js";
import { runBackfillCommand } from "./backfill/backfill-command.js";
import { intInRange } from "../shared/cli-options.js";
import { runIngest } from "./ingest-run.js";
import { printQueueStats, requeueFailedCommand } from "./queue-commands.js";
import { packBoundsFrom, type PackBounds } from "./packer.js";

const wholeNumber = intInRange(0);
const atLeastOne = intInRange(1);
const positiveNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
};
const FRESH_HELP =
  "promise that the collection holds none of these documents (e.g. created for this run): workers skip the stale-point delete; if false, older versions' extra chunks stay";
const DUPLICATE_IDS_HELP =
  "enqueue a document whose id an earlier one in this run had (it overwrites its points); default: skip it, counted";
/** `--no-pack` and the pack bounds (packer.ts), shared by ingest and backfill. */
function addPackOptions(cmd: Command): Command {
  return cmd
    .option("--no-pack", "one job per document (default: small whole documents are packed several to a job)")
    .option("--pack-max-docs <n>", "most documents in one packed job (default MAX_CHUNKS_PER_JOB)", atLeastOne)
    .option("--pack-max-chunks <n>", "most chunks in one packed job (default MAX_CHUNKS_PER_JOB)", atLeastOne)
    .option(
      "--pack-max-bytes <n>",
      "most bytes (documents as JSON) in one packed job (default 131072, at most MAX_METADATA_BYTES / 8)",
      atLeastOne,
    );
}

function packFrom(
  c: Config,
  o: { pack?: boolean; packMaxDocs?: number; packMaxChunks?: number; packMaxBytes?: number },
): PackBounds | undefined {
  if (o.pack === false) return undefined;
  return packBoundsFrom(c, { maxDocs: o.packMaxDocs, maxChunks: o.packMaxChunks, maxBytes: o.packMaxBytes });
}

/** BullMQ's priority range. */
const priority = intInRange(1, 2_097_151);

export function buildCli(cfg: () => Config): Command {
  const program = new Command("producer").description("Enqueue documents for embedding and inspect the queue");
  const ingest = program
    .command("ingest")
    .description("read files or folders, chunk them by tokens and enqueue one job per document (small ones packed)")
    .argument("<paths...>", "files or folders (.jsonl .ndjson .txt .md .srt .vtt .json)")
    .option("--format <format>", "auto | jsonl | text | srt | vtt | transcript-json", "auto")
    .option("--id-prefix <prefix>", "prefix for document ids taken from file names")
    .option("--chunk-tokens <n>", "target chunk size in tokens (default CHUNK_TOKENS)", wholeNumber)
    .option("--overlap <n>", "overlap between chunks in tokens (default CHUNK_OVERLAP_TOKENS)", wholeNumber)
    .option("--priority <n>", "BullMQ priority, 1 = highest (default: none, FIFO)", wholeNumber)
    .option("--dry-run", "read, chunk and count tokens without enqueueing")
    .option("--strict", "stop at the first bad record instead of skipping it")
    .option("--skip-unchanged", "workers skip chunks whose stored point has the same content hash and model")
    .option("--fresh", FRESH_HELP)
    .option("--allow-duplicate-ids", DUPLICATE_IDS_HELP)
    .option("--json", "print the summary as JSON");
  addPackOptions(ingest).action(async (paths: string[], o) => {
    const c = cfg();
    const chunking = { chunkTokens: o.chunkTokens ?? c.CHUNK_TOKENS, overlap: o.overlap ?? c.CHUNK_OVERLAP_TOKENS };
    process.exitCode = await runIngest(c, paths, { ...o, ...chunking, pack: packFrom(c, o) });
  });
  addBackfillCommand(program, cfg);
  program
    .command("stats")
    .description("print the queue's job counts as JSON")
    .action(async () => printQueueStats(cfg()));
  program
    .command("requeue-failed")
    .description("list failed jobs (id, document, attempts, reason, time) and move the matching ones back to waiting")
    .option(
      "--reason <kinds>",
      "only reasons of these kinds, comma list (the part before the colon: sink, validation, inference, ...)",
    )
    .option("--match <regex>", "only failed reasons matching this regular expression")
    .option("--limit <n>", "requeue at most n jobs, oldest failure first", wholeNumber)
    .option("--dry-run", "list what would be requeued; move nothing")
    .option("--keep-attempts", "keep the attempt count: one more try instead of JOB_ATTEMPTS with backoff")
    .option("--json", "print the result as JSON")
    .action(
      async (o: {
        reason?: string;
        match?: string;
        limit?: number;
        dryRun?: boolean;
        keepAttempts?: boolean;
        json?: boolean;
      }) => {
        let match: RegExp | undefined;
        try {
          match = o.match === undefined ? undefined : new RegExp(o.match);
        } catch (err) {
          throw new InvalidArgumentError(`--match: ${(err as Error).message}`);
        }
        const c = cfg();
        const reasons = o.reason
          ?.split(",")
          .map((r) => r.trim())
          .filter(Boolean);
        const requeue = { reasons, match, limit: o.limit, dryRun: o.dryRun, keepAttempts: o.keepAttempts };
        process.exitCode = await requeueFailedCommand(c, requeue, Boolean(o.json));
      },
    );
  return program;
}

function addBackfillCommand(program: Command, cfg: () => Config): void {
  const d = BACKFILL_DEFAULTS;
  const backfill = program
    .command("backfill")
    .description(
      "embed a whole archive through the queue: streamed, with backpressure on the backlog, resumable, below live traffic in priority",
    )
    .argument("<inputs...>", "files, folders or globs (quote globs: 'archive/**/*.jsonl')")
    .option("--run-id <id>", "names the checkpoint (default: derived from the inputs and QUEUE_NAME)")
    .option("--checkpoint <where>", "redis (a key beside the queue) or a file path", "redis")
    .option("--restart", "ignore this run id's checkpoint and start from the beginning")
    .option("--format <format>", "auto | jsonl | text | srt | vtt | transcript-json", "auto")
    .option("--id-prefix <prefix>", "prefix for document ids")
    .option("--chunk-tokens <n>", "target chunk size in tokens (default CHUNK_TOKENS)", wholeNumber)
    .option("--overlap <n>", "overlap between chunks in tokens (default CHUNK_OVERLAP_TOKENS)", wholeNumber)
    .option(
      "--priority <n>",
      "BullMQ priority of the backfill's jobs; jobs without a priority (live ingest) and lower numbers go first",
      priority,
      d.priority,
    )
    .option(
      "--high-water-jobs <n>",
      "pause while the backlog holds this many jobs or more",
      atLeastOne,
      d.highWaterJobs,
    )
    .option("--low-water-jobs <n>", "resume once the backlog is down to this many jobs", wholeNumber, d.lowWaterJobs)
    .option(
      "--high-water-chunks <n>",
      "pause while the backlog holds this many chunks or more",
      atLeastOne,
      d.highWaterChunks,
    )
    .option(
      "--low-water-chunks <n>",
      "resume once the backlog is down to this many chunks",
      wholeNumber,
      d.lowWaterChunks,
    )
    .option("--bulk <n>", "jobs per addBulk", atLeastOne, d.bulkSize)
    .option("--skip-unchanged", "workers skip chunks whose stored point has the same content hash and model")
    .option("--fresh", FRESH_HELP)
    .option("--allow-duplicate-ids", DUPLICATE_IDS_HELP)
    .option("--dry-run", "read, chunk and count tokens without Redis; print totals and a sizing estimate")
    .option(
      "--tokens-per-second <n>",
      "dry run: your workers' measured throughput, for an embedding-time estimate",
      positiveNumber,
    )
    .option("--wait", "after enqueueing, wait until the workers have finished this run's jobs")
    .option(
      "--progress-interval <seconds>",
      "seconds between progress lines when stderr is not a terminal",
      positiveNumber,
      d.progressIntervalMs / 1000,
    )
    .option("--no-progress", "neither a progress bar nor progress lines")
    .option("--json", "print the summary as JSON");
  addPackOptions(backfill).action(async (inputs: string[], o) => {
    const marks = {
      highJobs: o.highWaterJobs,
      lowJobs: o.lowWaterJobs,
      highChunks: o.highWaterChunks,
      lowChunks: o.lowWaterChunks,
    };
    const progress = o.progress === false ? "none" : process.stderr.isTTY ? "bar" : "log";
    process.exitCode = await runBackfillCommand(
      cfg(),
      {
        inputs,
        runId: o.runId,
        checkpoint: o.checkpoint,
        restart: o.restart,
        format: o.format,
        idPrefix: o.idPrefix,
        chunkTokens: o.chunkTokens,
        overlapTokens: o.overlap,
        priority: o.priority,
        bulkSize: o.bulk,
        marks,
        skipUnchanged: o.skipUnchanged,
        pack: packFrom(cfg(), o),
        fresh: o.fresh,
        allowDuplicateIds: o.allowDuplicateIds,
        dryRun: o.dryRun,
        wait: o.wait,
        tokensPerSecond: o.tokensPerSecond,
        progress,
        progressIntervalMs: o.progressInterval * 1000,
      },
      Boolean(o.json),
    );
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
