/** Applies a confirmed output layout (output-layouts.ts) to one run's decoded float32 outputs:
 *  per chunk, dense from the pooled vector or the CLS row, sparse from the per-token weights,
 *  ColBERT from the real-token rows after CLS, whatever the export already did (normalising
 *  twice changes nothing). Also checks the start-up probe's raw values (issue 12): a model
 *  that gives non-finite vectors, a zero dense vector or negative sparse weights is refused
 *  before it takes a job, naming the output. Pure. */
import { clsRow, colbertRow, denseRow, sparseRow, sparseWeightsFromTensor, type ChunkEmbedding } from "./heads.js";
import type { ConfirmedLayout } from "./output-layouts.js";

export interface DecodedTensor {
  data: Float32Array;
  dims: readonly number[];
}

export type DecodedOutputs = Readonly<Record<string, DecodedTensor>>;

/** The batch's rows: `flat` holds every row's ids back to back, `lengths` their real lengths. */
export interface BatchRows {
  flat: Int32Array;
  lengths: Int32Array;
}

export function applyLayout(
  layout: ConfirmedLayout,
  out: DecodedOutputs,
  rows: BatchRows,
  special: ReadonlySet<number>,
): ChunkEmbedding[] {
  const { dense, sparse, colbert } = layout;
  const results: ChunkEmbedding[] = [];
  let o = 0;
  for (let b = 0; b < rows.lengths.length; b++) {
    const len = rows.lengths[b];
    const r: ChunkEmbedding = {};
    if (dense) {
      const t = out[dense.output];
      r.dense = dense.pool === "vector" ? denseRow(t.data, b, t.dims[1]) : clsRow(t.data, b, t.dims[1], t.dims[2]);
    }
    if (sparse) {
      const t = out[sparse.output];
      const w = sparseWeightsFromTensor(t.data, b, t.dims[1], t.dims.length > 2 ? t.dims[2] : 1);
      r.sparse = sparseRow(rows.flat.subarray(o, o + len), w, special);
    }
    if (colbert) {
      const t = out[colbert.output];
      r.colbertDim = t.dims[2];
      r.colbert = colbertRow(t.data, b, t.dims[1], t.dims[2], len, colbert.clsRow ? 1 : 0);
    }
    results.push(r);
    o += len;
  }
  return results;
}

function firstBad(values: Float32Array, start: number, end: number, allowNegative: boolean): number | undefined {
  for (let i = start; i < end; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || (!allowNegative && v < 0)) return v;
  }
  return undefined;
}

const show = (v: number) => String(Number.isFinite(v) ? +v.toPrecision(6) : v);

/** The start-up probe sentence: several scripts, punctuation and a compound word. */
export const PROBE_TEXT = "BGE M3 ist ein Embedding-Modell. 多语言 – multilingüe.";

/** Problems in a probe run's raw outputs (before normalisation); empty when all is sane. */
export function probeProblems(layout: ConfirmedLayout, out: DecodedOutputs, lengths: Int32Array): string[] {
  const problems: string[] = [];
  for (let b = 0; b < lengths.length; b++) {
    const len = lengths[b];
    if (layout.dense) {
      const t = out[layout.dense.output];
      const dim = t.dims[t.dims.length - 1];
      const start = layout.dense.pool === "vector" ? b * dim : b * t.dims[1] * dim;
      const bad = firstBad(t.data, start, start + dim, true);
      let norm = 0;
      for (let i = start; i < start + dim; i++) norm += t.data[i] * t.data[i];
      const what = `dense (output ${layout.dense.output})`;
      if (bad !== undefined) problems.push(`${what} has a non-finite value (${show(bad)})`);
      else if (norm === 0) problems.push(`${what} is a zero vector before normalisation`);
    }
    if (layout.sparse) {
      const t = out[layout.sparse.output];
      const start = b * t.dims[1];
      const bad = firstBad(t.data, start, start + len, false);
      if (bad !== undefined) {
        const what = `sparse (output ${layout.sparse.output})`;
        problems.push(`${what} has a weight ${show(bad)}: weights must be finite and >= 0`);
      }
    }
    if (layout.colbert) {
      const t = out[layout.colbert.output];
      const dim = t.dims[2];
      const start = (b * t.dims[1] + (layout.colbert.clsRow ? 1 : 0)) * dim;
      const bad = firstBad(t.data, start, start + (len - 1) * dim, true);
      const what = `colbert (output ${layout.colbert.output})`;
      if (bad !== undefined) problems.push(`${what} has a non-finite value (${show(bad)})`);
    }
  }
  return [...new Set(problems)];
}
