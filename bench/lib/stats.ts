/** Pure number helpers for the benchmark: percentiles, length summaries, and the busy time
 *  of a set of possibly overlapping intervals. No I/O. */

/** Nearest-rank percentile (p in [0, 100]) of unsorted values; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface LengthSummary {
  count: number;
  total: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

export function summarizeLengths(lengths: readonly number[]): LengthSummary {
  let total = 0;
  for (const l of lengths) total += l;
  return {
    count: lengths.length,
    total,
    min: lengths.length ? Math.min(...lengths) : 0,
    p50: percentile(lengths, 50),
    p95: percentile(lengths, 95),
    max: lengths.length ? Math.max(...lengths) : 0,
    mean: lengths.length ? total / lengths.length : 0,
  };
}

/** Total length of the union of [start, end] intervals (same unit as the inputs). */
export function unionLength(intervals: ReadonlyArray<{ start: number; end: number }>): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const { start, end } of sorted) {
    if (start > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = start;
      curEnd = end;
    } else if (end > curEnd) curEnd = end;
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

export const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
