#!/usr/bin/env node
/*
 * Command-line front end for the synthetic test-model generator.
 *
 * Lets a developer materialise a test model directory for demos or benches
 * (including a full-vocabulary model paired with a real tokenizer file)
 * without writing code. Trade-off: it always regenerates; callers who want
 * caching use `ensureTestModel` from code.
 */
import { Command, InvalidArgumentError } from "commander";
import { promises as fs } from "node:fs";
import { countParameters, type TestModelOutputs } from "./onnx-model-gen.js";
import { writeTestModel, type WriteTestModelOptions } from "./write-test-model.js";
import { EXPORT_LAYOUTS, isExportLayout, writeExportLayout, type ExportLayout } from "./export-layouts.js";
import { intInRange } from "../../shared/cli-options.js";

const positiveInt = intInRange(1);
const nonNegativeInt = intInRange(0, 0xffffffff);

function outputsKind(value: string): TestModelOutputs {
  if (value !== "bge-m3" && value !== "last_hidden_state") {
    throw new InvalidArgumentError('expected "bge-m3" or "last_hidden_state"');
  }
  return value;
}

function layoutName(value: string): ExportLayout {
  if (!isExportLayout(value)) throw new InvalidArgumentError(`expected one of ${EXPORT_LAYOUTS.join(", ")}`);
  return value;
}

interface CliOptions {
  out: string;
  hidden?: number;
  layers?: number;
  heads?: number;
  intermediate?: number;
  maxPositions?: number;
  colbertDim?: number;
  vocabSize?: number;
  tokenizerVocabSize?: number;
  tokenizer?: string;
  outputs?: TestModelOutputs;
  seed?: number;
  tokenTypeIds?: boolean;
  layout?: ExportLayout;
  onnxSubfolder?: boolean;
}

function toWriteOptions(o: CliOptions): WriteTestModelOptions {
  const opts: WriteTestModelOptions = {};
  // Only forward what was given, so library defaults stay the single source of truth.
  if (o.hidden !== undefined) opts.hidden = o.hidden;
  if (o.layers !== undefined) opts.layers = o.layers;
  if (o.heads !== undefined) opts.heads = o.heads;
  if (o.intermediate !== undefined) opts.intermediate = o.intermediate;
  if (o.maxPositions !== undefined) opts.maxPositions = o.maxPositions;
  if (o.colbertDim !== undefined) opts.colbertDim = o.colbertDim;
  if (o.vocabSize !== undefined) opts.vocabSize = o.vocabSize;
  if (o.tokenizerVocabSize !== undefined) opts.tokenizerVocabSize = o.tokenizerVocabSize;
  if (o.tokenizer !== undefined) opts.tokenizerSource = o.tokenizer;
  if (o.outputs !== undefined) opts.outputs = o.outputs;
  if (o.seed !== undefined) opts.seed = o.seed;
  if (o.tokenTypeIds) opts.withTokenTypeIds = true;
  if (o.onnxSubfolder) opts.onnxSubfolder = true;
  return opts;
}

function elapsed(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(2);
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("test-model")
    .description("Generate a deterministic tiny BGE-M3-shaped ONNX model and tokenizer for tests")
    .requiredOption("--out <dir>", "output directory")
    .option("--hidden <n>", "hidden size", positiveInt)
    .option("--layers <n>", "encoder layers", positiveInt)
    .option("--heads <n>", "attention heads", positiveInt)
    .option("--intermediate <n>", "FFN size", positiveInt)
    .option("--max-positions <n>", "position table size (8194 like BGE-M3)", positiveInt)
    .option("--colbert-dim <n>", "ColBERT output size (default: hidden)", positiveInt)
    .option("--vocab-size <n>", "model vocabulary rows (default: tokenizer size)", positiveInt)
    .option("--tokenizer-vocab-size <n>", "upper bound for the generated tokenizer", positiveInt)
    .option("--tokenizer <path>", "existing tokenizer.json or .json.gz to copy and pair with")
    .option("--outputs <kind>", "bge-m3 | last_hidden_state", outputsKind)
    .option("--seed <n>", "weight seed", nonNegativeInt)
    .option("--token-type-ids", "add a token_type_ids input")
    .option("--onnx-subfolder", "write the ONNX file (and its external data) in onnx/, as BAAI/bge-m3 does")
    .option("--layout <name>", `a published BGE-M3 export layout: ${EXPORT_LAYOUTS.join(" | ")}`, layoutName)
    .parse(argv);

  const cli = program.opts<CliOptions>();
  const started = performance.now();
  if (cli.layout) {
    const layout = await writeExportLayout(cli.out, cli.layout, toWriteOptions(cli));
    console.log(`wrote the "${layout.layout}" layout to ${layout.dir} in ${elapsed(started)}s`);
    for (const f of layout.files) console.log(`  ${f.padEnd(24)}${mib((await fs.stat(`${layout.dir}/${f}`)).size)}`);
    return;
  }
  const files = await writeTestModel(cli.out, toWriteOptions(cli));
  const seconds = elapsed(started);
  const config = JSON.parse(await fs.readFile(files.configPath, "utf8")) as {
    _generated_test_model: { options: Parameters<typeof countParameters>[0] };
  };
  const options = config._generated_test_model.options;
  const modelSize = (await fs.stat(files.modelPath)).size;
  const tokenizerSize = (await fs.stat(files.tokenizerPath)).size;
  console.log(`wrote ${files.dir} in ${seconds}s`);
  console.log(
    `  model.onnx            ${mib(modelSize)}, ${countParameters(options).toLocaleString("en-US")} parameters`,
  );
  console.log(`  tokenizer.json        ${mib(tokenizerSize)}`);
  console.log(`  tokenizer_config.json, config.json`);
  console.log(`  options ${JSON.stringify(options)}`);
}

main(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
