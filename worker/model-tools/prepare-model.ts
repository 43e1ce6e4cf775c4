/** Turns a backbone-only BGE-M3 export (`last_hidden_state`, e.g. BAAI's `onnx/` folder or
 *  Xenova's `model_fp16.onnx`) plus BGE-M3's head files (`sparse_linear.pt`,
 *  `colbert_linear.pt`) into one model folder whose graph also emits `dense_vecs`,
 *  `sparse_vecs` and `colbert_vecs`, so the heads run on the accelerator and no [B,L,H] hidden
 *  state is copied to the host (issue 12). The weights are never decoded: the graph is
 *  rewritten in one streaming pass, existing external-data files are hard-linked (copied
 *  across file systems), and inline weights move to `model.onnx_data`. Acts once, offline; peak
 *  memory does not grow with the model (about 100 MiB peak RSS for 2.2 GB and 1.1 GB backbones,
 *  `npm run bench:prepare-model`). */
import { existsSync } from "node:fs";
import { copyFile, link, mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { locateModelFiles, type ModelFiles } from "../adapters/model-files.js";
import { ELEM_TYPES, type DeclaredValue } from "../adapters/onnx-graph-scan.js";
import { describeIo } from "../core/output-layouts.js";
import { buildHeadGraph, HEAD_OUTPUTS, type LinearHead } from "./head-graph.js";
import { ModelLoadError } from "../errors.js";
import { ModelLayoutError } from "./model-tool-errors.js";
import { rewriteModel } from "./onnx-rewrite.js";
import { scanModel } from "./onnx-scan.js";
import { readPtStateDict } from "./pt-reader.js";

export interface PrepareOptions {
  /** Folder holding the backbone export (and, unless `headsDir` says otherwise, the .pt heads). */
  from: string;
  out: string;
  /** Backbone file relative to `from`; default: the one known export file name present (as MODEL_FILE). */
  modelFile?: string;
  /** Folder holding sparse_linear.pt and colbert_linear.pt; default: `from`, the model's folder,
   *  then `from`'s parent (BAAI keeps them at the repository root, the graph in onnx/). */
  headsDir?: string;
  /** The backbone output holding the hidden state; default `last_hidden_state`. */
  hiddenOutput?: string;
  /** Inline initializers of at least this many bytes move to the external-data file. */
  externalThreshold?: number;
  /** Replace files already in `out`. */
  force?: boolean;
}

export interface WrittenFile {
  file: string;
  bytes: number;
  how: "written" | "linked" | "copied";
}

export interface PrepareResult {
  modelPath: string;
  files: WrittenFile[];
  opset: number;
  hiddenType: "float32" | "float16";
  hiddenSize: number;
  colbertDim: number;
  /** Initializers moved from the .onnx file into the external-data file. */
  movedInitializers: number;
}

/** Tokenizer and config files copied beside the prepared model when the export has them. */
const SIDE_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "config.json",
  "special_tokens_map.json",
  "sentencepiece.bpe.model",
];
const DEFAULT_THRESHOLD = 1024;

async function readHead(o: PrepareOptions, modelDir: string, file: string): Promise<LinearHead> {
  const dirs = o.headsDir ? [o.headsDir] : [...new Set([o.from, modelDir, path.dirname(path.resolve(o.from))])];
  const p = dirs.map((d) => path.join(d, file)).find((c) => existsSync(c));
  if (!p) {
    const where = dirs.join(" or ");
    throw new ModelLayoutError(`${file} not found in ${where}; it ships in the BAAI/bge-m3 repository root`);
  }
  const sd = await readPtStateDict(p);
  const weight = sd.get("weight");
  const bias = sd.get("bias");
  if (!weight || !bias) throw new ModelLayoutError(`${p} holds ${[...sd.keys()].join(", ")}; expected weight and bias`);
  return { weight, bias };
}

function hiddenInfo(files: ModelFiles, name: string) {
  const { inputs, outputs } = files.declared;
  const meta = (vs: DeclaredValue[]) => vs.map((v) => ({ ...v, type: ELEM_TYPES[v.elemType] ?? `type ${v.elemType}` }));
  const io = () => describeIo(meta(inputs), meta(outputs));
  const existing = outputs.filter((o) => (HEAD_OUTPUTS as readonly string[]).includes(o.name));
  if (existing.length > 0) {
    const names = existing.map((o) => o.name).join(", ");
    throw new ModelLayoutError(
      `${files.modelPath} already has BGE-M3 head outputs (${names}); use it as it is (${io()})`,
    );
  }
  const out = outputs.find((o) => o.name === name);
  if (!out) {
    throw new ModelLayoutError(
      `${files.modelPath} has no output ${name}, so it is not a backbone-only export ` +
        `prepare-model knows (${io()}); name the hidden-state output with --hidden-output`,
    );
  }
  const [batch, seq, hiddenSize] = out.shape;
  if (out.shape.length !== 3 || typeof hiddenSize !== "number" || !(hiddenSize > 0)) {
    throw new ModelLayoutError(
      `${name} should be [batch, sequence, hidden] with a fixed hidden size; ` + `it is [${out.shape.join(", ")}]`,
    );
  }
  const dim = (d: number | string, fallback: string) => (typeof d === "string" && d ? d : fallback);
  return { elemType: out.elemType, hiddenSize, batchDim: dim(batch, "batch"), seqDim: dim(seq, "sequence") };
}

