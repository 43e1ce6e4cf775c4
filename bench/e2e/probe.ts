/** `npm run bench:probe`: the quick side-by-side of the model alone and the worker end to end
 *  on the same turn-level chunks, now a thin front end to the benchmark harness (`npm run
 *  bench` does this and more). Options via env, as before: PROBE_CHUNKS (default 1500),
 *  PROBE_PER_JOB (chunks per job, 64), PROBE_LAYERS (6), PROBE_HIDDEN (384); the worker's own
 *  settings (MAX_BATCH_TOKENS, TOKENIZER_THREADS, ...) apply as to any worker. Writes no
 *  results file. */
import { runBenchmark } from "./run-benchmark.js";
import { parseBenchArgs } from "./options.js";

const env = process.env;
const args = [
  "--only",
  "model,e2e",
  "--granularity",
  "turns",
  "--repeat",
  "1",
  "--no-write",
  "--turn-chunks",
  env.PROBE_CHUNKS ?? "1500",
  "--per-job",
  env.PROBE_PER_JOB ?? "64",
  "--layers",
  env.PROBE_LAYERS ?? "6",
  "--hidden",
  env.PROBE_HIDDEN ?? "384",
  ...(env.MAX_BATCH_TOKENS ? ["--max-batch-tokens", env.MAX_BATCH_TOKENS] : []),
  ...(env.TOKENIZER_THREADS ? ["--tokenizer-threads", env.TOKENIZER_THREADS] : []),
];

runBenchmark(parseBenchArgs(args), args).then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`probe failed: ${err.message}`);
    process.exit(1);
  },
);
