/** `npm run capacity -- --chunks 1e9 --tokens-per-chunk 300 --gpus 8 [options]` (`--help` lists
 *  them): sizes a backfill with the capacity model (model.ts) from measured constants
 *  (inputs.ts), printing every constant with its source, then the figures at the low and high
 *  GPU estimate. `--json` prints the same as one JSON object. Exit 2 on a bad option or input. */
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { parseConfig } from "../../shared/config.js";
import { BACKFILL_DEFAULTS } from "../../producer/backfill.js";
import { BGE_M3_DIMS } from "../../worker/core/activation-memory.js";
import { repoRoot } from "../lib/paths.js";
import {
  CapacityInputError,
  ceilingConstants,
  gpuEstimate,
  hasCeiling,
  newestResults,
  queueConstants,
  type Sourced,
} from "./inputs.js";
import { capacity, jsonSizes, type CapacityInput, type CapacityResult } from "./model.js";
import { renderCapacity } from "./render.js";

/** BGE-M3's tokenizer (XLM-R) vocabulary size: sets how many digits a sparse index takes in JSON. */
const XLMR_VOCAB = 250_002;

const positive = (v: string) => {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError("expected a positive number (1e9 is fine)");
  return n;
};
const whole = (v: string) => {
  const n = positive(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError("expected a whole number");
  return n;
};
const share = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError("expected a number in (0, 1]");
  return n;
};

const defaults = parseConfig({});
const program = new Command()
  .name("npm run capacity --")
  .description("Redis, worker and Qdrant capacity for a backfill, from the benches' measured constants")
  .requiredOption("--chunks <n>", "chunks in the backfill", whole)
  .option("--tokens-per-chunk <n>", "mean model-side tokens per chunk (<s> and </s> included)", whole, 300)
  .requiredOption("--gpus <n>", "GPUs in the fleet", whole)
  .option("--gpu <name>", "GPU of the published estimates (bench/e2e/gpu-figures.ts)", "h100")
  .option(
    "--gpu-tokens-per-second <n>",
    "tokens/s of one GPU instead of the estimate (e.g. your own measurement)",
    positive,
  )
  .option("--colbert", "ColBERT multivectors on (COLBERT=true)")
  .option("--job-chunks <n>", `chunks per job (default MAX_CHUNKS_PER_JOB=${defaults.MAX_CHUNKS_PER_JOB})`, whole)
  .option("--redis-utilization <share>", "share of each Redis core to plan for", share, 0.5)
  .option("--high-water-jobs <n>", "backfill --high-water-jobs", whole, BACKFILL_DEFAULTS.highWaterJobs)
  .option("--high-water-chunks <n>", "backfill --high-water-chunks", whole, BACKFILL_DEFAULTS.highWaterChunks)
  .option("--bulk-size <n>", "backfill --bulk-size", whole, BACKFILL_DEFAULTS.bulkSize)
  .option("--worker-concurrency <n>", "WORKER_CONCURRENCY", whole, defaults.WORKER_CONCURRENCY)
  .option(
    "--kept-completed <n>",
    "REMOVE_ON_COMPLETE: completed jobs kept",
    (v) => Number(v),
    defaults.REMOVE_ON_COMPLETE,
  )
  .option("--queue-results <file>", "bench:queue results file (default: the newest in bench/results/queue)")
  .option(
    "--ceiling-results <file>",
    "npm run bench:ceiling results file (default: the newest in bench/results/ceiling)",
  )
  .option("--json", "print one JSON object")
  .exitOverride((err) => process.exit(err.code === "commander.helpDisplayed" ? 0 : 2))
  .parse(process.argv.slice(2), { from: "user" });
const o = program.opts();
const given = (k: string) => program.getOptionValueSource(k) === "cli";

