/** Renders a ceiling results file (results-schema.ts, CeilingResults) as Markdown: how it was
 *  run, the per-thread CPU table labelled as an instant stand-in measurement, the targets met or
 *  missed, and the notes. The same text is printed at the end of a run and written beside the
 *  JSON. Pure. */
import type { CeilingCase, CeilingResults } from "../lib/results-schema.js";
import { tokenizerCpuIsBound } from "./figures.js";

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
const k = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : int(n));
const s3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : "n/a");
const pct = (n: number) => `${(n * 100).toFixed(n < 0.1 ? 1 : 0)}%`;

function caseName(c: CeilingCase): string {
  return `${c.targetTokens}${c.mode === "colbert" ? " with ColBERT" : ""}`;
}

/** "(2 threads)" when the tokenizer column sums several threads (the runs table lists each). */
function threads(c: CeilingCase): string {
  const n = c.runs[0]?.cpuSeconds.tokenizer.length ?? 0;
  return n > 1 ? ` (${n} threads)` : "";
}

/** "†" when the case's tokenizer CPU is the native backend's upper bound (footnote below the table). */
function bound(c: CeilingCase): string {
  return c.runs.some(tokenizerCpuIsBound) ? " †" : "";
}

/** The issue's table: CPU seconds per 1,000 chunks per thread (medians over the runs). */
export function renderCeilingTable(r: CeilingResults): string {
  const lines = [
    `**${r.label}** (medians of ${Math.max(...r.cases.map((c) => c.runs.length))} runs; CPU seconds per 1,000 chunks, per thread)`,
    "",
    "| chunk size (mean tokens) | main thread | tokenizer threads | model thread | GC/other threads | main-thread ceiling, chunks/s | main-thread ceiling, tokens/s | main µs/chunk | tokenizer tokens per CPU-s | an H100 on BGE-M3 needs*, chunks/s | ceiling / H100 |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of r.cases) {
    const m = c.median;
    lines.push(
      `| ${caseName(c)} (${m.meanTokens.toFixed(0)}) | ${s3(m.mainPer1k)} | ${s3(m.tokenizerPer1k)}${threads(c)}${bound(c)} | ${s3(m.modelPer1k)} | ${s3(m.otherPer1k)} | ` +
        `${int(m.ceilingChunksPerSecond)} | ${int(m.ceilingTokensPerSecond)} | ${int(m.mainMicrosPerChunk)} | ${int(m.tokenizerTokensPerCpuSecond)}${bound(c)} | ` +
        `${k(m.h100ChunksPerSecondLow)}-${k(m.h100ChunksPerSecondHigh)} | ${pct(m.ratioToH100High)}-${pct(m.ratioToH100Low)} |`,
    );
  }
  if (r.cases.some((c) => bound(c)))
    lines.push(
      "",
      "† native tokenizer backend: it encodes on libuv's threadpool, so tokenizer CPU here is the tokenizer threads plus " +
        "the GC/other threads, an upper bound that includes V8's GC and compiler threads (tokens per CPU-s: a lower bound).",
    );
  lines.push(
    "",
    `\\* ${int(r.h100.low)}-${int(r.h100.high)} tokens/s: ${r.h100.gpu}, an estimate (${r.h100.how}; bench/e2e/gpu-figures.ts), not a measurement.`,
  );
  return lines.join("\n");
}

function renderRuns(r: CeilingResults): string {
  const lines = [
    `**${r.label}** (every run; CPU seconds in the window)`,
    "",
    "| case | run | window s | jobs | chunks enqueued / embedded / stored | tokens | batches | main CPU s | tokenizer CPU s | model CPU s | other CPU s | quiet before |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of r.cases) {
    for (const run of c.runs) {
      const cpu = run.cpuSeconds;
      lines.push(
        `| ${caseName(c)} | ${run.round} | ${run.windowSeconds.toFixed(2)} | ${run.jobs} | ${run.chunksEnqueued} / ${run.chunks} / ${run.pointsStored} | ${run.tokens} | ${run.batches} | ` +
          `${s3(cpu.main)} | ${cpu.tokenizer.map(s3).join(" + ")} | ${s3(cpu.model)} | ${s3(cpu.other)} | ` +
          `${Number.isFinite(run.quietWait.othersShareBefore) ? pct(run.quietWait.othersShareBefore) + " others" : "not waited"} |`,
      );
    }
  }
  return lines.join("\n");
}

export function renderCeilingSummary(r: CeilingResults, file: string): string {
  const out = [
    `# Ceiling: the worker with an instant stand-in model (${r.startedAt})`,
    "",
    `Results file: \`${file}\`. Command: \`npm run bench:ceiling${r.args.length ? ` -- ${r.args.join(" ")}` : ""}\`.`,
    `Machine: ${r.machine.cpus} x ${r.machine.cpuModel}, Node ${r.machine.node}, load average ${r.machine.loadAverage.start.toFixed(2)} at start` +
      `${r.machine.loadAverage.end !== undefined ? `, ${r.machine.loadAverage.end.toFixed(2)} at end` : ""}; commit ${r.git.commit}${r.git.dirty ? " (dirty)" : ""}; ${r.durationSeconds.toFixed(0)} s.`,
    `Corpus: ${r.corpus.label} (${r.corpus.documents} documents). Tokenizer: ${r.model.tokenizer}.`,
    "",
    "## How",
    "",
    ...r.method.map((m) => `- ${m}`),
    "",
    "## Figures",
    "",
    renderCeilingTable(r),
    "",
    "## Targets",
    "",
    ...(r.targets.length
      ? r.targets.map(
          (t) =>
            `- ${t.met ? "met" : "MISSED"}: ${t.description}: ${t.value < 100 ? t.value.toFixed(2) : int(t.value)} (target ${t.comparator} ${t.threshold.toLocaleString("en-US")})`,
        )
      : ["- none evaluated (their cases did not run)"]),
    "",
    "## Runs",
    "",
    renderRuns(r),
  ];
  if (r.notes.length) out.push("", "## Notes", "", ...r.notes.map((n) => `- ${n}`));
  return out.join("\n") + "\n";
}

/** The block docs/performance.md and the README carry for a ceiling results file
 *  (`node dist/bench/e2e/report.js <file>`): where it came from, the table and the targets. */
export function renderCeilingBlock(r: CeilingResults, file: string): string {
  const lines = [
    `\`${file}\`: \`npm run bench:ceiling${r.args.length ? ` -- ${r.args.join(" ")}` : ""}\` on ${r.machine.cpus} x ${r.machine.cpuModel}, ` +
      `Node ${r.machine.node}, load average ${r.machine.loadAverage.start.toFixed(2)} at start, commit ${r.git.commit}; ` +
      `corpus: ${r.corpus.label}; tokenizer: ${r.model.tokenizer}.`,
    "",
    renderCeilingTable(r),
    "",
    ...r.targets.map(
      (t) =>
        `- ${t.met ? "met" : "**missed**"}: ${t.description}: ${t.value < 100 ? t.value.toFixed(2) : int(t.value)} (target ${t.comparator} ${t.threshold.toLocaleString("en-US")})`,
    ),
  ];
  return lines.join("\n") + "\n";
}
