/** Command-line options of `npm run bench`. Worker settings not covered by an option come
 *  from the environment like any worker's (e.g. BATCH_OVERHEAD_TOKENS, INTRA_OP_THREADS,
 *  OUTPUTS); options win over the environment. `--quick` only changes the defaults of the size
 *  options, so explicit sizes still apply. */
import { Command, InvalidArgumentError } from "commander";
import type { Granularity } from "../lib/corpus.js";
import {
  addSharedOptions,
  nonNegativeInt,
  positiveInt,
  ratio,
  sharedOptionsFrom,
  type SharedOptions,
} from "../lib/options.js";

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

const list =
  <T extends string>(allowed: readonly T[]) =>
  (v: string): T[] => {
    const parts = v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = parts.filter((p) => !allowed.includes(p as T));
    if (bad.length || parts.length === 0)
      throw new InvalidArgumentError(`expected a comma list of ${allowed.join(", ")}`);
    return parts as T[];
  };

const QUICK = {
  turnChunks: 120,
  windowChunks: 8,
  windowsPerDoc: 4,
  latencySeconds: 5,
  repeat: 1,
  only: MEASUREMENTS.filter((m) => m !== "pad1"),
};
const FULL = {
  turnChunks: 600,
  windowChunks: 48,
  windowsPerDoc: 8,
  latencySeconds: 30,
  repeat: 5,
  only: [...MEASUREMENTS],
};

export function parseBenchArgs(argv: string[]): BenchOptions {
  const program = addSharedOptions(new Command())
    .name("npm run bench --")
    .description(
      "Throughput, padding, latency and memory of the worker against the model alone, a FIFO ablation and transformers.js, on the same chunks in one run",
    )
    .option(
      "--quick",
      `small sizes (~1-2 minutes): ${QUICK.turnChunks} turns, ${QUICK.windowChunks} windows, ${QUICK.latencySeconds} s of latency load, one round, no PAD_MULTIPLE=1 run`,
    )
    .option(
      "--corpus <folder>",
      "folder of supported files (.json transcripts, .jsonl, .srt, .vtt, .txt, .md); default: ../shared/data/transcripts if present, else the bundled synthetic sample",
    )
    .option(
      "--turn-chunks <n>",
      `turn-level chunks, sampled evenly over the corpus (default ${FULL.turnChunks})`,
      positiveInt,
    )
    .option("--window-chunks <n>", `token-window chunks (default ${FULL.windowChunks})`, positiveInt)
    .option(
      "--windows-per-doc <n>",
      `most windows taken from one document (default ${FULL.windowsPerDoc})`,
      positiveInt,
    )
    .option("--granularity <list>", "turns,windows", list(["turns", "windows"] as const), ["turns", "windows"])
    .option("--only <list>", `measurements to run (default: all): ${MEASUREMENTS.join(",")}`, list(MEASUREMENTS))
    .option(
      "--variant-overhead <n>",
      "BATCH_OVERHEAD_TOKENS of the pad1 variant (which runs PAD_MULTIPLE=1)",
      nonNegativeInt,
      32,
    )
    .option("--fifo-batch-size <n>", "MAX_BATCH_SIZE of the FIFO ablation", positiveInt, 32)
    .option("--peer-batch-size <n>", "texts per transformers.js call", positiveInt, 32)
    .option(
      "--latency-seconds <n>",
      `how long the steady load is offered (default ${FULL.latencySeconds})`,
      positiveInt,
    )
    .option("--latency-load <ratio>", "offered load as a share of the measured end-to-end tokens/s", ratio, 0.7)
    .option("--latency-job-chunks <n>", "chunks per job in the latency run", positiveInt, 16)
    .option(
      "--repeat <n>",
      `rounds: the --repeat-only measurements run once per round, in reversed order every other round; ratios are medians of per-round ratios (default ${FULL.repeat})`,
      positiveInt,
    )
    .option(
      "--repeat-only <list>",
      "measurements repeated every round (the rest run in round 1)",
      list(["model", "e2e", "fifo", "peer", "pad1"] as const),
      ["model", "e2e"],
    )
    .option(
      "--cpu-prof",
      "profile the end-to-end worker process (turns) with --cpu-prof and summarise it in the results",
    )
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
