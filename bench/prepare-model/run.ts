/** `npm run bench:prepare-model`: time and peak memory of `prepare-model` on the largest
 *  backbones this machine can generate, written like BGE-M3's published exports: a BGE-M3-size
 *  float32 encoder (hidden 1024, 24 layers, 16 heads, FFN 4096, vocab 250002, ~2.27 GB) with
 *  external data, and a ~1.1 GB single-file backbone whose hidden state is float16. Each
 *  preparation runs as a child under `/usr/bin/time -v` (peak RSS of the whole process), then
 *  the prepared model is loaded in ONNX Runtime and run once to prove it works. Generated
 *  files live in a temporary folder (`--dir`) and are never committed; results go to
 *  bench/results/prepare-model/ as JSON and a short Markdown summary. */
import { execFile } from "node:child_process";
import { existsSync, promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Command } from "commander";
import ort from "onnxruntime-node";
import { generateHeadWeights, transposed } from "../../kit/test-model/head-weights.js";
import { TensorType } from "../../kit/test-model/onnx-graph-builder.js";
import { buildModelGraph, type GraphVariant, type TestModelOptions } from "../../kit/test-model/onnx-model-gen.js";
import { writeLinearPt } from "../../kit/test-model/pt-writer.js";
import { generateTokenizerJson } from "../../kit/test-model/tokenizer-gen.js";
import { gitInfo, machineInfo } from "../lib/machine.js";
import { repoRoot } from "../lib/paths.js";

const run = promisify(execFile);
const BGE_M3 = { vocabSize: 250002, hidden: 1024, layers: 24, heads: 16, intermediate: 4096, maxPositions: 8194 };

interface Case {
  name: string;
  description: string;
  options: TestModelOptions;
  external: boolean;
  float16Hidden: boolean;
}

const CASES: Case[] = [
  {
    name: "bge-m3-fp32-external",
    description: "BGE-M3-size float32 backbone, weights in model.onnx_data",
    options: { ...BGE_M3, outputs: "last_hidden_state" },
    external: true,
    float16Hidden: false,
  },
  {
    name: "single-file-fp16-hidden",
    description: "1.1 GB single-file backbone (BGE-M3 embeddings, 2 layers), " + "float16 last_hidden_state",
    options: { ...BGE_M3, layers: 2, outputs: "last_hidden_state" },
    external: false,
    float16Hidden: true,
  },
];

const mib = (b: number) => Math.round(b / 2 ** 20);

async function generate(c: Case, dir: string): Promise<number> {
  const from = path.join(dir, c.name);
  const marker = path.join(from, "done.json");
  if (existsSync(marker)) return JSON.parse(await fs.readFile(marker, "utf8")).bytes;
  // A real export ships its tokenizer; the worker's model discovery (which prepare-model uses) expects one.
  const tokenizer = JSON.stringify(generateTokenizerJson({ vocabSize: 1000 }));
  await fs.rm(from, { recursive: true, force: true });
  await fs.mkdir(from, { recursive: true });
  await fs.writeFile(path.join(from, "tokenizer.json"), tokenizer);
  const variant: GraphVariant = {
    inputType: TensorType.INT64,
    heads: ({ g, o, hidden }) => {
      const type = c.float16Hidden ? TensorType.FLOAT16 : TensorType.FLOAT;
      g.node(c.float16Hidden ? "Cast" : "Identity", [hidden], c.float16Hidden ? { to: type } : {}, "last_hidden_state");
      g.output("last_hidden_state", type, ["batch", "sequence", o.hidden]);
    },
  };
  const { graph, options } = buildModelGraph(c.options, variant);
  let bytes: number;
  if (c.external) {
    const { model, data } = graph.encodeWithExternalData("backbone", c.description, "model.onnx_data");
    await fs.writeFile(path.join(from, "model.onnx"), model);
    await fs.writeFile(path.join(from, "model.onnx_data"), data);
    bytes = model.length + data.length;
  } else {
    const model = graph.encode("backbone", c.description);
    await fs.writeFile(path.join(from, "model.onnx"), model);
    bytes = model.length;
  }
  const h = generateHeadWeights(options, true);
  await writeLinearPt(
    path.join(from, "sparse_linear.pt"),
    { data: h.sparseWeight, shape: [1, options.hidden] },
    { data: h.sparseBias, shape: [1] },
  );
  await writeLinearPt(
    path.join(from, "colbert_linear.pt"),
    {
      data: transposed(h.colbertWeight, options.hidden, options.colbertDim),
      shape: [options.colbertDim, options.hidden],
    },
    { data: h.colbertBias, shape: [options.colbertDim] },
  );
  await fs.writeFile(marker, JSON.stringify({ bytes }));
  return bytes;
}

