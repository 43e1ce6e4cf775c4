/** Prints a verify-model report: an aligned table for a person (each published number beside
 *  this model's, the deviation and the tolerance, failures marked) ending in a one-line
 *  verdict, or one JSON document for scripts. Pure. */
import { OUTPUT_KINDS } from "../../shared/config.js";
import type { VerifyCheck, VerifyReport } from "./verify-model.js";

const FAIL_HINT = 'Not BGE-M3\'s weights or tokenizer, or an export read wrongly: see "Getting a model" in the README';
const COLUMNS = ["check", "published", "this model", "deviation", "tolerance", ""] as const;

function num(v: number | null, signed = false, none = "missing"): string {
  if (v === null) return none;
  if (!Number.isFinite(v)) return String(v);
  return (signed && v >= 0 ? "+" : "") + v.toFixed(5);
}

function row(c: VerifyCheck): string[] {
  return [
    `${c.group} ${c.name}`,
    num(c.published),
    num(c.measured),
    num(c.deviation, true, "n/a"),
    String(c.tolerance),
    c.ok ? "ok" : "FAIL",
  ];
}

/** The failing check with the largest deviation, else the first failing one (no value). */
function worst(r: VerifyReport): VerifyCheck | undefined {
  const failing = r.checks.filter((c) => !c.ok);
  const measured = failing.filter((c) => c.deviation !== null);
  if (measured.length === 0) return failing[0];
  return measured.reduce((a, b) => (Math.abs(b.deviation!) > Math.abs(a.deviation!) ? b : a));
}

export function verdict(r: VerifyReport): string {
  const tol = `${r.tolerances.similarity} on similarities and scores, ${r.tolerances.weight} on weights`;
  if (r.ok) return `PASS: all ${r.checks.length} checks within fp16 tolerance (${tol})`;
  const w = worst(r);
  const how = w?.deviation === null ? "no value" : `deviation ${num(w?.deviation ?? null, true)}`;
  const worstText = w ? `; worst: ${w.group} ${w.name} (${how})` : "";
  return `FAIL: ${r.failed} of ${r.checks.length} checks outside fp16 tolerance (${tol})${worstText}`;
}

export function formatReportText(r: VerifyReport): string {
  const rows = [[...COLUMNS], ...r.checks.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((cells) => cells[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  const skipped = OUTPUT_KINDS.filter((o) => !r.outputs.includes(o));
  return [
    `verify-model: ${r.modelPath} (ONNX outputs ${r.onnxOutputs.join(", ")})`,
    ...Object.entries(r.layout).map(([k, v]) => `  ${k}: ${v}`),
    "compared with FlagEmbedding's published numbers for BAAI/bge-m3 (use_fp16=True)" +
      (skipped.length > 0 ? `; not checked: ${skipped.join(", ")}` : ""),
    "",
    line(rows[0]),
    ...rows.slice(1).map(line),
    "",
    verdict(r),
    ...(r.ok ? [] : [FAIL_HINT]),
    "",
  ].join("\n");
}

export function formatReportJson(r: VerifyReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
