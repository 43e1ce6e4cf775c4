/** Command-line options both benches share (`npm run bench`, `npm run bench:priority`): the
 *  generated model, the batch limits, the worker's shape and the wait for a quiet machine, with
 *  the main bench's defaults, so both run the same model and batches unless told otherwise.
 *  Each bench adds its own options in its folder (e2e/options.ts, priority/options.ts). Worker
 *  settings not covered by an option come from the environment like any worker's. */
import { Command, InvalidArgumentError } from "commander";
import { intInRange } from "../../shared/cli-options.js";
import { PROVIDER_DEFAULTS } from "../../shared/config.js";
import type { ModelSpec } from "./bench-model.js";

export const positiveInt = intInRange(1);
export const nonNegativeInt = intInRange(0);
export const ratio = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError("expected a number in (0, 1]");
  return n;
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
    .option(
      "--tokenizer <choice>",
      "auto (reference XLM-R 250k if present, else generated), generated, or a tokenizer.json[.gz] path",
      "auto",
    )
    .option("--generated-vocab <n>", "vocabulary bound of a generated tokenizer", positiveInt, 8000)
    .option("--max-batch-tokens <n>", "MAX_BATCH_TOKENS for the model alone and the worker", positiveInt, 8192)
    .option("--max-batch-size <n>", "MAX_BATCH_SIZE for the model alone and the worker", positiveInt, 64)
    .option(
      "--pad-multiple <n>",
      "PAD_MULTIPLE (default: the worker's default for EXECUTION_PROVIDER; the pad1 variant uses 1)",
      positiveInt,
    )
    .option("--per-job <n>", "most chunks per job (MAX_CHUNKS_PER_JOB)", positiveInt, 64)
    .option("--concurrency <n>", "WORKER_CONCURRENCY", positiveInt, 64)
    .option("--tokenizer-threads <n>", "TOKENIZER_THREADS", positiveInt, 1)
    .option(
      "--quiet-threshold <ratio>",
      "before each timed part, wait for a second in which other processes use less than this share of the CPU",
      ratio,
      0.2,
    )
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
    padMultiple:
      (o.padMultiple as number | undefined) ??
      PROVIDER_DEFAULTS.PAD_MULTIPLE[process.env.EXECUTION_PROVIDER === "cuda" ? "cuda" : "cpu"],
    perJob: o.perJob as number,
    concurrency: o.concurrency as number,
    tokenizerThreads: o.tokenizerThreads as number,
    quietThreshold: o.quietThreshold as number,
    quietWait: o.quietWait as number,
    out: o.out as string,
    write: o.write !== false,
  };
}