/** Runs the CLI under /usr/bin/time -v; returns wall seconds and peak RSS of the child. */
async function prepare(from: string, out: string): Promise<{ seconds: number; peakRssMiB: number; stdout: string }> {
  const cli = path.join(repoRoot, "dist", "worker", "model-tools", "prepare-model-cli.js");
  const args = ["-v", process.execPath, cli, "--from", from, "--out", out, "--force"];
  const { stdout, stderr } = await run("/usr/bin/time", args);
  const field = (label: string) => stderr.match(new RegExp(`${label}: (.+)`))?.[1] ?? "";
  const [m, s] = field("Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)").split(":").slice(-2).map(Number);
  const peakKiB = Number(field("Maximum resident set size \\(kbytes\\)"));
  return { seconds: m * 60 + s, peakRssMiB: Math.round(peakKiB / 1024), stdout };
}

/** Loads the prepared model and runs one 16-token sequence; returns output shapes. */
async function smoke(modelPath: string): Promise<Record<string, number[]>> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const ids = BigInt64Array.from({ length: 16 }, (_, i) => (i === 0 ? 0n : i === 15 ? 2n : BigInt(1000 + i * 37)));
    const out = await session.run({
      input_ids: new ort.Tensor("int64", ids, [1, 16]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(16).fill(1n), [1, 16]),
    });
    for (const [name, t] of Object.entries(out)) {
      if (!(t.data as Float32Array).every(Number.isFinite)) throw new Error(`${name} has non-finite values`);
    }
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.dims.map(Number)]));
  } finally {
    await session.release();
  }
}

async function main(): Promise<void> {
  const o = new Command("npm run bench:prepare-model --")
    .option(
      "--dir <dir>",
      "scratch folder for the generated GB-sized models",
      path.join(os.tmpdir(), "bge-m3-prepare-bench"),
    )
    .option("--keep", "keep the generated models")
    .parse()
    .opts();
  const machine = machineInfo();
  const results = [];
  for (const c of CASES) {
    const started = performance.now();
    const bytes = await generate(c, o.dir);
    const generated = ((performance.now() - started) / 1000).toFixed(0);
    console.log(`${c.name}: backbone ${mib(bytes)} MiB (generated in ${generated} s)`);
    const out = path.join(o.dir, `${c.name}-prepared`);
    const p = await prepare(path.join(o.dir, c.name), out);
    process.stdout.write(p.stdout.replace(/^/gm, "  "));
    const outputs = await smoke(path.join(out, "model.onnx"));
    results.push({
      case: c.name,
      description: c.description,
      backboneMiB: mib(bytes),
      seconds: p.seconds,
      peakRssMiB: p.peakRssMiB,
      outputs,
    });
    console.log(`  ${p.seconds.toFixed(1)} s, peak RSS ${p.peakRssMiB} MiB; ran once: ${JSON.stringify(outputs)}`);
    await fs.rm(out, { recursive: true, force: true });
  }
  machine.loadAverage.end = os.loadavg()[0];
  const stamp = new Date()
    .toISOString()
    .replace(/:/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const dir = path.join(repoRoot, "bench", "results", "prepare-model");
  await fs.mkdir(dir, { recursive: true });
  const git = gitInfo();
  const json = JSON.stringify({ machine, git, results }, null, 2) + "\n";
  await fs.writeFile(path.join(dir, `${stamp}-${git.commit}.json`), json);
  const md = [
    `# prepare-model on generated BGE-M3-size backbones (${stamp})`,
    "",
    `${machine.cpus}-core ${machine.cpuModel}, ${mib(machine.totalMemoryBytes)} MiB RAM, Node ${machine.node}, ` +
      `load ${machine.loadAverage.start.toFixed(1)}-${machine.loadAverage.end.toFixed(1)}; commit ${git.commit}` +
      `${git.dirty ? " (dirty)" : ""}.`,
    "",
    "| backbone | size | time | peak RSS |",
    "|---|---|---|---|",
    ...results.map(
      (r) => `| ${r.description} | ${r.backboneMiB} MiB | ${r.seconds.toFixed(1)} s | ${r.peakRssMiB} MiB |`,
    ),
    "",
    "Each prepared model was loaded in ONNX Runtime and run once on 16 tokens (finite dense, sparse, ColBERT).",
    "",
  ];
  await fs.writeFile(path.join(dir, `${stamp}-${git.commit}.md`), md.join("\n"));
  if (!o.keep) await fs.rm(o.dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
