/** Command-line options of `npm run bench:priority`. The model, token budget and worker shape
 *  default to the main bench's (`npm run bench`), so one batch at the budget costs the same in
 *  both; worker settings no option covers come from the environment, as for any worker.
 *  `--quick` only changes the defaults of the timing options, so explicit values still apply. */
import { Command, InvalidArgumentError } from "commander";
import {
  addSharedOptions,
  nonNegativeInt,
  positiveInt,
  sharedOptionsFrom,
  type SharedOptions,
} from "../lib/options.js";

export interface PriorityOptions extends SharedOptions {
  queryRate: number;
  phaseSeconds: number;
  rounds: number;
  settleSeconds: number;
  batchReps: number;
  backlogJobs: number;
  queryTimeoutMs: number;
  /** QUERY_FILL_TOKENS; undefined = the worker's default (MAX_BATCH_TOKENS / 4). */
  queryFillTokens?: number;
}

/** Queries per second may be fractional (0.5 = one every 2 s). */
function positive(v: string): number {
  if (!(Number(v) > 0)) throw new InvalidArgumentError("expected a positive number");
  return Number(v);
}

const QUICK = { phaseSeconds: 4, rounds: 1, settleSeconds: 3, batchReps: 3 };
const FULL = { phaseSeconds: 45, rounds: 4, settleSeconds: 20, batchReps: 15 };

export function parsePriorityArgs(argv: string[]): PriorityOptions {
  const program = addSharedOptions(new Command())
    .name("npm run bench:priority --")
    .description(
      "Query latency and queued throughput of one worker under a saturating backfill, with and without search queries in the priority lane",
    )
    .option(
      "--quick",
      `short run (~1 minute): ${QUICK.rounds} round of ${QUICK.phaseSeconds}-second phases, ${QUICK.batchReps} timed batches`,
    )
    .option(
      "--corpus <folder>",
      "folder of supported files; default: ../shared/data/transcripts if present, else the bundled synthetic sample",
    )
    .option("--query-rate <n>", "single-text query requests per second during the B phases (open loop)", positive, 2)
    .option("--phase-seconds <n>", `length of each phase (default ${FULL.phaseSeconds})`, positiveInt)
    .option(
      "--rounds <n>",
      `rounds of one A phase (backfill only) and one B phase (backfill + queries) (default ${FULL.rounds})`,
      positiveInt,
    )
    .option(
      "--settle-seconds <n>",
      `backfill before the first phase, unmeasured (default ${FULL.settleSeconds})`,
      nonNegativeInt,
    )
    .option(
      "--batch-reps <n>",
      `timed repetitions of each single batch, model alone (default ${FULL.batchReps})`,
      positiveInt,
    )
    .option("--backlog-jobs <n>", "jobs kept waiting in the queue beyond those the worker holds", positiveInt, 32)
    .option("--query-timeout-ms <n>", "client-side timeout of one query request", positiveInt, 30_000)
    .option(
      "--query-fill-tokens <n>",
      "QUERY_FILL_TOKENS (default: the worker's, MAX_BATCH_TOKENS / 4)",
      nonNegativeInt,
    )
    .option("--out <dir>", "where results files go", "bench/results/priority")
    .parse(argv, { from: "user" });
  const o = program.opts();
  const sizes = o.quick ? QUICK : FULL;
  return {
    queryRate: o.queryRate,
    phaseSeconds: o.phaseSeconds ?? sizes.phaseSeconds,
    rounds: o.rounds ?? sizes.rounds,
    settleSeconds: o.settleSeconds ?? sizes.settleSeconds,
    batchReps: o.batchReps ?? sizes.batchReps,
    backlogJobs: o.backlogJobs,
    queryTimeoutMs: o.queryTimeoutMs,
    ...sharedOptionsFrom(o),
  };
}
