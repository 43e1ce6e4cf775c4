/** Renders a results file as Markdown: `renderReport` is the table block docs/performance.md carries
 *  (checked by test/bench-report.test.ts against the file it names), `renderSummary` the
 *  longer per-run summary written next to each results file. Pure: same file, same text. */
import { GPU_ESTIMATES, DATASHEET_SOURCE, TRT_SOURCE, tokenizerThreadsFor } from "./gpu-figures.js";
import type { BenchResults, GranularityResult, MeasurementKind, ThroughputRun } from "../lib/results-schema.js";
import { granularity, medianRun, partnerRun, speedRatio } from "./targets.js";
import { fix, int, machineLine, resultsFileLine } from "../lib/report-format.js";

const LABELS: Record<MeasurementKind, string> = {
  model: "model alone (ceiling)",
  e2e: "end to end (worker)",
  "e2e-pad1": "end to end, PAD_MULTIPLE=1",
  fifo: "FIFO ablation (worker)",
  peer: "transformers.js",
};
/** Row label; the padding variant names its settings. */
function label(kind: MeasurementKind, r?: Pick<BenchResults, "options">): string {
  const overhead = r?.options.variantOverhead;
  return kind === "e2e-pad1" && overhead !== undefined
    ? `${LABELS[kind]}, BATCH_OVERHEAD_TOKENS=${overhead}`
    : LABELS[kind];
}

const ORDER: MeasurementKind[] = ["model", "e2e", "e2e-pad1", "fifo", "peer"];

const mb = (bytes: number | undefined) => (bytes ? `${int(bytes / 1e6)}` : "n/a");
const pct = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? `${Math.round(x * 100)}%` : "n/a");

function header(r: BenchResults, file: string): string[] {
  const m = r.model;
  const lines = [
    resultsFileLine(r, file),
    `${machineLine(r)}.`,
    `Model: generated XLM-R-shaped encoder with random weights, ${m.layers} layers x ${m.hidden} hidden (${m.heads} heads, FFN ${m.intermediate}), ` +
      `vocabulary ${int(m.vocabSize)}, ${fix(m.parameters / 1e6, 1)}M parameters, ${fix(m.fileBytes / 1e6, 1)} MB ${m.precision} ONNX (${m.outputs}); tokenizer: ${m.tokenizer}.`,
    `Corpus: ${r.corpus.label}.`,
  ];
  for (const g of r.granularities) {
    lines.push(
      `- ${g.granularity}: ${g.how}; ${int(g.lengths.count)} chunks in ${int(g.jobs)} jobs, ${int(g.lengths.total)} tokens, ` +
        `${g.lengths.min}-${g.lengths.max} tokens per chunk (median ${g.lengths.p50}, p95 ${g.lengths.p95}).`,
    );
  }
  return lines;
}

function throughputTable(r: BenchResults): string[] {
  const rows = [
    "| corpus | measurement | chunks | tokens | seconds | tokens/s | chunks/s | padding efficiency | ÷ model alone | peak RSS (MB) | CPU taken by other processes |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const g of r.granularities) {
    const model = medianRun(g, "model");
    for (const kind of ORDER) {
      const run = medianRun(g, kind);
      if (!run) continue;
      const vs = model ? fix(speedRatio(g, kind, "model"), 2) : "n/a";
      rows.push(
        `| ${g.granularity} | ${label(kind, r)} | ${int(run.chunks)} | ${int(run.tokens)} | ${fix(run.seconds, 1)} | ${int(run.tokensPerSecond)} | ${fix(run.chunksPerSecond, 1)} | ${fix(run.paddingEfficiency, 3)} | ${vs} | ${mb(run.peakRssBytes)} | ${pct(run.cpu?.othersShare)} |`,
      );
    }
  }
  const rounds = Math.max(0, ...r.granularities.flatMap((g) => g.runs.map((x) => x.round)));
  if (rounds > 1) {
    const kinds = new Set(r.granularities.flatMap((g) => g.runs.filter((x) => x.round > 1).map((x) => x.kind)));
    const repeated = ORDER.filter((k) => kinds.has(k)).map((k) => label(k, r));
    rows.push(
      "",
      `${repeated.join(" and ")} ran ${rounds} times, interleaved, the rest once; the table shows the run with the median tokens/s. ` +
        "Ratios between two repeated measurements are medians of the ratios within each round; any other ratio is taken against the median run.",
    );
  }
  return rows;
}

function targetTable(r: BenchResults): string[] {
  if (r.targets.length === 0) return [];
  const rows = ["| target | measured | needed | result |", "|---|---:|---:|---|"];
  for (const t of r.targets)
    rows.push(`| ${t.description} | ${fix(t.value, 2)} | ≥ ${t.threshold} | ${t.met ? "met" : "**missed**"} |`);
  return rows;
}

