/** Child process for the end-to-end measurements: one worker process exactly as `npm run
 *  worker` assembles it (startWorker: BullMQ consumer, tokenizer threads, batcher, model
 *  thread, Qdrant sink), configured from the environment. The producer and the Qdrant
 *  stand-in stay in the parent, as separate services would be. For the analysis it wraps the
 *  model port to log when each batch is handed to the model thread and when it returns, and
 *  reads its own per-thread CPU time from /proc. Protocol: ready -> mark -> stats -> close. */
import { readdirSync, readFileSync } from "node:fs";
import { parseConfig } from "../../shared/config.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics, metricTotal, type Metrics } from "../../worker/metrics.js";
import { startWorker } from "../../worker/app.js";
import type { ModelBatch } from "../../worker/core/ports.js";
import { childPort, peakRssBytes } from "../lib/child-process.js";
import { machineBusySeconds } from "../lib/cpu.js";

export interface BatchRecord {
  /** Epoch milliseconds (this machine's clock, comparable with the parent's Date.now()). */
  start: number;
  end: number;
  size: number;
  paddedLength: number;
  realTokens: number;
  /** The batch carried query texts (the priority lane). */
  interactive: boolean;
}

export interface WorkerStats {
  type: "stats";
  batches: BatchRecord[];
  /** Counters since `mark` (the warm-up job is excluded). */
  metrics: Record<string, number>;
  /** Sum and count per pipeline stage from embed_stage_duration_seconds. */
  stages: Record<string, { sum: number; count: number }>;
  cpuSeconds: number;
  /** All processes on the machine, and the wall time, between mark and stats. */
  machineCpuSeconds: number;
  windowSeconds: number;
  mainThreadCpuSeconds: number;
  /** CPU seconds of every other thread since `mark`, largest first (Node names them all "node"). */
  otherThreadsCpuSeconds: number[];
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

function threadTicks(): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), Number(fields[11]) + Number(fields[12])); // utime, stime
    }
  } catch {
    // not Linux: per-thread figures stay empty
  }
  return out;
}

async function stageSums(metrics: Metrics): Promise<Record<string, { sum: number; count: number }>> {
  const out: Record<string, { sum: number; count: number }> = {};
  for (const v of (await metrics.stage.get()).values) {
    const stage = String(v.labels.stage);
    out[stage] ??= { sum: 0, count: 0 };
    if (v.metricName?.endsWith("_sum")) out[stage].sum += v.value; // summed over lanes
    if (v.metricName?.endsWith("_count")) out[stage].count += v.value;
  }
  return out;
}

const port = childPort();
const cfg = parseConfig(process.env);
const metrics = createMetrics({ defaultMetrics: false });
const running = await startWorker(cfg, {
  log: createLogger({ level: cfg.LOG_LEVEL, name: "bench-worker" }),
  metrics,
  onFatal: () => process.exit(1),
});

let batches: BatchRecord[] = [];
const model = running.model;
const embed = model.embed.bind(model);
model.embed = async (batch: ModelBatch) => {
  const start = performance.timeOrigin + performance.now();
  const out = await embed(batch);
  let real = 0;
  for (const s of batch.sequences) real += s.length;
  batches.push({
    start,
    end: performance.timeOrigin + performance.now(),
    size: batch.sequences.length,
    paddedLength: batch.paddedLength,
    realTokens: real,
    interactive: Boolean(batch.queryLane),
  });
  return out;
};

const COUNTERS = [
  "embed_chunks_total",
  "embed_tokens_total",
  "embed_padded_tokens_total",
  "embed_batches_total",
  "embed_errors_total",
  "embed_truncated_chunks_total",
  "embed_sink_requests_total",
];

async function counters(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of COUNTERS) out[n] = await metricTotal(metrics, n);
  return out;
}

let counters0 = await counters();
let stages0 = await stageSums(metrics);
let cpu0 = process.cpuUsage();
let ticks0 = threadTicks();
let machine0 = machineBusySeconds();
let wall0 = performance.now();
port.send({ type: "ready", pid: process.pid });

port.on(async (m) => {
  if (m.type === "mark") {
    batches = [];
    counters0 = await counters();
    stages0 = await stageSums(metrics);
    cpu0 = process.cpuUsage();
    ticks0 = threadTicks();
    machine0 = machineBusySeconds();
    wall0 = performance.now();
    port.send({ type: "marked" });
  } else if (m.type === "stats") {
    const cpu = process.cpuUsage(cpu0);
    const machineCpuSeconds = machineBusySeconds() - machine0;
    const windowSeconds = (performance.now() - wall0) / 1000;
    const ticks = threadTicks();
    const perThread = [...ticks.entries()].map(([tid, t]) => ({ tid, s: (t - (ticks0.get(tid) ?? 0)) / CLOCK_TICKS }));
    const now = await counters();
    const values: Record<string, number> = {};
    for (const n of COUNTERS) values[n] = now[n] - counters0[n];
    const stats: WorkerStats = {
      type: "stats",
      batches,
      metrics: values,
      stages: Object.fromEntries(
        Object.entries(await stageSums(metrics)).map(([k, v]) => [
          k,
          { sum: v.sum - (stages0[k]?.sum ?? 0), count: v.count - (stages0[k]?.count ?? 0) },
        ]),
      ),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      machineCpuSeconds,
      windowSeconds,
      mainThreadCpuSeconds: perThread.find((p) => p.tid === process.pid)?.s ?? NaN,
      otherThreadsCpuSeconds: perThread
        .filter((p) => p.tid !== process.pid && p.s > 0)
        .map((p) => p.s)
        .sort((a, b) => b - a),
    };
    port.send(stats as never);
  } else if (m.type === "close") {
    await running.close();
    port.send({ type: "closed", peakRssBytes: peakRssBytes() });
    process.exit(0);
  }
});
