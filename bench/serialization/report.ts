/** What both serialization benches share: lines printed as they are measured and kept, then a
 *  results file (`bench/results/serialization/<bench>/<timestamp>-<commit>.json`: machine,
 *  commit, arguments and every figure) with the printed lines beside it as Markdown. Acts only
 *  when a bench finishes. */
import os from "node:os";
import path from "node:path";
import { gitInfo, machineInfo } from "../lib/machine.js";
import { repoRoot } from "../lib/paths.js";
import { writeResults } from "../lib/results-file.js";

export function benchReport(bench: string) {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const lines: string[] = [];
  return {
    machine,
    say(line = ""): void {
      console.log(line);
      lines.push(line);
    },
    /** Writes the results and the Markdown; returns the JSON file's path relative to the repository. */
    finish(figures: Record<string, unknown>): string {
      machine.loadAverage.end = os.loadavg()[0];
      const finishedAt = new Date().toISOString();
      const header = { bench, startedAt, finishedAt, git: gitInfo(), machine, args: process.argv.slice(2) };
      const md = `# ${bench}\n\n\`\`\`\n${lines.join("\n")}\n\`\`\`\n`;
      const results = { ...header, figures };
      const { json } = writeResults(path.join(repoRoot, "bench", "results", "serialization", bench), results, md);
      return path.relative(repoRoot, json);
    },
  };
}
