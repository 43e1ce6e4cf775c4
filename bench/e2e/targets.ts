/** The targets, evaluated from one results file: ratios between measurements of the
 *  same run only. A target whose measurements did not run is left out, never assumed. */
import { median } from "../lib/stats.js";
import type {
  BenchResults,
  GranularityResult,
  MeasurementKind,
  TargetResult,
  ThroughputRun,
} from "../lib/results-schema.js";

/** The run of `kind` with the median tokens/s over the rounds (the lower middle for even counts). */
export function medianRun(g: GranularityResult | undefined, kind: MeasurementKind): ThroughputRun | undefined {
  const runs = (g?.runs ?? []).filter((r) => r.kind === kind).sort((a, b) => a.tokensPerSecond - b.tokensPerSecond);
  return runs.length ? runs[(runs.length - 1) >> 1] : undefined;
}

/** The run of kind `b` to compare `x` with: the one from the same round when both kinds ran in
 *  several rounds (measured back to back, so under similar load from the rest of the machine),
 *  else b's median run (one run of b may have met a burst of outside load). */
export function partnerRun(g: GranularityResult, x: ThroughputRun, b: MeasurementKind): ThroughputRun | undefined {
  const count = (k: MeasurementKind) => g.runs.filter((r) => r.kind === k).length;
  if (count(x.kind) > 1 && count(b) > 1) return g.runs.find((r) => r.kind === b && r.round === x.round);
  return medianRun(g, b);
}

/** tokens/s of `a` over tokens/s of `b`: the median over a's runs of the ratio to each one's
 *  partner run (see partnerRun); undefined if either did not run. */
export function speedRatio(
  g: GranularityResult | undefined,
  a: MeasurementKind,
  b: MeasurementKind,
): number | undefined {
  if (!g) return undefined;
  const ratios: number[] = [];
  for (const x of g.runs.filter((r) => r.kind === a)) {
    const y = partnerRun(g, x, b);
    if (y) ratios.push(x.tokensPerSecond / y.tokensPerSecond);
  }
  return ratios.length ? median(ratios) : undefined;
}

export function granularity(
  r: Pick<BenchResults, "granularities">,
  name: "turns" | "windows",
): GranularityResult | undefined {
  return r.granularities.find((g) => g.granularity === name);
}

export function evaluateTargets(r: Pick<BenchResults, "granularities" | "tokenizers">): TargetResult[] {
  const turns = granularity(r, "turns");
  const out: TargetResult[] = [];
  const add = (id: string, description: string, value: number | undefined, threshold: number) => {
    if (value === undefined || !Number.isFinite(value)) return;
    out.push({ id, description, value, comparator: ">=", threshold, met: value >= threshold });
  };
  add("e2e-vs-model", "end to end ÷ model alone, tokens/s (turns)", speedRatio(turns, "e2e", "model"), 0.9);
  add("e2e-vs-fifo", "end to end ÷ FIFO ablation, tokens/s (turns)", speedRatio(turns, "e2e", "fifo"), 1.7);
  add("e2e-vs-peer", "end to end ÷ transformers.js, tokens/s (turns)", speedRatio(turns, "e2e", "peer"), 1.7);
  add(
    "padding",
    "padding efficiency, end to end, default PAD_MULTIPLE (turns)",
    medianRun(turns, "e2e")?.paddingEfficiency,
    0.95,
  );
  add(
    "padding-pad1",
    "padding efficiency, end to end, PAD_MULTIPLE=1 and a lower BATCH_OVERHEAD_TOKENS (turns)",
    medianRun(turns, "e2e-pad1")?.paddingEfficiency,
    0.95,
  );
  const model = medianRun(turns, "model");
  if (r.tokenizers && model) {
    add(
      "tokenizer-vs-model",
      "JS tokenizer tokens/s per thread ÷ model alone tokens/s (turns)",
      r.tokenizers.js.tokensPerSecond / model.tokensPerSecond,
      5,
    );
  }
  return out;
}
