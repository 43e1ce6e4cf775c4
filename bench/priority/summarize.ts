/** The figures of `npm run bench:priority` computed from its raw data (shapes in
 *  lib/results-schema.ts): each phase's queries, the model-alone batch times, and the summary and
 *  goals, so the Markdown (report-format.ts) and any later reading agree with the raw data. The
 *  goals come from the issue that introduced the priority lane: under a saturating backfill,
 *  single-query p95 latency within 2 x one batch at the token budget, and queued throughput
 *  dropping by less than the share of tokens the queries consume. Pure. */
import type { QueryOutcome } from "./query-load.js";
import type {
  BatchTiming,
  GoalResult,
  PhaseQueries,
  PriorityResults,
  PrioritySummary,
  StoredPhase,
} from "../lib/results-schema.js";
import { median, percentile } from "../lib/stats.js";

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

export function phaseQueries(outcomes: readonly QueryOutcome[]): PhaseQueries {
  const byStatus: Record<string, number> = {};
  for (const q of outcomes) byStatus[q.status] = (byStatus[q.status] ?? 0) + 1;
  const bad = outcomes.filter((q) => q.status !== 200 || q.error);
  return {
    sent: outcomes.length,
    ok: outcomes.length - bad.length,
    failed: bad.length,
    byStatus,
    firstError: bad[0] && `HTTP ${bad[0].status}: ${bad[0].error ?? ""}`,
    latenciesMs: outcomes.map((q) => Math.round(q.ms * 10) / 10),
    promptTokens: sum(outcomes.map((q) => q.promptTokens)),
    maxSendLagMs: Math.max(0, ...outcomes.map((q) => q.sendLagMs)),
  };
}

export function timing(name: string, ids: number[][], paddedLength: number, seconds: number[]): BatchTiming {
  const ms = seconds.map((s) => s * 1000);
  return {
    name,
    rows: ids.length,
    paddedLength,
    paddedTokens: ids.length * paddedLength,
    realTokens: sum(ids.map((s) => s.length)),
    seconds,
    medianMs: median(ms),
    p95Ms: percentile(ms, 95),
  };
}

export function summarize(
  phases: readonly StoredPhase[],
  batchTimes: PriorityResults["batchTimes"],
): { summary: PrioritySummary; goals: GoalResult[] } {
  const A = phases.filter((p) => p.kind === "A");
  const B = phases.filter((p) => p.kind === "B");
  const rate = (p: StoredPhase) => p.queue.tokens / p.seconds;
  const adjusted = (p: StoredPhase) => rate(p) / (1 - p.cpu.othersShare);
  const latencies = B.flatMap((p) => p.queries?.latenciesMs ?? []);
  const requests = sum(B.map((p) => p.queries?.sent ?? 0));
  const failed = sum(B.map((p) => p.queries?.failed ?? 0));
  const service = (lane: "queue" | "interactive") => phases.flatMap((p) => p[lane].serviceSeconds);
  // Failed requests count with the time they took: a timeout must not leave the percentiles.
  const p95 = percentile(latencies, 95);
  const queueA = median(A.map(rate));
  const queueB = median(B.map(rate));
  const interactiveTokens = sum(B.map((p) => p.interactive.tokens));
  const workerQueueServiceMeanMs = (sum(service("queue")) / service("queue").length) * 1000;
  const summary: PrioritySummary = {
    tBatchMedianMs: batchTimes.full.medianMs,
    tBatchP95Ms: batchTimes.full.p95Ms,
    tQueryBatchMedianMs: batchTimes.query.medianMs,
    workerQueueInferMeanMs:
      (sum(phases.map((p) => p.queue.inferSum)) / sum(phases.map((p) => p.queue.inferCount))) * 1000,
    workerQueueServiceMeanMs,
    workerInteractiveServiceMeanMs: (sum(service("interactive")) / service("interactive").length) * 1000,
    queries: {
      requests,
      ok: requests - failed,
      failed,
      p50Ms: percentile(latencies, 50),
      p95Ms: p95,
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.length ? Math.max(...latencies) : NaN,
    },
    p95OverTBatch: p95 / batchTimes.full.medianMs,
    p95OverWorkerService: p95 / workerQueueServiceMeanMs,
    queueTokensPerSecondA: queueA,
    queueTokensPerSecondB: queueB,
    throughputDrop: 1 - queueB / queueA,
    throughputDropAdjusted: 1 - median(B.map(adjusted)) / median(A.map(adjusted)),
    perRoundDrop: B.map((b) => {
      const a = A.find((x) => x.round === b.round);
      return a ? 1 - rate(b) / rate(a) : NaN;
    }),
    queryTokenShare: interactiveTokens / (interactiveTokens + sum(B.map((p) => p.queue.tokens))),
    interactiveModelShare: sum(B.flatMap((p) => p.interactive.serviceSeconds)) / sum(B.map((p) => p.seconds)),
    interactivePaddingEfficiency:
      sum(phases.map((p) => p.interactive.realTokensInBatches)) / sum(phases.map((p) => p.interactive.paddedTokens)),
    queuePaddingEfficiency:
      sum(phases.map((p) => p.queue.realTokensInBatches)) / sum(phases.map((p) => p.queue.paddedTokens)),
    minWaitingJobs: Math.min(...phases.map((p) => p.minWaiting)),
    othersCpuShareMax: Math.max(...phases.map((p) => p.cpu.othersShare)),
  };
  const goals: GoalResult[] = [
    {
      id: "query-p95",
      description:
        "single-query p95 latency ÷ one batch at the token budget (model alone, median); every request answered 200",
      value: summary.p95OverTBatch,
      comparator: "<=",
      threshold: 2,
      met: summary.p95OverTBatch <= 2 && failed === 0,
    },
    {
      id: "queue-drop",
      description: "queued tokens/s drop, median B vs median A, must stay below the query token share",
      value: summary.throughputDrop,
      comparator: "<",
      threshold: summary.queryTokenShare,
      met: summary.throughputDrop < summary.queryTokenShare,
    },
  ];
  return { summary, goals };
}
