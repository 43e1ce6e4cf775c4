/** Command-line options of `npm run bench`. Worker settings not covered by an option come
 *  from the environment like any worker's (e.g. BATCH_OVERHEAD_TOKENS, INTRA_OP_THREADS,
 *  OUTPUTS); options win over the environment. `--quick` only changes the defaults of the size
 *  options, so explicit sizes still apply. */
import { Command, InvalidArgumentError } from "commander";
import { intInRange } from "../shared/cli-options.js";
import { PROVIDER_DEFAULTS } from "../shared/config.js";
import type { ModelSpec } from "./bench-model.js";
import type { Granularity } from "./corpus.js";

export const MEASUREMENTS = ["model", "e2e", "fifo", "peer", "pad1", "latency", "tokenizers"] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

export interface BenchOptions extends SharedOptions {
  turnChunks: number;
  windowChunks: number;
  windowsPerDoc: number;
  granularity: Granularity[];
  only: Measurement[];
  /** BATCH_OVERHEAD_TOKENS of the padding-oriented variant (which also has PAD_MULTIPLE=1). */
  variantOverhead: number;
  fifoBatchSize: number;
  peerBatchSize: number;
  latencySeconds: number;
  latencyLoad: number;
  latencyJobChunks: number;
  repeat: number;
  repeatOnly: Measurement[];
  cpuProf: boolean;
}

const positiveInt = intInRange(1);
const nonNegativeInt = intInRange(0);
const ratio = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError("expected a number in (0, 1]");
  return n;
};
const list = <T extends string>(allowed: readonly T[]) => (v: string): T[] => {
  const parts = v.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = parts.filter((p) => !allowed.includes(p as T));
  if (bad.length || parts.length === 0) throw new InvalidArgumentError(`expected a comma list of ${allowed.join(", ")}`);
  return parts as T[];
};

/** What `npm run bench` and `npm run bench:priority` set alike: the generated model, the batch
 *  limits, the worker's shape and the wait for a quiet machine. */
export interface SharedOptions extends ModelSpec {
  /** --quick and --corpus: each bench declares them with its own sizes. */
  quick: boolean;
  corpus?: string;
  maxBatchTokens: number;
  maxBatchSize: number;
  padMultiple: number;
  perJob: number;
  concurrency: number;
  tokenizerThreads: number;
  quietThreshold: number;
  quietWait: number;
  /** Where results files go (each bench declares --out with its own default). */
  out: string;
  /** False with --no-write. */
  write: boolean;
}

/** Adds the shared options with the main bench's defaults, so both benches run the same model and batches unless told
 *  otherwise; `--help` exits 0, a bad option 2. */
export function addSharedOptions(program: Command): Command {
  return program
    .option("--layers <n>", "encoder layers of the generated model", positiveInt, 6)
    .option("--hidden <n>", "hidden size of the generated model", positiveInt, 384)
    .option("--heads <n>", "attention heads (default: hidden / 64)", positiveInt)
    .option("--intermediate <n>", "FFN size (default: 4 x hidden)", positiveInt)
    .option("--tokenizer <choice>", "auto (reference XLM-R 250k if present, else generated), generated, or a tokenizer.json[.gz] path", "auto")
    .option("--generated-vocab <n>", "vocabulary bound of a generated tokenizer", positiveInt, 8000)
    .option("--max-batch-tokens <n>", "MAX_BATCH_TOKENS for the model alone and the worker", positiveInt, 8192)
    .option("--max-batch-size <n>", "MAX_BATCH_SIZE for the model alone and the worker", positiveInt, 64)
    .option("--pad-multiple <n>", "PAD_MULTIPLE (default: the worker's default for EXECUTION_PROVIDER; the pad1 variant uses 1)", positiveInt)
    .option("--per-job <n>", "most chunks per job (MAX_CHUNKS_PER_JOB)", positiveInt, 64)
    .option("--concurrency <n>", "WORKER_CONCURRENCY", positiveInt, 64)
    .option("--tokenizer-threads <n>", "TOKENIZER_THREADS", positiveInt, 1)
    .option("--quiet-threshold <ratio>", "before each timed part, wait for a second in which other processes use less than this share of the CPU", ratio, 0.2)
    .option("--quiet-wait <s>", "longest wait for such a second, seconds (0: do not wait)", nonNegativeInt, 10)
    .option("--no-write", "print only; write no results files")
    .exitOverride((err) => {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") process.exit(0);
      process.exit(2);
    });
}