async function place(src: string, dst: string, how: "link" | "copy"): Promise<WrittenFile["how"]> {
  await mkdir(path.dirname(dst), { recursive: true });
  if (how === "link") {
    try {
      await link(src, dst);
      return "linked";
    } catch (err) {
      if (!["EXDEV", "EPERM", "ENOTSUP"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
    }
  }
  await copyFile(src, dst);
  return "copied";
}

async function prepareOut(out: string, force: boolean, names: string[]): Promise<void> {
  await mkdir(out, { recursive: true });
  const clash = (await readdir(out)).filter((f) => names.includes(f));
  if (clash.length > 0 && !force) {
    throw new ModelLayoutError(`${out} already holds ${clash.join(", ")}; pass --force to replace`);
  }
  await Promise.all(clash.map((f) => rm(path.join(out, f), { force: true })));
}

/** External-data files stay beside the model under the same relative names, so none may leave its folder. */
function checkLocations(files: ModelFiles): void {
  const outside = files.externalFiles.filter((l) => path.isAbsolute(l) || l.split(/[\\/]/).includes(".."));
  if (outside.length > 0) {
    throw new ModelLayoutError(`${files.modelPath} keeps weights outside its folder (${outside.join(", ")})`);
  }
}

/** The worker's own discovery: known file names, refusal to pick between several, every missing
 *  or truncated external-data file named before anything is read; its messages name the
 *  worker's settings, which are flags here. */
function locate(o: PrepareOptions): ModelFiles {
  try {
    return locateModelFiles(o.from, o.modelFile);
  } catch (err) {
    if (!(err instanceof ModelLoadError)) throw err;
    const message = err.message.replace(/\bMODEL_FILE\b/g, "--model").replace(/\bMODEL_DIR\b/g, "--from");
    throw new ModelLoadError(message, { cause: err });
  }
}

export async function prepareModel(o: PrepareOptions): Promise<PrepareResult> {
  const files = locate(o);
  const modelDir = path.dirname(files.modelPath);
  if (path.resolve(o.out) === modelDir) {
    throw new ModelLayoutError(`--out must differ from the backbone's folder ${modelDir}`);
  }
  checkLocations(files);
  const hiddenName = o.hiddenOutput ?? "last_hidden_state";
  const h = hiddenInfo(files, hiddenName);
  const scan = await scanModel(files.modelPath);
  const sparse = await readHead(o, modelDir, "sparse_linear.pt");
  const colbert = await readHead(o, modelDir, "colbert_linear.pt");
  const taken = new Set([...scan.names, ...HEAD_OUTPUTS]);
  const append = buildHeadGraph({ hidden: hiddenName, ...h, opset: scan.opset, sparse, colbert, taken });

  const dataFile = files.externalFiles.includes("model.onnx_data") ? "model.onnx.heads_data" : "model.onnx_data";
  // Beside the graph first (BAAI's onnx/ has its own copies), then the export's root.
  const sideFiles = SIDE_FILES.flatMap((f) =>
    [path.join(modelDir, f), path.join(o.from, f)].filter(existsSync).slice(0, 1),
  );
  const outNames = ["model.onnx", dataFile, ...files.externalFiles, ...sideFiles.map((f) => path.basename(f))];
  await prepareOut(o.out, o.force ?? false, outNames);
  const outModel = path.join(o.out, "model.onnx");
  const rewrite = await rewriteModel({
    scan,
    outPath: outModel,
    dataFile,
    dataPath: path.join(o.out, dataFile),
    threshold: o.externalThreshold ?? DEFAULT_THRESHOLD,
    dropOutputs: new Set([hiddenName]),
    append,
  });
  const written: WrittenFile[] = [{ file: outModel, bytes: (await stat(outModel)).size, how: "written" }];
  if (rewrite.moved > 0) written.push({ file: path.join(o.out, dataFile), bytes: rewrite.dataBytes, how: "written" });
  for (const location of files.externalFiles) {
    const src = path.resolve(modelDir, location);
    const dst = path.join(o.out, location);
    written.push({ file: dst, bytes: (await stat(src)).size, how: await place(src, dst, "link") });
  }
  for (const f of sideFiles) {
    const dst = path.join(o.out, path.basename(f));
    written.push({ file: dst, bytes: (await stat(f)).size, how: await place(f, dst, "copy") });
  }
  return {
    modelPath: outModel,
    files: written,
    opset: scan.opset,
    hiddenType: h.elemType === 10 ? "float16" : "float32",
    hiddenSize: h.hiddenSize,
    colbertDim: colbert.weight.shape[0],
    movedInitializers: rewrite.moved,
  };
}
