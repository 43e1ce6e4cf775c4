/** Turns a backbone-only BGE-M3 export (`last_hidden_state`, e.g. BAAI's `onnx/` folder or
 *  Xenova's `model_fp16.onnx`) plus BGE-M3's head files (`sparse_linear.pt`,
 *  `colbert_linear.pt`) into one model folder whose graph also emits `dense_vecs`,
 *  `sparse_vecs` and `colbert_vecs`, so the heads run on the accelerator and no [B,L,H] hidden
 *  state is copied to the host (issue 12). The weights are never decoded: the graph is
 *  rewritten in one streaming pass, existing external-data files are hard-linked (copied
 *  across file systems), and inline weights move to `<model>_data`. Acts once, offline; peak
 *  memory stays at a few tens of MB whatever the model size. */
import { existsSync } from "node:fs";
import { copyFile, link, mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { buildHeadGraph, HEAD_OUTPUTS, type LinearHead } from "./head-graph.js";
import { MissingExternalDataError, ModelLayoutError } from "./model-tool-errors.js";
import { rewriteModel } from "./onnx-rewrite.js";
import { describeValue, scanModel, type ModelScan } from "./onnx-scan.js";
import { readPtStateDict } from "./pt-reader.js";

export interface PrepareOptions {
  /** Folder holding the backbone export (and, unless `headsDir` says otherwise, the .pt heads). */
  from: string;
  out: string;
  /** Backbone file relative to `from`; default: the one known file name present. */
  modelFile?: string;
  /** Folder holding sparse_linear.pt and colbert_linear.pt; default `from`, then its parent. */
  headsDir?: string;
  /** The backbone output holding the hidden state; default `last_hidden_state`. */
  hiddenOutput?: string;
  /** Inline initializers of at least this many bytes move to the external-data file. */
  externalThreshold?: number;
  /** Replace files already in `out`. */
  force?: boolean;
}

export interface WrittenFile { file: string; bytes: number; how: "written" | "linked" | "copied" }

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

export const BACKBONE_FILES = ["model.onnx", "onnx/model.onnx", "model_fp16.onnx", "onnx/model_fp16.onnx"];
/** Tokenizer and config files copied beside the prepared model when the export has them. */
const SIDE_FILES = ["tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json",
  "sentencepiece.bpe.model"];
const DEFAULT_THRESHOLD = 1024;

function findBackbone(o: PrepareOptions): string {
  if (o.modelFile) {
    const p = path.resolve(o.from, o.modelFile);
    if (!existsSync(p)) throw new ModelLayoutError(`--model ${o.modelFile}: no such file in ${o.from}`);
    return p;
  }
  const found = BACKBONE_FILES.filter((f) => existsSync(path.join(o.from, f)));
  if (found.length === 0) {
    throw new ModelLayoutError(`no backbone ONNX file in ${o.from}: looked for ${BACKBONE_FILES.join(", ")}; name it with --model`);
  }
  if (found.length > 1) throw new ModelLayoutError(`several ONNX files in ${o.from} (${found.join(", ")}): choose one with --model`);
  return path.join(o.from, found[0]);
}

async function readHead(o: PrepareOptions, modelDir: string, file: string): Promise<LinearHead> {
  const dirs = o.headsDir ? [o.headsDir] : [...new Set([o.from, modelDir, path.dirname(path.resolve(o.from))])];
  const p = dirs.map((d) => path.join(d, file)).find((c) => existsSync(c));
  if (!p) throw new ModelLayoutError(`${file} not found in ${dirs.join(" or ")}; it ships in the BAAI/bge-m3 repository root`);
  const sd = await readPtStateDict(p);
  const weight = sd.get("weight");
  const bias = sd.get("bias");
  if (!weight || !bias) throw new ModelLayoutError(`${p} holds ${[...sd.keys()].join(", ")}; expected weight and bias`);
  return { weight, bias };
}

/** Names each external-data file that is missing or shorter than a tensor needs. */
async function checkExternalData(scan: ModelScan, modelDir: string): Promise<Map<string, number>> {
  const needed = new Map<string, { end: number; tensors: string[] }>();
  for (const { tensor, ref } of scan.externalRefs) {
    if (path.isAbsolute(ref.location) || ref.location.split(/[\\/]/).includes("..") || ref.location === "") {
      throw new ModelLayoutError(`${scan.path}: tensor ${tensor} points outside the model folder (${ref.location || "empty"})`);
    }
    const n = needed.get(ref.location) ?? { end: 0, tensors: [] };
    n.end = Math.max(n.end, ref.offset + (ref.length ?? 0));
    n.tensors.push(tensor);
    needed.set(ref.location, n);
  }
  const sizes = new Map<string, number>();
  const missing: string[] = [];
  for (const [location, n] of needed) {
    const p = path.resolve(modelDir, location);
    const size = (await stat(p).catch(() => undefined))?.size;
    const eg = `needed by ${n.tensors.length} tensor${n.tensors.length > 1 ? "s" : ""}, e.g. ${n.tensors[0]}`;
    if (size === undefined) missing.push(`${location} (${eg})`);
    else if (size < n.end) missing.push(`${location} has ${size} bytes, ${n.end} needed (${eg})`);
    else sizes.set(location, size);
  }
  if (missing.length > 0) throw new MissingExternalDataError(scan.path, missing);
  return sizes;
}

function hiddenInfo(scan: ModelScan, name: string) {
  const out = scan.outputs.find((o) => o.name === name);
  const existing = scan.outputs.filter((o) => (HEAD_OUTPUTS as readonly string[]).includes(o.name ?? ""));
  const layout = () => `inputs: ${scan.inputs.map(describeValue).join("; ")}; outputs: ${scan.outputs.map(describeValue).join("; ")}`;
  if (existing.length > 0) {
    throw new ModelLayoutError(`${scan.path} already has BGE-M3 head outputs (${existing.map((o) => o.name).join(", ")}); ` +
      `use it as it is. Its ${layout()}`);
  }
  if (!out) {
    throw new ModelLayoutError(`${scan.path} has no output ${name}, so it is not a backbone-only export prepare-model knows. ` +
      `Its ${layout()}. Name the hidden-state output with --hidden-output`);
  }
  const t = out.type?.tensorType;
  const dims = t?.shape?.dim ?? [];
  const hiddenSize = Number(dims[2]?.dimValue ?? 0);
  if (dims.length !== 3 || !(hiddenSize > 0)) {
    throw new ModelLayoutError(`${name} should be [batch, sequence, hidden] with a fixed hidden size; it is ${describeValue(out)}`);
  }
  return { elemType: t?.elemType ?? 0, hiddenSize, batchDim: dims[0].dimParam || "batch", seqDim: dims[1].dimParam || "sequence" };
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
  if (clash.length > 0 && !force) throw new ModelLayoutError(`${out} already holds ${clash.join(", ")}; pass --force to replace`);
  await Promise.all(clash.map((f) => rm(path.join(out, f), { force: true })));
}

export async function prepareModel(o: PrepareOptions): Promise<PrepareResult> {
  const modelPath = findBackbone(o);
  const modelDir = path.dirname(modelPath);
  if (path.resolve(o.out) === modelDir) throw new ModelLayoutError(`--out must differ from the backbone's folder ${modelDir}`);
  const scan = await scanModel(modelPath);
  const hiddenName = o.hiddenOutput ?? "last_hidden_state";
  const h = hiddenInfo(scan, hiddenName);
  const externals = await checkExternalData(scan, modelDir);
  const [sparse, colbert] = [await readHead(o, modelDir, "sparse_linear.pt"), await readHead(o, modelDir, "colbert_linear.pt")];
  const taken = new Set([...scan.names, ...HEAD_OUTPUTS]);
  const append = buildHeadGraph({ hidden: hiddenName, ...h, opset: scan.opset, sparse, colbert, taken });

  const dataFile = externals.has("model.onnx_data") ? "model.onnx.heads_data" : "model.onnx_data";
  const sideFiles = SIDE_FILES.flatMap((f) => [path.join(modelDir, f), path.join(o.from, f)].filter(existsSync).slice(0, 1));
  const outNames = ["model.onnx", dataFile, ...externals.keys(), ...sideFiles.map((f) => path.basename(f))];
  await prepareOut(o.out, o.force ?? false, outNames);
  const outModel = path.join(o.out, "model.onnx");
  const rewrite = await rewriteModel({
    scan, outPath: outModel, dataFile, dataPath: path.join(o.out, dataFile),
    threshold: o.externalThreshold ?? DEFAULT_THRESHOLD, dropOutputs: new Set([hiddenName]), append,
  });
  const files: WrittenFile[] = [{ file: outModel, bytes: (await stat(outModel)).size, how: "written" }];
  if (rewrite.moved > 0) files.push({ file: path.join(o.out, dataFile), bytes: rewrite.dataBytes, how: "written" });
  for (const [location, bytes] of externals) {
    const dst = path.join(o.out, location);
    files.push({ file: dst, bytes, how: await place(path.resolve(modelDir, location), dst, "link") });
  }
  for (const f of sideFiles) {
    const dst = path.join(o.out, path.basename(f));
    files.push({ file: dst, bytes: (await stat(f)).size, how: await place(f, dst, "copy") });
  }
  return {
    modelPath: outModel, files, opset: scan.opset, hiddenType: h.elemType === 10 ? "float16" : "float32",
    hiddenSize: h.hiddenSize, colbertDim: colbert.weight.shape[0], movedInitializers: rewrite.moved,
  };
}
