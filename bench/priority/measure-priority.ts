/** Parent side of the priority-lane measurement. One worker process (worker-child.ts, with
 *  QUERY_API=true) embeds a saturating backfill (backfill-backlog.ts) for the whole run; after
 *  an unmeasured settling time, phases alternate A (backfill only) and B (backfill plus
 *  open-loop single-text queries, query-load.ts), `rounds` times. Each phase reads the worker's
 *  `/metrics` over HTTP at its start and end, so its throughput per lane comes from the
 *  worker's own counters; the model-port log of worker-child.ts gives each batch's service time
 *  on the model thread. A and B share one worker so they differ only in the queries. */
import os from "node:os";
import type { QueryOutcome } from "./query-load.js";
import { runQueryLoad } from "./query-load.js";
import { Backlog } from "./backfill-backlog.js";
import type { BenchJob } from "../lib/corpus.js";
import { cpuWindow, harnessCpuSeconds, machineBusySeconds, processCpuSeconds, type QuietWait } from "../lib/cpu.js";
import type { LaneFigures, StoredPhase } from "../lib/results-schema.js";
import { closeWorkerChild, startWorkerChild, type E2eContext } from "../lib/worker-process.js";
import { parsePrometheusText, sumOf, type Sample } from "../lib/prom-text.js";
import type { BatchRecord, WorkerStats } from "../children/worker-child.js";
import { freePort } from "../../kit/harness.js";

/** One phase as measured: the stored figures with every query request, raw. */
export type PhaseResult = Omit<StoredPhase, "queries"> & {
  /** B only: every query request of the phase. */
  queries?: QueryOutcome[];
};

export interface PriorityRun {
  phases: PhaseResult[];
  quietWait: QuietWait;
  backfill: { jobsAdded: number; passes: number; failedJobs: number; minWaitingOverall: number };
  /** The worker process failed to shut down cleanly (after every figure was taken). */
  shutdownError?: string;
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheusText(await res.text());
}

/** Service time of each batch on the one model thread, which runs one batch at a time. */
function withServiceTimes(batches: readonly BatchRecord[]): Array<BatchRecord & { service: number }> {
  const byEnd = [...batches].sort((a, b) => a.end - b.end);
  let prevEnd = -Infinity;
  return byEnd.map((b) => {
    const service = (b.end - Math.max(b.start, prevEnd)) / 1000;
    prevEnd = b.end;
    return { ...b, service };
  });
}

function lane(
  before: Sample[],
  after: Sample[],
  name: "queue" | "interactive",
  batches: Array<BatchRecord & { service: number }>,
): LaneFigures {
  const d = (metric: string, labels: Record<string, string>) =>
    sumOf(after, metric, labels) - sumOf(before, metric, labels);
  const mine = batches.filter((b) => b.interactive === (name === "interactive"));
  return {
    tokens: d("embed_tokens_total", { lane: name }),
    chunks: d("embed_chunks_total", { lane: name }),
    batches: d("embed_batches_total", { lane: name }),
    inferSum: d("embed_stage_duration_seconds_sum", { stage: "infer", lane: name }),
    inferCount: d("embed_stage_duration_seconds_count", { stage: "infer", lane: name }),
    serviceSeconds: mine.map((b) => b.service),
    paddedTokens: mine.reduce((a, b) => a + b.size * b.paddedLength, 0),
    realTokensInBatches: mine.reduce((a, b) => a + b.realTokens, 0),
  };
}

export interface PriorityPlan {
  ctx: E2eContext;
  /** Settings of this worker on top of ctx.env (QUERY_FILL_TOKENS, ...). */
  extraEnv: Record<string, string>;
  backfill: readonly BenchJob[];
  queryTexts: readonly string[];
  modelName: string;
  queryRate: number;
  phaseSeconds: number;
  rounds: number;
  settleSeconds: number;
  backlogJobs: number;
  queryTimeoutMs: number;
  log: (s: string) => void;
}

