#!/usr/bin/env node
/** `npm run prepare-model -- --from <dir> --out <dir>`: adds BGE-M3's dense, sparse and ColBERT
 *  heads to a backbone-only ONNX export (see prepare-model.ts) and prints what it wrote, how
 *  long it took and the process's peak memory. Exits 1 with the kind-prefixed error on failure. */
import { Command } from "commander";
import { intInRange } from "../../shared/cli-options.js";
import { EmbedError } from "../errors.js";
import { prepareModel } from "./prepare-model.js";

interface CliOptions {
  from: string;
  out: string;
  model?: string;
  heads?: string;
  hiddenOutput?: string;
  externalThreshold?: number;
  force?: boolean;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

async function main(argv: string[]): Promise<void> {
  const cli = new Command()
    .name("prepare-model")
    .description("Add BGE-M3's dense, sparse and ColBERT heads (sparse_linear.pt, colbert_linear.pt) " +
      "to a backbone-only ONNX export")
    .requiredOption("--from <dir>", "folder with the backbone export, found as the worker finds its model " +
      "(model.onnx, model_fp16.onnx, ... here or in onnx/)")
    .requiredOption("--out <dir>", "folder for the prepared model (model.onnx, its data, tokenizer and config)")
    .option("--model <file>", "backbone file relative to --from, when the folder holds several (like MODEL_FILE)")
    .option("--heads <dir>", "folder holding sparse_linear.pt and colbert_linear.pt " +
      "(default: --from, the backbone's folder, then the parent of --from)")
    .option("--hidden-output <name>", "backbone output with the hidden state (default: last_hidden_state)")
    .option("--external-threshold <bytes>", "inline weights of this size or more move to model.onnx_data",
      intInRange(0))
    .option("--force", "replace files already in --out")
    .parse(argv)
    .opts<CliOptions>();
  const started = performance.now();
  const r = await prepareModel({
    from: cli.from, out: cli.out, modelFile: cli.model, headsDir: cli.heads, hiddenOutput: cli.hiddenOutput,
    externalThreshold: cli.externalThreshold, force: cli.force,
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`prepared ${r.modelPath} in ${seconds} s (peak RSS ${mib(process.resourceUsage().maxRSS * 1024)})`);
  console.log(`  backbone: opset ${r.opset}, hidden state ${r.hiddenType} [batch, sequence, ${r.hiddenSize}]; ` +
    `heads added: dense_vecs [batch, ${r.hiddenSize}], sparse_vecs [batch, sequence, 1], ` +
    `colbert_vecs [batch, sequence-1, ${r.colbertDim}] (float32)`);
  if (r.movedInitializers > 0) console.log(`  moved ${r.movedInitializers} inline weights to external data`);
  for (const f of r.files) console.log(`  ${f.how.padEnd(7)} ${f.file} (${mib(f.bytes)})`);
  console.log(`next: MODEL_DIR=${cli.out} OUTPUTS=dense,sparse,colbert npm run worker`);
}

main(process.argv).catch((err: unknown) => {
  // Failures the tool anticipates carry their kind ("model: ..."); anything else is a bug: full stack.
  console.error(err instanceof EmbedError ? `${err.kind}: ${err.message}` : err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
