/** Command-line options of `npm run bench:ceiling`. Worker settings not covered by an option come
 *  from the environment like any worker's; options win over the environment. `--quick` only
 *  changes the defaults of the size options. */
import { Command, InvalidArgumentError } from "commander";
import { PROVIDER_DEFAULTS } from "../../shared/config.js";
import { nonNegativeInt, positiveInt, ratio, type SharedOptions } from "../lib/options.js";

/** The batch, quiet-machine and results options mean what they mean in every bench. */
type SharedPart = Pick<
  SharedOptions,
  | "quick"
  | "corpus"
  | "maxBatchTokens"
  | "maxBatchSize"
  | "padMultiple"
  | "perJob"
  | "concurrency"
  | "tokenizerThreads"
  | "quietThreshold"
  | "quietWait"
  | "out"
  | "write"
>;

export interface CeilingOptions extends SharedPart {
  tokenizer: string;
  /** CHUNK_TOKENS of the dense+sparse cases, and of the ColBERT cases. */
  sizes: number[];
  colbertSizes: number[];
  /** Chunks enqueued per dense+sparse case, and per ColBERT case. */
  chunks: number;
  colbertChunks: number;
  runs: number;
}

const sizeList = (v: string): number[] => {
  if (v === "none") return [];
  const parts = v.split(",").map((s) => Number(s.trim()));
  if (parts.length === 0 || parts.some((n) => !Number.isInteger(n) || n < 4 || n > 8190))
    throw new InvalidArgumentError("expected a comma list of chunk sizes in tokens (4-8190), or none");
  return parts;
};

const QUICK = { chunks: 600, colbertChunks: 100, runs: 1 };
const FULL = { chunks: 2000, colbertChunks: 300, runs: 3 };

export function parseCeilingArgs(argv: string[]): CeilingOptions {
  const o = new Command()
    .name("npm run bench:ceiling --")
    .description(
      "The worker's CPU per chunk per thread with an instant stand-in model (not a model measurement): the main thread's ceiling against an H100's estimated BGE-M3 speed",
    )
    .option("--quick", `${QUICK.chunks} chunks per case (${QUICK.colbertChunks} with ColBERT), one run`)
    .option(
      "--corpus <folder>",
      "folder of supported files; default: ../shared/data/transcripts if present, else the bundled synthetic sample",
    )
    .option(
      "--tokenizer <choice>",
      "auto (reference XLM-R 250k if present, else generated), generated, or a tokenizer.json[.gz] path",
      "auto",
    )
    .option("--sizes <list>", "CHUNK_TOKENS of the dense+sparse cases (or none)", sizeList, [16, 128, 512])
    .option("--colbert-sizes <list>", "CHUNK_TOKENS of the cases with ColBERT (or none)", sizeList, [128])
    .option("--chunks <n>", `chunks enqueued per dense+sparse case (default ${FULL.chunks})`, positiveInt)
    .option("--colbert-chunks <n>", `chunks enqueued per ColBERT case (default ${FULL.colbertChunks})`, positiveInt)
    .option("--runs <n>", `runs per case; figures are medians (default ${FULL.runs})`, positiveInt)
    .option("--max-batch-tokens <n>", "MAX_BATCH_TOKENS", positiveInt, 8192)
    .option("--max-batch-size <n>", "MAX_BATCH_SIZE", positiveInt, 64)
    .option("--pad-multiple <n>", "PAD_MULTIPLE (default: the worker's default for EXECUTION_PROVIDER)", positiveInt)
    .option("--per-job <n>", "most chunks per job (MAX_CHUNKS_PER_JOB)", positiveInt, 64)
    .option("--concurrency <n>", "WORKER_CONCURRENCY", positiveInt, 64)
    .option("--tokenizer-threads <n>", "TOKENIZER_THREADS", positiveInt, 1)
    .option(
      "--quiet-threshold <ratio>",
      "before each run, wait for a second in which other processes use less than this share of the CPU",
      ratio,
      0.2,
    )
    .option("--quiet-wait <s>", "longest wait for such a second, seconds (0: do not wait)", nonNegativeInt, 10)
    .option("--out <dir>", "where results files go", "bench/results/ceiling")
    .option("--no-write", "print only; write no results files")
    .addHelpText(
      "after",
      "\nEnvironment: CEILING_CPU_PROF=<dir> starts each worker process with --cpu-prof into <dir> (a V8 profile per process, for finding hot spots; it slows the worker, so figures of such a run are not comparable).",
    )
    .exitOverride((err) => {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") process.exit(0);
      process.exit(2);
    })
    .parse(argv, { from: "user" })
    .opts();
  const sizes = o.quick ? QUICK : FULL;
  return {
    quick: Boolean(o.quick),
    corpus: o.corpus,
    tokenizer: o.tokenizer,
    sizes: o.sizes,
    colbertSizes: o.colbertSizes,
    chunks: o.chunks ?? sizes.chunks,
    colbertChunks: o.colbertChunks ?? sizes.colbertChunks,
    runs: o.runs ?? sizes.runs,
    maxBatchTokens: o.maxBatchTokens,
    maxBatchSize: o.maxBatchSize,
    padMultiple:
      o.padMultiple ?? PROVIDER_DEFAULTS.PAD_MULTIPLE[process.env.EXECUTION_PROVIDER === "cuda" ? "cuda" : "cpu"],
    perJob: o.perJob,
    concurrency: o.concurrency,
    tokenizerThreads: o.tokenizerThreads,
    quietThreshold: o.quietThreshold,
    quietWait: o.quietWait,
    out: o.out,
    write: o.write !== false,
  };
}
