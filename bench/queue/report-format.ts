/** Renders a queue-bench results file as Markdown: how it ran, one row per (job size, workers)
 *  cell, the memory fit and the notes. Pure: same file, same text. */
import type { QueueBenchResults } from "../lib/results-schema.js";
import { fix, int, machineLine, resultsFileLine } from "../lib/report-format.js";

export function renderQueueReport(r: QueueBenchResults, file: string): string {
  const m = r.model;
  const f = r.corpusFigures;
  const lines = [
    resultsFileLine(r, file),
    `${machineLine(r)}; the machine is shared, so wall-clock figures (jobs/s) are noisy; Redis CPU and commands are Redis's own.`,
    `Redis ${r.redis.version} (private redis-server, ${r.redis.persistence}); worker model: generated, ${m.layers} layers x ${m.hidden} hidden (a stand-in: the model's speed does not enter Redis's figures); tokenizer: ${m.tokenizer}; Qdrant: the in-process stand-in.`,
    `Corpus: ${r.corpus.label}; chunks of up to ${f.chunkTokens} tokens (mean ${fix(f.meanTokensPerChunk, 1)}), ${fix(f.textBytesPerToken, 2)} text bytes per token.`,
    "",
    "| jobs of | workers | jobs | commands / job | client commands / job | Redis CPU ms / job (net of idle) | ms / chunk | bytes / waiting job | bytes / waiting chunk | jobs/s | jobs/s per Redis core (net) | top commands |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  r.derived.forEach((d, i) => {
    const c = r.cells[i];
    const top = c.topCommands
      .slice(0, 4)
      .map((x) => `${x.command} ${fix(x.calls / c.jobs, 1)}`)
      .join(", ");
    lines.push(
      `| ${d.jobChunks} | ${d.workers} | ${int(c.jobs)} | ${fix(d.commandsPerJob, 1)} | ${fix(d.clientCommandsPerJob, 1)} | ${fix(d.redisCpuMsPerJob, 3)} (${fix(d.redisCpuMsPerJobNet, 3)}) | ${fix(d.redisCpuMsPerChunk, 4)} | ${int(d.bytesPerWaitingJob)} | ${int(d.bytesPerWaitingChunk)} | ${int(d.jobsPerSecond)} | ${int(d.jobsPerRedisCoreSecond)} (${int(d.jobsPerRedisCoreSecondNet)}) | ${top} |`,
    );
  });
  lines.push(
    "",
    `Memory fit over ${r.memoryFit.points} cells: Redis bytes per waiting job = ${int(r.memoryFit.bytesPerJob)} + ${fix(r.memoryFit.bytesPerDataByte, 2)} x job data bytes.`,
    "",
    "How it ran:",
    ...r.method.map((x) => `- ${x}`),
  );
  if (r.notes.length) lines.push("", "Notes:", ...r.notes.map((x) => `- ${x}`));
  return lines.join("\n") + "\n";
}