export function sharedOptionsFrom(o: Record<string, unknown>): SharedOptions {
  const hidden = o.hidden as number;
  return {
    quick: Boolean(o.quick),
    corpus: o.corpus as string | undefined,
    layers: o.layers as number,
    hidden,
    heads: (o.heads as number | undefined) ?? Math.max(1, Math.floor(hidden / 64)),
    intermediate: (o.intermediate as number | undefined) ?? 4 * hidden,
    tokenizer: o.tokenizer as string,
    generatedVocab: o.generatedVocab as number,
    maxBatchTokens: o.maxBatchTokens as number,
    maxBatchSize: o.maxBatchSize as number,
    padMultiple: (o.padMultiple as number | undefined) ?? PROVIDER_DEFAULTS.PAD_MULTIPLE[process.env.EXECUTION_PROVIDER === "cuda" ? "cuda" : "cpu"],
    perJob: o.perJob as number,
    concurrency: o.concurrency as number,
    tokenizerThreads: o.tokenizerThreads as number,
    quietThreshold: o.quietThreshold as number,
    quietWait: o.quietWait as number,
    out: o.out as string,
    write: o.write !== false,
  };
}

const QUICK = { turnChunks: 120, windowChunks: 8, windowsPerDoc: 4, latencySeconds: 5, repeat: 1, only: MEASUREMENTS.filter((m) => m !== "pad1") };
const FULL = { turnChunks: 600, windowChunks: 48, windowsPerDoc: 8, latencySeconds: 30, repeat: 5, only: [...MEASUREMENTS] };

export function parseBenchArgs(argv: string[]): BenchOptions {
  const program = addSharedOptions(new Command())
    .name("npm run bench --")
    .description("Throughput, padding, latency and memory of the worker against the model alone, a FIFO ablation and transformers.js, on the same chunks in one run")
    .option("--quick", `small sizes (~1-2 minutes): ${QUICK.turnChunks} turns, ${QUICK.windowChunks} windows, ${QUICK.latencySeconds} s of latency load, one round, no PAD_MULTIPLE=1 run`)
    .option("--corpus <folder>", "folder of supported files (.json transcripts, .jsonl, .srt, .vtt, .txt, .md); default: ../shared/data/transcripts if present, else the bundled synthetic sample")
    .option("--turn-chunks <n>", `turn-level chunks, sampled evenly over the corpus (default ${FULL.turnChunks})`, positiveInt)
    .option("--window-chunks <n>", `token-window chunks (default ${FULL.windowChunks})`, positiveInt)
    .option("--windows-per-doc <n>", `most windows taken from one document (default ${FULL.windowsPerDoc})`, positiveInt)
    .option("--granularity <list>", "turns,windows", list(["turns", "windows"] as const), ["turns", "windows"])
    .option("--only <list>", `measurements to run (default: all): ${MEASUREMENTS.join(",")}`, list(MEASUREMENTS))
    .option("--variant-overhead <n>", "BATCH_OVERHEAD_TOKENS of the pad1 variant (which runs PAD_MULTIPLE=1)", nonNegativeInt, 32)
    .option("--fifo-batch-size <n>", "MAX_BATCH_SIZE of the FIFO ablation", positiveInt, 32)
    .option("--peer-batch-size <n>", "texts per transformers.js call", positiveInt, 32)
    .option("--latency-seconds <n>", `how long the steady load is offered (default ${FULL.latencySeconds})`, positiveInt)
    .option("--latency-load <ratio>", "offered load as a share of the measured end-to-end tokens/s", ratio, 0.7)
    .option("--latency-job-chunks <n>", "chunks per job in the latency run", positiveInt, 16)
    .option("--repeat <n>", `rounds: the --repeat-only measurements run once per round, in reversed order every other round; ratios are medians of per-round ratios (default ${FULL.repeat})`, positiveInt)
    .option("--repeat-only <list>", "measurements repeated every round (the rest run in round 1)", list(["model", "e2e", "fifo", "peer", "pad1"] as const), ["model", "e2e"])
    .option("--cpu-prof", "profile the end-to-end worker process (turns) with --cpu-prof and summarise it in the results")
    .option("--out <dir>", "where results files go", "bench/results")
    .parse(argv, { from: "user" });
  const o = program.opts();
  const sizes = o.quick ? QUICK : FULL;
  return {
    turnChunks: o.turnChunks ?? sizes.turnChunks,
    windowChunks: o.windowChunks ?? sizes.windowChunks,
    windowsPerDoc: o.windowsPerDoc ?? sizes.windowsPerDoc,
    granularity: o.granularity,
    only: o.only ?? sizes.only,
    ...sharedOptionsFrom(o),
    variantOverhead: o.variantOverhead,
    fifoBatchSize: o.fifoBatchSize,
    peerBatchSize: o.peerBatchSize,
    latencySeconds: o.latencySeconds ?? sizes.latencySeconds,
    latencyLoad: o.latencyLoad,
    latencyJobChunks: o.latencyJobChunks,
    repeat: o.repeat ?? sizes.repeat,
    repeatOnly: o.repeatOnly,
    cpuProf: Boolean(o.cpuProf),
  };
}
