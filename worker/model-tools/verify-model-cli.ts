/** `npm run verify-model [-- --json] [-- --outputs dense,sparse]`: checks the model in MODEL_DIR
 *  (MODEL_FILE, EXECUTION_PROVIDER, ... as the worker reads them) against BGE-M3's published
 *  numbers and prints the comparison. Exit 0: every check within fp16 tolerance; 1: some
 *  check is not; 2: the model cannot be loaded, a setting or an option is wrong (stderr). */
import { Command, InvalidArgumentError, Option } from "commander";
import { loadConfigOrExit, OUTPUT_KINDS, type Config, type OutputKind } from "../../shared/config.js";
import { EmbedError, ModelLoadError } from "../errors.js";
import { verifyModel } from "./verify-model.js";
import { formatReportJson, formatReportText } from "./verify-model-output.js";

interface VerifyCliOptions {
  json?: boolean;
  outputs: OutputKind[];
}

function outputList(value: string): OutputKind[] {
  const parts = value
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const bad = parts.filter((p) => !(OUTPUT_KINDS as readonly string[]).includes(p));
  if (parts.length === 0 || bad.length > 0) {
    throw new InvalidArgumentError(`expected a comma list of ${OUTPUT_KINDS.join(", ")}`);
  }
  return parts as OutputKind[];
}

async function run(cfg: Config, o: VerifyCliOptions): Promise<void> {
  try {
    const report = await verifyModel(cfg, o.outputs);
    process.stdout.write(o.json ? formatReportJson(report) : formatReportText(report));
    process.exitCode = report.ok ? 0 : 1;
  } catch (err) {
    if (!(err instanceof EmbedError)) throw err;
    process.stderr.write(`verify-model: ${err.message}\n`);
    if (err instanceof ModelLoadError && err.message.includes("OUTPUTS")) {
      process.stderr.write(
        `verify-model: it sets OUTPUTS to --outputs (here ${o.outputs.join(",")}); ` +
          "--outputs dense checks the dense vectors alone\n",
      );
    }
    process.exitCode = 2;
  }
}

await new Command("verify-model")
  .description(
    "embed BGE-M3's published examples with the worker's model (MODEL_DIR) and compare with " +
      "FlagEmbedding's published numbers for BAAI/bge-m3",
  )
  .addOption(
    new Option("--outputs <list>", "outputs to check, comma list of dense, sparse, colbert")
      .argParser(outputList)
      .default([...OUTPUT_KINDS], OUTPUT_KINDS.join(",")),
  )
  .option("--json", "print the report as one JSON document")
  .action(async (o: VerifyCliOptions) => run(loadConfigOrExit(), o))
  // A usage error must not read as "the model failed" (exit 1).
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .parseAsync();
