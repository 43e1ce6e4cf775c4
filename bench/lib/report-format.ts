/** Markdown pieces both benches' reports share (e2e/report-format.ts, priority/report-format.ts):
 *  number formatting that prints "n/a" for a missing figure, and the opening lines naming the
 *  results file and the machine. Pure: same file, same text. */
import type { RunHeader } from "./results-schema.js";

/** Rounded, with thousands separators. */
export const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
/** `d` decimals. */
export const fix = (x: number | undefined, d: number) => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : "n/a");

/** Which results file, from which commit, when and how long. */
export function resultsFileLine(r: RunHeader, file: string): string {
  const dirty = r.git.dirty ? " (uncommitted changes)" : "";
  return `Results file \`${file}\`: commit ${r.git.commit}${dirty}, ${r.startedAt}, ${int(r.durationSeconds)} s.`;
}

/** The machine and its load, without closing punctuation (each report goes on differently). */
export function machineLine(r: RunHeader): string {
  const m = r.machine;
  return (
    `Machine: ${m.cpus} x ${m.cpuModel}, ${fix(m.totalMemoryBytes / 2 ** 30, 1)} GiB, Node ${m.node}; ` +
    `1-minute load average ${fix(m.loadAverage.start, 2)} at start, ${fix(m.loadAverage.end, 2)} at end`
  );
}
