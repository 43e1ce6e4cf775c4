#!/usr/bin/env node
/** `npm run prepare-model -- --from <dir> --out <dir>`: adds BGE-M3's dense, sparse and ColBERT
 *  heads to a backbone-only ONNX export (see prepare-model.ts) and prints what it wrote, how
 *  long it took and the process's peak memory (prepare-model-summary.ts). Exits 1 with the
 *  kind-prefixed error on failure. This file only parses the command line and reports. */
import { Command } from "commander";
import { intInRange } from "../../shared/cli-options.js";
import { EmbedError } from "../errors.js";
import { prepareModel } from "./prepare-model.js";
import { formatPrepareSummary } from "./prepare-model-summary.js";

interface CliOptions {
  from: string;
  out: string;
  model?: string;
  heads?: string;
  hiddenOutput?: string;
  externalThreshold?: number;
  force?: boolean;
}

async function main(argv: string[]): Promise<void> {
  const cli = new Command()
    .name("prepare-model")
    .description(
      "Add BGE-M3's dense, sparse and ColBERT heads (sparse_linear.pt, colbert_linear.pt) " +
        "to a backbone-only ONNX export",
    )
    .requiredOption(
      "--from <dir>",
      "folder with the backbone export, found as the worker finds its model " +
        "(model.onnx, model_fp16.onnx, ... here or in onnx/)",
    )
    .requiredOption("--out <dir>", "folder for the prepared model (model.onnx, its data, tokenizer and config)")
    .option("--model <file>", "backbone file relative to --from, when the folder holds several (like MODEL_FILE)")
    .option(
      "--heads <dir>",
      "folder holding sparse_linear.pt and colbert_linear.pt " +
        "(default: --from, the backbone's folder, then the parent of --from)",
    )
    .option("--hidden-output <name>", "backbone output with the hidden state (default: last_hidden_state)")
    .option(
      "--external-threshold <bytes>",
      "inline weights of this size or more move to model.onnx_data",
      intInRange(0),
    )
    .option("--force", "replace files already in --out")
    .parse(argv)
    .opts<CliOptions>();
  const started = performance.now();
  const r = await prepareModel({
    from: cli.from,
    out: cli.out,
    modelFile: cli.model,
    headsDir: cli.heads,
    hiddenOutput: cli.hiddenOutput,
    externalThreshold: cli.externalThreshold,
    force: cli.force,
  });
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(formatPrepareSummary(r, cli.out, seconds, process.resourceUsage().maxRSS * 1024));
}

main(process.argv).catch((err: unknown) => {
  // Failures the tool anticipates carry their kind ("model: ..."); anything else is a bug: full stack.
  console.error(err instanceof EmbedError ? `${err.kind}: ${err.message}` : err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