try {
  const queueFile = o.queueResults ?? newestResults(path.join(repoRoot, "bench", "results", "queue"));
  if (!queueFile)
    throw new CapacityInputError(
      "no bench:queue results file: run npm run bench:queue first (or give --queue-results)",
    );
  const jobChunks: number = o.jobChunks ?? defaults.MAX_CHUNKS_PER_JOB;
  const queue = queueConstants(queueFile, jobChunks);
  const ceilingFile = o.ceilingResults ?? newestResults(path.join(repoRoot, "bench", "results", "ceiling"), hasCeiling);
  const ceiling = ceilingConstants(ceilingFile, o.tokensPerChunk, Boolean(o.colbert));
  const gpu = o.gpuTokensPerSecond ? undefined : gpuEstimate(o.gpu);
  const json = jsonSizes(BGE_M3_DIMS.hidden, XLMR_VOCAB);
  const code = (what: string) => (given(what) ? "command line" : "default");
  const sourced: Sourced[] = [
    ...queue.sourced,
    ...ceiling.sourced,
    ...(gpu
      ? [
          {
            name: `${gpu.gpu} tokens/s, low estimate`,
            value: gpu.low,
            source: `bench/e2e/gpu-figures.ts GPU_ESTIMATES (${gpu.how})`,
          },
          {
            name: `${gpu.gpu} tokens/s, high estimate`,
            value: gpu.high,
            source: `bench/e2e/gpu-figures.ts GPU_ESTIMATES (${gpu.how})`,
          },
        ]
      : [{ name: "GPU tokens/s", value: o.gpuTokensPerSecond, source: "command line (--gpu-tokens-per-second)" }]),
    {
      name: "backfill high-water mark, jobs",
      value: o.highWaterJobs,
      source: given("highWaterJobs") ? "command line" : "producer/backfill.ts BACKFILL_DEFAULTS.highWaterJobs",
    },
    {
      name: "backfill high-water mark, chunks",
      value: o.highWaterChunks,
      source: given("highWaterChunks") ? "command line" : "producer/backfill.ts BACKFILL_DEFAULTS.highWaterChunks",
    },
    {
      name: "backfill bulk size, jobs",
      value: o.bulkSize,
      source: given("bulkSize") ? "command line" : "producer/backfill.ts BACKFILL_DEFAULTS.bulkSize",
    },
    {
      name: "completed jobs kept (REMOVE_ON_COMPLETE)",
      value: o.keptCompleted,
      source: given("keptCompleted") ? "command line" : "shared/config.ts default",
    },
    {
      name: "jobs each worker process holds (WORKER_CONCURRENCY)",
      value: o.workerConcurrency,
      source: given("workerConcurrency") ? "command line" : "shared/config.ts default",
    },
    {
      name: "chunks per job",
      value: jobChunks,
      source: given("jobChunks") ? "command line" : "shared/config.ts default MAX_CHUNKS_PER_JOB",
    },
    {
      name: "dense and ColBERT dimensions",
      value: BGE_M3_DIMS.hidden,
      source: "worker/core/activation-memory.ts BGE_M3_DIMS.hidden",
    },
    {
      name: "JSON bytes per float32 in a request",
      value: json.perFloat,
      source:
        "computed: a seeded 1024-d float32 unit vector written by the worker's float32 formatter (QDRANT_UPSERT_BODY=prebuilt; bench/capacity/model.ts jsonSizes)",
    },
    {
      name: "JSON bytes per sparse entry in a request",
      value: json.perSparseEntry,
      source: `computed: seeded indices below ${XLMR_VOCAB} and float32 weights, written as the worker writes them (jsonSizes)`,
    },
    { name: "share of each Redis core planned for", value: o.redisUtilization, source: code("redisUtilization") },
  ];
  const input = (gpuTokensPerSecond: number): CapacityInput => ({
    chunks: o.chunks,
    tokensPerChunk: o.tokensPerChunk,
    gpus: o.gpus,
    jobChunks,
    colbert: Boolean(o.colbert),
    gpuTokensPerSecond,
    redisUtilization: o.redisUtilization,
    workerConcurrency: o.workerConcurrency,
    queue: queue.constants,
    ceiling: ceiling.constants,
    marks: {
      highWaterJobs: o.highWaterJobs,
      highWaterChunks: o.highWaterChunks,
      bulkSize: o.bulkSize,
      keptCompleted: o.keptCompleted,
    },
    jsonBytesPerFloat: json.perFloat,
    jsonBytesPerSparseEntry: json.perSparseEntry,
    denseDim: BGE_M3_DIMS.hidden,
    colbertDim: BGE_M3_DIMS.hidden,
  });
  const scenarios: Array<{ label: string; gpuTokensPerSecond: number; result: CapacityResult }> = (
    gpu
      ? [
          { label: `${gpu.gpu} low`, tps: gpu.low },
          { label: `${gpu.gpu} high`, tps: gpu.high },
        ]
      : [{ label: "given GPU", tps: o.gpuTokensPerSecond as number }]
  ).map((s) => ({ label: s.label, gpuTokensPerSecond: s.tps, result: capacity(input(s.tps)) }));
  const report = {
    question: {
      chunks: o.chunks,
      tokensPerChunk: o.tokensPerChunk,
      gpus: o.gpus,
      gpu: gpu?.gpu ?? "given",
      colbert: Boolean(o.colbert),
      jobChunks,
    },
    constants: sourced,
    ceilingMissing: ceiling.missing,
    scenarios,
  };
  console.log(o.json ? JSON.stringify(report, null, 2) : renderCapacity(report));
} catch (err) {
  if (!(err instanceof CapacityInputError)) throw err;
  console.error(`capacity: ${err.message}`);
  process.exit(2);
}
