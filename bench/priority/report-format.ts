/** Renders a priority-lane results file as Markdown: the figures table and goals (the block
 *  docs/performance.md carries), then every phase, how the run was done and the notes. Pure: same
 *  file, same text. */
import type { PriorityResults } from "../lib/results-schema.js";
import { fix, int, machineLine, resultsFileLine } from "../lib/report-format.js";

const pct = (x: number, d = 1) => (Number.isFinite(x) ? `${(x * 100).toFixed(d)}%` : "n/a");

function header(r: PriorityResults, file: string): string[] {
  const m = r.model;
  const w = r.workerConfig;
  const o = r.options;
  return [
    resultsFileLine(r, file),
    `${machineLine(r)}; ` +
      `other processes took at most ${pct(r.summary.othersCpuShareMax, 0)} of the CPU in any phase${r.quietWait.quiet ? "" : ` (no quiet second before the phases: others took ${pct(r.quietWait.othersShareBefore, 0)})`}.`,
    `Model: generated XLM-R-shaped encoder with random weights, ${m.layers} layers x ${m.hidden} hidden, vocabulary ${int(m.vocabSize)}, ${fix(m.parameters / 1e6, 1)}M parameters, fp32; tokenizer: ${m.tokenizer}.`,
    `Corpus: ${r.corpus.label}. Backfill: ${r.backfill.how}. Queries: ${r.queryTexts.how}.`,
    `Settings: MAX_BATCH_TOKENS=${w.MAX_BATCH_TOKENS}, QUERY_FILL_TOKENS=${w.QUERY_FILL_TOKENS}, MAX_BATCH_SIZE=${w.MAX_BATCH_SIZE}, PAD_MULTIPLE=${w.PAD_MULTIPLE}, WORKER_CONCURRENCY=${w.WORKER_CONCURRENCY}, MAX_CHUNKS_PER_JOB=${w.MAX_CHUNKS_PER_JOB}; ` +
      `${o.queryRate} queries/s, ${o.rounds} rounds of A (backfill only) and B (backfill + queries), ${o.phaseSeconds} s each, after ${o.settleSeconds} s of settling.`,
  ];
}

function figures(r: PriorityResults): string[] {
  const s = r.summary;
  const b = r.batchTimes;
  return [
    "| figure | value |",
    "|---|---:|",
    `| one batch at the token budget, model alone (${b.full.rows} x ${b.full.paddedLength} tokens, ${b.full.seconds.length} runs): median / p95 | ${int(s.tBatchMedianMs)} / ${int(s.tBatchP95Ms)} ms |`,
    `| the priority lane's batch, model alone (${b.query.rows} rows x ${b.query.paddedLength}: one query + its fill): median | ${int(s.tQueryBatchMedianMs)} ms |`,
    `| queued batch in the worker under load: service time on the model thread, mean | ${int(s.workerQueueServiceMeanMs)} ms |`,
    `| queued batch in the worker: infer stage (embed_stage_duration_seconds, includes waiting behind the batch ahead), mean | ${int(s.workerQueueInferMeanMs)} ms |`,
    `| single-query latency, B phases (${int(s.queries.requests)} requests, ${int(s.queries.failed)} failed): p50 / p95 / p99 / max | ${int(s.queries.p50Ms)} / ${int(s.queries.p95Ms)} / ${int(s.queries.p99Ms)} / ${int(s.queries.maxMs)} ms |`,
    `| p95 ÷ one batch (model alone) | ${fix(s.p95OverTBatch, 2)} |`,
    `| p95 ÷ queued batch service time in the worker | ${fix(s.p95OverWorkerService, 2)} |`,
    `| queued tokens/s, median of A / median of B | ${int(s.queueTokensPerSecondA)} / ${int(s.queueTokensPerSecondB)} |`,
    `| queued throughput drop (per round: ${s.perRoundDrop.map((d) => pct(d)).join(", ")}) | ${pct(s.throughputDrop)} |`,
    `| the same drop with other processes' CPU factored out (estimate: tokens/s ÷ (1 - their share), per phase) | ${pct(s.throughputDropAdjusted)} |`,
    `| query token share of all tokens in B | ${pct(s.queryTokenShare, 2)} |`,
    `| model thread time on interactive batches, share of B wall time | ${pct(s.interactiveModelShare)} |`,
    `| padding efficiency: interactive batches / queued batches | ${fix(s.interactivePaddingEfficiency, 3)} / ${fix(s.queuePaddingEfficiency, 3)} |`,
    `| fewest jobs waiting in the queue during the phases (backlog never empty if > 0) | ${int(s.minWaitingJobs)} |`,
  ];
}

function goals(r: PriorityResults): string[] {
  const rows = ["| goal | measured | needed | result |", "|---|---:|---:|---|"];
  for (const g of r.goals) {
    const v = g.id === "queue-drop" ? pct(g.value) : fix(g.value, 2);
    const t = g.id === "queue-drop" ? pct(g.threshold, 2) : fix(g.threshold, 2);
    rows.push(
      `| ${g.description} | ${v} | ${g.comparator === "<=" ? "≤" : "<"} ${t} | ${g.met ? "met" : "**missed**"} |`,
    );
  }
  return rows;
}

function phaseRows(r: PriorityResults): string[] {
  const rows = [
    "| round | phase | s | queued tokens/s | interactive tokens/s | queued / interactive batches | mean service ms, queued / interactive | queries ok / sent | p95 ms | fewest waiting jobs | other processes' CPU |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const mean = (xs: number[]) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length) * 1000 : NaN);
  for (const p of r.phases) {
    const q = p.queries;
    const sorted = q ? [...q.latenciesMs].sort((a, b) => a - b) : [];
    const p95 = sorted.length ? sorted[Math.min(sorted.length, Math.ceil(0.95 * sorted.length)) - 1] : NaN;
    rows.push(
      `| ${p.round} | ${p.kind} | ${fix(p.seconds, 1)} | ${int(p.queue.tokens / p.seconds)} | ${int(p.interactive.tokens / p.seconds)} | ${p.queue.batches} / ${p.interactive.batches} | ` +
        `${int(mean(p.queue.serviceSeconds))} / ${int(mean(p.interactive.serviceSeconds))} | ${q ? `${q.ok} / ${q.sent}` : ""} | ${q ? int(p95) : ""} | ${p.minWaiting} | ${pct(p.cpu.othersShare, 0)} |`,
    );
  }
  return rows;
}

/** The block docs/performance.md carries: header, figures, goals. */
export function renderPriorityReport(r: PriorityResults, file: string): string {
  return [header(r, file).join("\n"), figures(r).join("\n"), goals(r).join("\n")].join("\n\n") + "\n";
}

export function renderPrioritySummary(r: PriorityResults, file: string): string {
  const out = [
    `# Priority-lane benchmark ${file.replace(/^.*\//, "").replace(/\.json$/, "")}`,
    "",
    renderPriorityReport(r, file).trimEnd(),
    "",
    "## Phases",
    "",
    ...phaseRows(r),
    "",
    "## How it ran",
    "",
  ];
  out.push(
    ...r.method.map((m) => `- ${m}`),
    "",
    `Command: \`npm run bench:priority -- ${r.args.join(" ")}\``,
    "",
    "Worker configuration: `" + JSON.stringify(r.workerConfig) + "`",
    "",
  );
  if (r.notes.length) out.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  return out.join("\n");
}
