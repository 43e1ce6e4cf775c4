/** What `prepare-model` prints when it is done: the model it wrote, how long it took, the
 *  process's peak memory, the outputs it added, the files, and the command that runs the worker
 *  on it. Pure: the caller measures the time and memory. */
import type { PrepareResult } from "./prepare-model.js";

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export function formatPrepareSummary(r: PrepareResult, out: string, seconds: number, peakRssBytes: number): string {
  const lines = [
    `prepared ${r.modelPath} in ${seconds.toFixed(1)} s (peak RSS ${mib(peakRssBytes)})`,
    `  backbone: opset ${r.opset}, hidden state ${r.hiddenType} [batch, sequence, ${r.hiddenSize}]; ` +
      `heads added: dense_vecs [batch, ${r.hiddenSize}], sparse_vecs [batch, sequence, 1], ` +
      `colbert_vecs [batch, sequence-1, ${r.colbertDim}] (float32)`,
  ];
  if (r.movedInitializers > 0) lines.push(`  moved ${r.movedInitializers} inline weights to external data`);
  for (const f of r.files) lines.push(`  ${f.how.padEnd(7)} ${f.file} (${mib(f.bytes)})`);
  lines.push(`next: MODEL_DIR=${out} OUTPUTS=dense,sparse,colbert npm run worker`);
  return lines.join("\n") + "\n";
}
