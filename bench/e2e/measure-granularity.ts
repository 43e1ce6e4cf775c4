/** One granularity's measurements, in rounds: model alone, the worker end to end, its
 *  PAD_MULTIPLE=1 variant (turns), the FIFO ablation and transformers.js, on the same chunks;
 *  measurements named in --repeat-only run every round, the rest in round 1, and every other
 *  round runs them in reverse order. Then, for turns, job latency under a steady load set from
 *  the end-to-end throughput just measured. */
import { mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import type { Config } from "../../shared/config.js";
import { planBatches } from "../../worker/core/batcher.js";
import type { BenchModel } from "../lib/bench-model.js";
import type { ChunkSet } from "../lib/corpus.js";
import { cpuWindow, type CpuWindow, type QuietWait } from "../lib/cpu.js";
import { maxCosineGap, measureModelAlone, measurePeer, type ModelAloneResult } from "../lib/measure-children.js";
import { measureE2e, measureLatency } from "./measure-e2e.js";
import type { E2eContext } from "../lib/worker-process.js";
import type { BenchOptions, Measurement } from "./options.js";
import { summarizeProfiles } from "./profile-summary.js";
import type {
  BenchResults,
  E2eResult,
  GranularityResult,
  MeasurementKind,
  PlannerRow,
  ThreadProfile,
  ThroughputRun,
} from "../lib/results-schema.js";
import { summarizeLengths } from "../lib/stats.js";
import { medianRun } from "./targets.js";

/** Dense vectors kept from the model-alone run to compare with the peer's. */
const KEEP_VECTORS = 16;

export interface RunContext {
  o: BenchOptions;
  env: Record<string, string>;
  cfg: Config;
  ctx: E2eContext;
  model: BenchModel;
  log: (s: string) => void;
  profileDir: string;
  /** Findings worth a line in the results (appended to). */
  notes: string[];
}

function methods(cfg: Config, o: BenchOptions, g: ChunkSet["granularity"]): GranularityResult["methods"] {
  const limits = `MAX_BATCH_TOKENS=${cfg.MAX_BATCH_TOKENS}, MAX_BATCH_SIZE=${cfg.MAX_BATCH_SIZE}, PAD_MULTIPLE=${cfg.PAD_MULTIPLE}, BATCH_OVERHEAD_TOKENS=${cfg.BATCH_OVERHEAD_TOKENS}`;
  const worker =
    `one worker process (startWorker, as npm run worker) in a child process: BullMQ on the real Redis, WORKER_CONCURRENCY=${cfg.WORKER_CONCURRENCY}, ` +
    `TOKENIZER_THREADS=${cfg.TOKENIZER_THREADS}, INTRA_OP_THREADS=${cfg.INTRA_OP_THREADS || "default"}, OUTPUTS=${cfg.OUTPUTS.join(",")}, upserts over HTTP to the Qdrant-compatible test server in the parent; ` +
    `all jobs (up to ${o.perJob} chunks each) added with addBulk at once, timed from the first add to the last job's finishedOn`;
  const m: GranularityResult["methods"] = {
    model: `the worker's ONNX model thread alone in a child process, pre-tokenized chunks, planBatches over the whole set at once (${limits}), two batches in flight, model calls timed`,
    e2e: `${worker}; sorted batcher, ${limits}`,
    fifo: `${worker}; BATCH_STRATEGY=fifo: batches of MAX_BATCH_SIZE=${o.fifoBatchSize} in arrival order, padded to their longest, no token budget`,
    peer:
      `transformers.js 4.3.1 pipeline("feature-extraction") on the plain last_hidden_state export of the same weights, local files only, in a child process; ` +
      `${o.peerBatchSize} texts per call in arrival order, { pooling: "cls", normalize: true }; calls timed; padding from its tokenizer (each call padded to its longest)`,
  };
  if (g === "turns")
    m["e2e-pad1"] =
      `${worker}; sorted batcher with PAD_MULTIPLE=1 and BATCH_OVERHEAD_TOKENS=${o.variantOverhead} (a setting that trades more, smaller batches for less padding)`;
  return m;
}

interface Measured {
  seconds: number;
  chunks: number;
  tokens: number;
  paddedTokens: number;
  batches: number;
  peakRssBytes?: number;
  cpu?: CpuWindow;
  quietWait?: QuietWait;
}

function throughputRun(kind: MeasurementKind, round: number, x: Measured): ThroughputRun {
  return {
    kind,
    round,
    seconds: x.seconds,
    chunks: x.chunks,
    tokens: x.tokens,
    paddedTokens: x.paddedTokens,
    batches: x.batches,
    tokensPerSecond: x.tokens / x.seconds,
    chunksPerSecond: x.chunks / x.seconds,
    paddingEfficiency: x.tokens / x.paddedTokens,
    peakRssBytes: x.peakRssBytes,
    cpu: x.cpu,
    quietWait: x.quietWait,
  };
}

function fromE2e(kind: MeasurementKind, round: number, r: E2eResult): ThroughputRun {
  const { seconds, chunks, tokens, paddedTokens, batches, peakRssBytes, cpu, quietWait, ...rest } = r;
  return {
    ...throughputRun(kind, round, { seconds, chunks, tokens, paddedTokens, batches, peakRssBytes, cpu, quietWait }),
    e2e: rest,
  };
}

/** A child-only measurement's CPU window: the parent only waits, so harness CPU is ~0. */
function childCpu(r: ModelAloneResult): CpuWindow {
  return cpuWindow(r.machineCpuSeconds, r.cpuSeconds, 0, r.seconds, os.cpus().length);
}

function plannerRows(lengths: number[], cfg: Config, o: BenchOptions): PlannerRow[] {
  const rows: PlannerRow[] = [];
  for (const padMultiple of [...new Set([1, o.padMultiple])]) {
    for (const overhead of [...new Set([0, o.variantOverhead, cfg.BATCH_OVERHEAD_TOKENS])].sort((a, b) => a - b)) {
      const plan = planBatches(
        lengths.map((length) => ({ length })),
        {
          maxBatchTokens: cfg.MAX_BATCH_TOKENS,
          maxBatchSize: cfg.MAX_BATCH_SIZE,
          maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
          padMultiple,
          batchOverheadTokens: overhead,
        },
      );
      const real = plan.reduce((a, b) => a + b.realTokens, 0);
      rows.push({
        padMultiple,
        batchOverheadTokens: overhead,
        batches: plan.length,
        paddingEfficiency: real / plan.reduce((a, b) => a + b.paddedTokens, 0),
      });
    }
  }
  return rows;
}

function line(g: string, run: ThroughputRun, model?: ThroughputRun): string {
  const vs =
    model && run.kind !== "model"
      ? `, ${(run.tokensPerSecond / model.tokensPerSecond).toFixed(2)} x model alone (same round)`
      : "";
  const pts = run.e2e
    ? `; points ${run.e2e.pointsWritten}/${run.e2e.expectedPoints}, failed jobs ${run.e2e.failedJobs}`
    : "";
  const others =
    run.cpu && Number.isFinite(run.cpu.othersShare)
      ? `; other processes took ${Math.round(run.cpu.othersShare * 100)}% of the CPU`
      : "";
  const q = run.quietWait;
  const waited =
    q && q.waitedSeconds > 1.5
      ? ` (after waiting ${q.waitedSeconds.toFixed(0)} s for a quieter machine${q.quiet ? "" : ", in vain"})`
      : "";
  return (
    `${g.padEnd(7)} ${`${run.kind} #${run.round}`.padEnd(12)} ${run.chunks} chunks, ${run.tokens} tokens, ${run.batches} batches in ${run.seconds.toFixed(2)} s = ` +
    `${Math.round(run.tokensPerSecond)} tokens/s, ${run.chunksPerSecond.toFixed(1)} chunks/s, padding efficiency ${run.paddingEfficiency.toFixed(3)}${vs}${pts}${others}${waited}`
  );
}

export async function measureGranularity(
  run: RunContext,
  set: ChunkSet,
  ids: number[][],
): Promise<{ result: GranularityResult; profile?: ThreadProfile[]; latency?: BenchResults["latency"] }> {
  const { o, env, cfg, ctx, model, log, profileDir, notes } = run;
  const want = (m: Measurement) => o.only.includes(m);
  let profile: ThreadProfile[] | undefined;
  let latency: BenchResults["latency"];
  const lengths = ids.map((x) => x.length);
  const g: GranularityResult = {
    granularity: set.granularity,
    how: set.how,
    documents: set.documents,
    jobs: set.jobs.length,
    lengths: summarizeLengths(lengths),
    methods: {},
    runs: [],
    planner: plannerRows(lengths, cfg, o),
  };
  const all = methods(cfg, o, set.granularity);
  log(
    `${set.granularity}: ${set.how}; ${set.texts.length} chunks, ${g.lengths.total} tokens in ${set.jobs.length} jobs`,
  );
  let dense: number[][] = [];
  for (let round = 1; round <= o.repeat; round++) {
    const push = (run: ThroughputRun) => {
      g.runs.push(run);
      g.methods[run.kind] = all[run.kind];
      log(
        line(
          set.granularity,
          run,
          g.runs.find((r) => r.kind === "model" && r.round === round),
        ),
      );
    };
    const steps: Array<[Measurement, () => Promise<void>]> = [
      [
        "model",
        async () => {
          const r = await measureModelAlone(env, ids, KEEP_VECTORS, ctx.gate);
          dense = r.dense;
          push(throughputRun("model", round, { ...r, chunks: ids.length, tokens: r.realTokens, cpu: childCpu(r) }));
        },
      ],
      [
        "e2e",
        async () => {
          const profiling = o.cpuProf && round === 1 && set.granularity === "turns";
          if (profiling)
            (rmSync(profileDir, { recursive: true, force: true }), mkdirSync(profileDir, { recursive: true }));
          push(
            fromE2e(
              "e2e",
              round,
              await measureE2e(
                { ...ctx, execArgv: profiling ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [] },
                set,
              ),
            ),
          );
          if (profiling) profile = summarizeProfiles(profileDir);
        },
      ],
      [
        "pad1",
        async () => {
          // Skipped when the worker's own settings already are the variant's (CPU defaults).
          const same = cfg.PAD_MULTIPLE === 1 && cfg.BATCH_OVERHEAD_TOKENS === o.variantOverhead;
          if (set.granularity === "turns" && !same)
            push(
              fromE2e(
                "e2e-pad1",
                round,
                await measureE2e(ctx, set, { PAD_MULTIPLE: "1", BATCH_OVERHEAD_TOKENS: String(o.variantOverhead) }),
              ),
            );
        },
      ],
      [
        "fifo",
        async () =>
          push(
            fromE2e(
              "fifo",
              round,
              await measureE2e(ctx, set, { BATCH_STRATEGY: "fifo", MAX_BATCH_SIZE: String(o.fifoBatchSize) }),
            ),
          ),
      ],
      [
        "peer",
        async () => {
          if (!model.peer) return;
          const r = await measurePeer(model.peer.dir, set.texts, o.peerBatchSize, KEEP_VECTORS, ctx.gate);
          const run = throughputRun("peer", round, {
            ...r,
            chunks: set.texts.length,
            tokens: r.realTokens,
            cpu: childCpu(r),
          });
          if (dense.length) run.peerDenseMaxCosineGap = maxCosineGap(r.dense, dense);
          if (r.realTokens !== g.lengths.total)
            notes.push(
              `${set.granularity}: transformers.js counted ${r.realTokens} tokens, the worker's tokenizer ${g.lengths.total}.`,
            );
          push(run);
        },
      ],
    ];
    const due = steps.filter(([m]) => want(m) && (round === 1 || o.repeatOnly.includes(m)));
    // Alternate the order so slow drifts in the machine's load do not always favour the same side.
    for (const [, step] of round % 2 === 0 ? due.reverse() : due) await step();
  }
  const e2e = medianRun(g, "e2e");
  if (want("latency") && set.granularity === "turns" && e2e) {
    const rate = e2e.tokensPerSecond * o.latencyLoad;
    const r = await measureLatency(ctx, set.texts, lengths, {
      tokensPerSecond: rate,
      seconds: o.latencySeconds,
      chunksPerJob: o.latencyJobChunks,
    });
    latency = {
      ...r,
      loadRatio: o.latencyLoad,
      method:
        `a fresh worker process (sorted batcher, settings as end to end); jobs of ${o.latencyJobChunks} turn chunks added one at a time so the offered load is ${Math.round(o.latencyLoad * 100)}% ` +
        `of the end-to-end tokens/s measured just before (${Math.round(rate)} tokens/s) for ${o.latencySeconds} s; latency = BullMQ finishedOn - timestamp of every job, none excluded`,
    };
    log(
      `latency: ${r.jobs} jobs at ${Math.round(rate)} tokens/s offered (${Math.round(r.achievedTokensPerSecond)} achieved): p50 ${Math.round(r.p50Ms)} ms, p95 ${Math.round(r.p95Ms)} ms, p99 ${Math.round(r.p99Ms)} ms, max ${Math.round(r.maxMs)} ms; failed ${r.failedJobs}`,
    );
  }
  return { result: g, profile, latency };
}
