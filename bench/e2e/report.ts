/** `node dist/bench/e2e/report.js [results.json]`: prints the Markdown block the README's
 *  Performance section carries, rendered from a results file (default: the newest in
 *  bench/results). `--summary` prints the longer per-run summary instead. */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { displayPath, repoRoot } from "../lib/paths.js";
import { renderReport, renderSummary } from "./report-format.js";
import type { BenchResults } from "../lib/results-schema.js";

function newestResults(): string {
  const dir = path.join(repoRoot, "bench", "results");
  const files = readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  if (files.length === 0) throw new Error("no results file in bench/results; run `npm run bench` first");
  return path.join(dir, files[files.length - 1]);
}

const args = process.argv.slice(2);
const summary = args.includes("--summary");
const file = args.find((a) => !a.startsWith("--")) ?? newestResults();
const results = JSON.parse(readFileSync(file, "utf8")) as BenchResults;
process.stdout.write(summary ? renderSummary(results, displayPath(file)) : renderReport(results, displayPath(file)));
