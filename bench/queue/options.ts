/** Command-line options of `npm run bench:queue`. The grid is job sizes (chunks per job) x worker
 *  processes; the default run is short (6 cells: a few minutes on a 2-core machine) and
 *  `--full` (the whole 4 x 3 grid, larger cells) only changes defaults, so explicit values still
 *  apply. The workers run the generated model with small budgets: this bench measures Redis, not
 *  the model, and the default warm-up would take GBs. */
import { Command, InvalidArgumentError } from "commander";
import { addSharedOptions, positiveInt, sharedOptionsFrom, type SharedOptions } from "../lib/options.js";

export interface QueueOptions extends SharedOptions {
  jobChunks: number[];
  workers: number[];
  /** Chunks per cell (jobs = max(minJobs, ceil(chunks / jobChunks))). */
  chunks: number;
  minJobs: number;
  chunkTokens: number;
  maxSeqLength: number;
  /** Jobs of the second, MONITOR-counted drain per cell (0: skip it). */
  monitorJobs: number;
  redisAof: "always" | "everysec" | "off";
}

function list(v: string): number[] {
  const out = v.split(",").map((x) => Number(x.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1))
    throw new InvalidArgumentError("expected a comma list of whole numbers >= 1");
  return out;
}

const QUICK = { chunks: 256, minJobs: 16, jobChunks: [1, 16, 64], workers: [1, 3] };
const FULL = { chunks: 1024, minJobs: 32, jobChunks: [1, 4, 16, 64], workers: [1, 2, 3] };
/** Small worker budgets (MAX_BATCH_TOKENS, MAX_BATCH_SIZE) unless given. */
const SMALL = { maxBatchTokens: 2048, maxBatchSize: 32, concurrency: 16, layers: 1, hidden: 32 };

export function parseQueueArgs(argv: string[]): QueueOptions {
  const program = addSharedOptions(new Command())
    .name("npm run bench:queue --")
    .description(
      "Redis commands, CPU and memory per job and per chunk of the real producer and worker processes on a private redis-server",
    )
    .option(
      "--full",
      `the whole grid (jobs of ${FULL.jobChunks.join(", ")} chunks x ${FULL.workers.join(", ")} workers) with cells of ` +
        `${FULL.chunks} chunks, at least ${FULL.minJobs} jobs (default: ${QUICK.jobChunks.join(", ")} x ${QUICK.workers.join(", ")}, ` +
        `${QUICK.chunks} chunks, ${QUICK.minJobs} jobs)`,
    )
    .option(
      "--corpus <folder>",
      "folder of supported files; default: ../shared/data/transcripts if present, else the bundled synthetic sample",
    )
    .option("--job-chunks <list>", "chunks per job, one cell each (comma list)", list)
    .option("--workers <list>", "worker processes on the queue, one cell each (comma list)", list)
    .option("--chunks <n>", "chunks per cell", positiveInt)
    .option("--min-jobs <n>", "fewest jobs per cell", positiveInt)
    .option("--chunk-tokens <n>", "chunk size for the producer's chunker (CHUNK_TOKENS, no overlap)", positiveInt, 128)
    .option("--max-seq-length <n>", "MAX_SEQ_LENGTH of the workers", positiveInt, 256)
    .option("--monitor-jobs <n>", "jobs of the MONITOR-counted second drain per cell (0: skip it)", intOrZero, 16)
    .option("--redis-aof <mode>", "persistence of the private redis-server: always, everysec or off", aof, "everysec")
    .option("--out <dir>", "where results files go", "bench/results/queue")
    .parse(argv, { from: "user" });
  const o = program.opts();
  const sizes = o.full ? FULL : QUICK;
  const given = (k: string) => program.getOptionValueSource(k) === "cli";
  for (const [k, v] of Object.entries(SMALL)) if (!given(k)) o[k] = v;
  o.heads = given("heads") ? o.heads : undefined;
  o.intermediate = given("intermediate") ? o.intermediate : undefined;
  return {
    ...sharedOptionsFrom(o),
    quick: !o.full,
    jobChunks: o.jobChunks ?? sizes.jobChunks,
    workers: o.workers ?? sizes.workers,
    chunks: o.chunks ?? sizes.chunks,
    minJobs: o.minJobs ?? sizes.minJobs,
    chunkTokens: o.chunkTokens,
    maxSeqLength: o.maxSeqLength,
    monitorJobs: o.monitorJobs,
    redisAof: o.redisAof,
  };
}

function intOrZero(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number >= 0");
  return n;
}

function aof(v: string): QueueOptions["redisAof"] {
  if (v !== "always" && v !== "everysec" && v !== "off")
    throw new InvalidArgumentError("expected always, everysec or off");
  return v;
}