export async function measurePriority(p: PriorityPlan): Promise<PriorityRun> {
  let shutdownError: string | undefined;
  const port = await freePort();
  const warmTexts = p.backfill[0].data.chunks.map((c) => c.text);
  // DRAIN_TIMEOUT_MS: at the end the worker holds a backlog it must not finish; hand it back at once.
  const { child, queue, collection, warmupPoints } = await startWorkerChild(
    p.ctx,
    { QUERY_API: "true", HTTP_PORT: String(port), DRAIN_TIMEOUT_MS: "1000", ...p.extraEnv },
    warmTexts,
  );
  const backlog = new Backlog(queue, p.backfill, p.backlogJobs);
  const url = `http://127.0.0.1:${port}/v1/embeddings`;
  let run: Omit<PriorityRun, "shutdownError">;
  try {
    await backlog.topUp();
    backlog.start(1000);
    // The query path's first use (connection, tokenizer thread), outside any measurement.
    const warm = await runQueryLoad(url, p.modelName, p.queryTexts, {
      rate: 2,
      seconds: 1,
      timeoutMs: p.queryTimeoutMs,
      first: 0,
    });
    const bad = warm.find((q) => q.status !== 200 || q.error);
    if (bad) throw new Error(`warm-up query failed: HTTP ${bad.status} ${bad.error ?? ""}`);
    p.log(`backfill running; settling for ${p.settleSeconds} s before the first phase`);
    await new Promise((r) => setTimeout(r, p.settleSeconds * 1000));
    const quietWait = await p.ctx.gate(child.pid);
    await child.request({ type: "mark" }, "marked");
    const phases: Array<
      Omit<PhaseResult, "queue" | "interactive"> & { before: Sample[]; after: Sample[]; t0: number; t1: number }
    > = [];
    let sent = warm.length;
    for (let round = 1; round <= p.rounds; round++) {
      for (const kind of ["A", "B"] as const) {
        const before = await scrape(port);
        const cpu0 = {
          machine: machineBusySeconds(),
          worker: processCpuSeconds(child.pid),
          harness: harnessCpuSeconds(p.ctx.redisPid),
        };
        const t0 = Date.now();
        let queries: QueryOutcome[] | undefined;
        if (kind === "B") {
          queries = await runQueryLoad(url, p.modelName, p.queryTexts, {
            rate: p.queryRate,
            seconds: p.phaseSeconds,
            timeoutMs: p.queryTimeoutMs,
            first: sent,
          });
          sent += queries.length;
        }
        // A B phase lasts until its last answer, and at least as long as an A phase.
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + p.phaseSeconds * 1000 - Date.now())));
        const after = await scrape(port);
        const t1 = Date.now();
        const harness = harnessCpuSeconds(p.ctx.redisPid) - cpu0.harness;
        const cpu = cpuWindow(
          machineBusySeconds() - cpu0.machine,
          processCpuSeconds(child.pid) - cpu0.worker,
          harness,
          (t1 - t0) / 1000,
          os.cpus().length,
        );
        const samples = backlog.between(t0, t1);
        phases.push({
          kind,
          round,
          seconds: (t1 - t0) / 1000,
          before,
          after,
          t0,
          t1,
          queries,
          cpu,
          backlogSamples: samples.length,
          minWaiting: Math.min(...samples.map((s) => s.waiting)),
          minActive: Math.min(...samples.map((s) => s.active)),
        });
        const q = queries ? `, ${queries.length} queries` : "";
        p.log(
          `round ${round} phase ${kind}: ${((t1 - t0) / 1000).toFixed(1)} s, queue ${Math.round(sumOf(after, "embed_tokens_total", { lane: "queue" }) - sumOf(before, "embed_tokens_total", { lane: "queue" }))} tokens${q}; other processes ${Math.round(cpu.othersShare * 100)}% of the CPU`,
        );
      }
    }
    const stats = (await child.request({ type: "stats" }, "stats")) as unknown as WorkerStats;
    await backlog.stop();
    const failedJobs = (await queue.getJobCounts("failed")).failed;
    const served = withServiceTimes(stats.batches);
    const results: PhaseResult[] = phases.map(({ before, after, t0, t1, ...ph }) => {
      const inPhase = served.filter((b) => b.end > t0 && b.end <= t1);
      return {
        ...ph,
        queue: lane(before, after, "queue", inPhase),
        interactive: lane(before, after, "interactive", inPhase),
      };
    });
    const measured = backlog.between(phases[0].t0, phases[phases.length - 1].t1);
    run = {
      phases: results,
      quietWait,
      backfill: {
        jobsAdded: backlog.totals.jobs,
        passes: backlog.totals.passes,
        failedJobs,
        minWaitingOverall: Math.min(...measured.map((s) => s.waiting)),
      },
    };
  } finally {
    await backlog.stop();
    shutdownError = await closeWorkerChild(child, queue, p.ctx.server, collection, warmupPoints).then(
      () => undefined,
      async (err: Error) => {
        child.kill();
        p.ctx.server.reset();
        await queue.obliterate({ force: true }).catch(() => undefined);
        await queue.close();
        return err.message;
      },
    );
  }
  return { ...run, shutdownError };
}