function extrasTable(r: BenchResults): string[] {
  const rows: string[] = [];
  const l = r.latency;
  if (l) {
    rows.push(
      `| job latency, steady load | offered tokens/s | jobs | chunks per job | p50 ms | p95 ms | p99 ms | max ms |`,
      "|---|---:|---:|---:|---:|---:|---:|---:|",
    );
    rows.push(
      `| ${fix(l.loadRatio * 100, 0)}% of end-to-end capacity for ${fix(l.enqueueSeconds, 0)} s | ${int(l.offeredTokensPerSecond)} | ${l.jobs} | ${l.chunksPerJob} | ${int(l.p50Ms)} | ${int(l.p95Ms)} | ${int(l.p99Ms)} | ${int(l.maxMs)} |`,
    );
    rows.push("");
  }
  const t = r.tokenizers;
  const model = medianRun(granularity(r, "turns"), "model");
  if (t) {
    rows.push("| tokenizer, one thread | tokens/s | ÷ model alone (turns) | identical ids |", "|---|---:|---:|---:|");
    rows.push(
      `| @huggingface/tokenizers (JS, in the worker) | ${int(t.js.tokensPerSecond)} | ${model ? fix(t.js.tokensPerSecond / model.tokensPerSecond, 1) : "n/a"} | ${fix(t.identicalIdsRate * 100, 2)}% |`,
    );
    rows.push(
      `| tokenizers (native, encodeBatch, parallelism off) | ${int(t.native.tokensPerSecond)} | ${model ? fix(t.native.tokensPerSecond / model.tokensPerSecond, 1) : "n/a"} | |`,
    );
  }
  return rows;
}

/** The block docs/performance.md carries: header lines and tables. */
export function renderReport(r: BenchResults, file: string): string {
  const parts = [
    header(r, file).join("\n"),
    throughputTable(r).join("\n"),
    targetTable(r).join("\n"),
    extrasTable(r).join("\n"),
  ];
  return parts.filter((p) => p.trim().length > 0).join("\n\n") + "\n";
}

function analysisRows(g: GranularityResult): string[] {
  const model = medianRun(g, "model");
  const rows: string[] = [];
  for (const run of g.runs) {
    const a = run.e2e?.analysis;
    if (!a) continue;
    const busy = a.modelBusySeconds;
    const speed = run.paddedTokens / busy;
    const aloneSpeed = model ? model.paddedTokens / model.seconds : NaN;
    rows.push(
      `| ${g.granularity} | ${LABELS[run.kind]} #${run.round} | ${fix(run.seconds, 2)} | ${fix(busy, 2)} (${fix((100 * busy) / run.seconds, 0)}%) | ${fix(a.headSeconds, 2)} | ${fix(a.tailSeconds, 2)} | ` +
        `${int(speed)} (${fix(speed / aloneSpeed, 2)}) | ${fix(a.meanBatchSize, 1)} | ${fix(a.cpuSeconds, 1)} | ${fix(a.mainThreadCpuSeconds, 1)} | ${a.otherThreadsCpuSeconds.map((s) => fix(s, 1)).join(", ")} | ` +
        `${fix(a.harnessCpuSeconds, 1)} | ${fix(run.cpu?.others, 1)} (${pct(run.cpu?.othersShare)}) | ${Object.entries(
          a.stageMeanSeconds,
        )
          .map(([k, v]) => `${k} ${fix(v * 1000, 0)}`)
          .join(", ")} |`,
    );
  }
  return rows;
}

/** Same-round pairs with the CPU other processes took during each side. */
function adjustedRows(g: GranularityResult): string[] {
  const rows: string[] = [];
  const pairs: Array<[MeasurementKind, MeasurementKind]> = [
    ["e2e", "model"],
    ["e2e-pad1", "model"],
    ["e2e", "fifo"],
    ["e2e", "peer"],
  ];
  for (const [a, b] of pairs) {
    for (const x of g.runs.filter((r) => r.kind === a)) {
      const y = partnerRun(g, x, b);
      if (!y || !x.cpu || !y.cpu) continue;
      const raw = x.tokensPerSecond / y.tokensPerSecond;
      const adjusted = (raw * (1 - y.cpu.othersShare)) / (1 - x.cpu.othersShare);
      rows.push(
        `| ${g.granularity} | ${LABELS[a]} #${x.round} ÷ ${LABELS[b]} #${y.round} | ${fix(raw, 2)} | ${pct(x.cpu.othersShare)} | ${pct(y.cpu.othersShare)} | ${fix(adjusted, 2)} |`,
      );
    }
  }
  return rows;
}

