/** What every bench run shares around its measurements: the settings of its measured workers
 *  (environment first, then the bench's options), the public part of their configuration, the
 *  wait for a quiet machine before each timed part, the tokenizer used to measure lengths, and
 *  the header every results file starts with. Used by `npm run bench` and `npm run
 *  bench:priority` alike, so their workers and results files match. Acts only when called. */
import { existsSync } from "node:fs";
import type { RedisClient } from "../../shared/redis.js";
import os from "node:os";
import path from "node:path";
import { configShape, type Config } from "../../shared/config.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { resolveTokenizerBackend } from "../../worker/adapters/tokenizer-backend.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import type { BenchModel } from "./bench-model.js";
import type { CorpusSource } from "./corpus.js";
import { waitForQuiet } from "./cpu.js";
import { gitInfo, machineInfo, type GitInfo, type MachineInfo } from "./machine.js";
import type { Gate } from "./measure-children.js";
import type { SharedOptions } from "./options.js";
import { displayPath } from "./paths.js";
import type { RunHeader } from "./results-schema.js";

/** Settings the harness owns per run; everything else may come from the environment. */
const HARNESS_KEYS = new Set([
  "QUEUE_NAME",
  "COLLECTION",
  "QDRANT_URL",
  "QDRANT_API_KEY",
  "MODEL_DIR",
  "MODEL_FILE",
  "SINK_FILE",
  "HTTP_PORT",
]);
const PRIVATE_KEYS = new Set([...HARNESS_KEYS, "REDIS_URL", "QUEUE_PREFIX", "MODEL_NAME"]);

/** The worker settings of every measured worker: the project's variables from the environment
 *  (except those the harness owns), then the bench's options. The priority-lane bench uses it too,
 *  so its workers match the main bench's. */
export function workerEnv(
  o: Pick<
    SharedOptions,
    "maxBatchTokens" | "maxBatchSize" | "padMultiple" | "perJob" | "concurrency" | "tokenizerThreads"
  >,
  modelDir: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(configShape)) {
    const v = process.env[key];
    if (v !== undefined && v !== "" && !HARNESS_KEYS.has(key)) env[key] = v;
  }
  const longest = Math.floor(o.maxBatchTokens / o.padMultiple) * o.padMultiple;
  return {
    LOG_LEVEL: "warn",
    MAX_SEQ_LENGTH: String(Math.min(8192, longest)),
    ...env,
    MODEL_DIR: modelDir,
    MODEL_NAME: "bench-generated",
    MAX_BATCH_TOKENS: String(o.maxBatchTokens),
    MAX_BATCH_SIZE: String(o.maxBatchSize),
    PAD_MULTIPLE: String(o.padMultiple),
    MAX_CHUNKS_PER_JOB: String(o.perJob),
    WORKER_CONCURRENCY: String(o.concurrency),
    TOKENIZER_THREADS: String(o.tokenizerThreads),
  };
}

export function publicConfig(cfg: Config): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).filter(([k]) => !PRIVATE_KEYS.has(k)));
}

export async function redisPid(connection: RedisClient): Promise<number | undefined> {
  const m = /process_id:(\d+)/.exec(await connection.info("server"));
  return m && existsSync(`/proc/${m[1]}`) ? Number(m[1]) : undefined;
}

/** Before each timed part, waits for a quiet second (see waitForQuiet) unless `--quiet-wait 0`. */
export function quietGate(o: Pick<SharedOptions, "quietWait" | "quietThreshold">, redis: number | undefined): Gate {
  const cores = os.cpus().length;
  return (pid: number) =>
    o.quietWait > 0
      ? waitForQuiet([process.pid, pid, ...(redis ? [redis] : [])], {
          threshold: o.quietThreshold,
          maxSeconds: o.quietWait,
          cores,
        })
      : Promise.resolve({ waitedSeconds: 0, othersShareBefore: NaN, quiet: false });
}

/** A tokenizer pool as the worker would build it for this model and configuration. */
export async function benchTokenizer(model: BenchModel, cfg: Config): Promise<TokenizerPool> {
  const { backend } = await resolveTokenizerBackend(cfg.TOKENIZER_BACKEND);
  return new TokenizerPool({
    tokenizerPath: model.files.tokenizerPath,
    maxLength: cfg.MAX_SEQ_LENGTH,
    eosId: locateModelFiles(model.files.dir).eosId,
    backend,
    threads: Math.min(2, os.cpus().length),
  });
}

/** When and where a run started, logged as it starts. */
export interface RunStart {
  started: Date;
  t0: number;
  machine: MachineInfo;
  git: GitInfo;
}

export function startRun(log: (s: string) => void): RunStart {
  const started = new Date();
  const t0 = performance.now();
  const machine = machineInfo();
  const git = gitInfo();
  log(
    `machine: ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, ` +
      `load average ${machine.loadAverage.start.toFixed(2)}; commit ${git.commit}${git.dirty ? " (dirty)" : ""}`,
  );
  return { started, t0, machine, git };
}

/** Notes on stand-ins a run measured with: then its figures only show that the harness works. */
export function standInNotes(source: CorpusSource, model: BenchModel): string[] {
  const notes: string[] = [];
  if (source.kind === "sample") {
    notes.push(
      "Corpus: the bundled synthetic sample (bench/sample), not real transcripts; " +
        "figures only show that the harness works.",
    );
  }
  if (model.description.tokenizer.startsWith("generated")) {
    notes.push("Tokenizer: the generated test tokenizer, not BGE-M3's; token counts are not BGE-M3's.");
  }
  return notes;
}

/** The header of a results file, taken as the run ends: no paths of this machine, no secrets. */
export function runHeader(
  run: RunStart,
  args: string[],
  o: Pick<SharedOptions, "corpus" | "out">,
  cfg: Config,
  model: BenchModel,
  corpus: { source: CorpusSource; documents: number; skipped: number },
): RunHeader {
  run.machine.loadAverage.end = os.loadavg()[0];
  return {
    startedAt: run.started.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: (performance.now() - run.t0) / 1000,
    git: run.git,
    machine: run.machine,
    args: args.map((x) => (path.isAbsolute(x) ? displayPath(x) : x)),
    options: { ...o, corpus: o.corpus && displayPath(o.corpus), out: displayPath(o.out) },
    workerConfig: publicConfig(cfg),
    model: model.description,
    corpus: {
      kind: corpus.source.kind,
      label: corpus.source.label,
      documents: corpus.documents,
      skippedRecords: corpus.skipped,
    },
  };
}