function gpuSection(r: BenchResults): string[] {
  const t = r.tokenizers;
  const lines = [
    "## Tokenizer threads a GPU worker needs (estimate)",
    "",
    `GPU throughput is not measured here: the figures are published BERT-Large FP16 TensorRT numbers (${TRT_SOURCE}), scaled by datasheet ratios where no figure was published (${DATASHEET_SOURCE}). ` +
      "An ONNX Runtime CUDA session without TensorRT's fused kernels should land below them, so thread counts are upper bounds. Threads = GPU tokens/s ÷ this run's per-thread tokenizer speed (a server CPU core is likely faster than this machine's).",
    "",
    "| GPU | BGE-M3 tokens/s (estimate) | JS tokenizer threads | native tokenizer threads | basis |",
    "|---|---:|---:|---:|---|",
  ];
  for (const g of GPU_ESTIMATES) {
    const range = g.low === g.high ? int(g.low) : `${int(g.low)}-${int(g.high)}`;
    const th = (perThread: number) => {
      const lo = tokenizerThreadsFor(g.low, perThread);
      const hi = tokenizerThreadsFor(g.high, perThread);
      return lo === hi ? `${lo}` : `${lo}-${hi}`;
    };
    lines.push(
      `| ${g.gpu} | ${range} | ${t ? th(t.js.tokensPerSecond) : "n/a"} | ${t ? th(t.native.tokensPerSecond) : "n/a"} | ${g.how} |`,
    );
  }
  return lines;
}

/** The per-run Markdown written next to the results file. */
export function renderSummary(r: BenchResults, file: string): string {
  const out: string[] = [
    `# Benchmark ${file.replace(/^.*\//, "").replace(/\.json$/, "")}`,
    "",
    renderReport(r, file).trimEnd(),
    "",
    "## How each measurement ran",
    "",
  ];
  for (const g of r.granularities)
    for (const [k, v] of Object.entries(g.methods))
      out.push(`- ${g.granularity}, ${LABELS[k as MeasurementKind]}: ${v}`);
  if (r.latency) out.push(`- latency: ${r.latency.method}`);
  if (r.tokenizers) out.push(`- tokenizers: ${r.tokenizers.method}`);
  out.push(
    "",
    `Command: \`npm run bench -- ${r.args.join(" ")}\``,
    "",
    "Worker configuration: `" + JSON.stringify(r.workerConfig) + "`",
    "",
  );

  const analysis = r.granularities.flatMap(analysisRows);
  if (analysis.length) {
    out.push(
      "## Where the end-to-end time goes",
      "",
      "Model busy = time with at least one batch handed to the model thread and not yet back (from a wrapper around the worker's model port); head = first add to first batch; tail = last batch back to last job finished; " +
        "model speed = padded tokens per busy second, and in brackets its ratio to the model-alone run (below 1: the model ran slower while sharing the CPU). CPU seconds are the worker process's, from /proc (main thread = the event loop; the other threads are unnamed: model thread, ONNX Runtime pool, tokenizer threads, libuv). " +
        "Stage means come from embed_stage_duration_seconds: per job for queue_wait and tokenize (including waiting for a tokenizer thread), per chunk for batch_wait, per batch for infer (including waiting behind the batch ahead), per request for sink_write.",
      "",
      "| corpus | run | wall s | model busy s | head s | tail s | model speed, padded tokens/s | mean batch | worker CPU s | main thread CPU s | largest other threads CPU s | producer + Qdrant stand-in + Redis CPU s | other processes CPU s | stage means, ms |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
      ...analysis,
      "",
    );
  }
  const adjusted = r.granularities.flatMap(adjustedRows);
  if (adjusted.length) {
    out.push(
      "## Ratios with the load from other processes factored out (estimate)",
      "",
      "This machine runs other work at the same time. Each run records the share of the machine's CPU that other processes took while it ran (from /proc/stat, less the benchmark's own processes and Redis). " +
        "The adjusted ratio assumes each side's tokens/s is proportional to the CPU left to it: raw ratio x (1 - others during B) / (1 - others during A). It is an estimate to read the raw ratio by; targets are judged on raw ratios only.",
      "",
      "| corpus | A ÷ B | raw ratio | others during A | others during B | adjusted ratio (estimate) |",
      "|---|---|---:|---:|---:|---:|",
      ...adjusted,
      "",
    );
  }
  const planner = r.granularities.filter((g) => g.planner.length);
  if (planner.length) {
    out.push(
      "## Batch planner alone (no timing)",
      "",
      "planBatches over each whole chunk set at once under the same token budget: the padding efficiency the batcher reaches when it sees everything.",
      "",
      "| corpus | PAD_MULTIPLE | BATCH_OVERHEAD_TOKENS | batches | padding efficiency |",
      "|---|---:|---:|---:|---:|",
    );
    for (const g of planner)
      for (const p of g.planner)
        out.push(
          `| ${g.granularity} | ${p.padMultiple} | ${p.batchOverheadTokens} | ${p.batches} | ${fix(p.paddingEfficiency, 3)} |`,
        );
    out.push("");
  }
  out.push(...gpuSection(r), "");
  if (r.notes.length) out.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  return out.join("\n");
}

export type { ThroughputRun };
