/** Finds and reads what a model folder holds: the ONNX file, the tokenizer and the special
 *  token ids. Fails early with a message naming the folder and what is missing, since a
 *  worker that starts without a usable model only fails later, on every job. Without
 *  MODEL_FILE it looks for the file names published BGE-M3 exports use and refuses to pick
 *  between several (issue 12); before any session is created it scans the graph's header
 *  and names every external-data file that is missing or shorter than the graph says. */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import path from "node:path";
import { ModelLoadError } from "../errors.js";
import { OnnxFormatError, scanOnnxGraph, type DeclaredValue, type ExternalRef } from "./onnx-graph-scan.js";

export interface ModelFiles {
  dir: string;
  modelPath: string;
  tokenizerPath: string;
  padId: number;
  bosId: number;
  eosId: number;
  /** Ids dropped from sparse weights: BGE-M3 drops <s>, <pad>, </s>, <unk>. */
  specialIds: number[];
  /** Longest sequence the model's position table allows (XLM-R reserves 2 positions), if known. */
  maxPositions?: number;
  /** Inputs and outputs the graph declares (read without loading it). */
  declared: { inputs: DeclaredValue[]; outputs: DeclaredValue[] };
  /** External-data files the graph references, relative to the model file's folder. */
  externalFiles: string[];
  /** Attention heads and hidden size from config.json, when it says (the activation-memory estimate). */
  encoder?: { heads: number; hidden: number };
}

/** Published exports' file names, in MODEL_DIR or its onnx/ folder. */
export const MODEL_FILE_NAMES = ["model.onnx", "model_fp16.onnx", "model_quantized.onnx", "bge_m3_model.onnx"];

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

export function locateModelFiles(dir: string, modelFile?: string): ModelFiles {
  if (!existsSync(dir))
    throw new ModelLoadError(
      `MODEL_DIR "${dir}" does not exist; point it at a folder holding a BGE-M3 ONNX export (model.onnx, tokenizer.json)`,
    );
  const modelPath = findModelFile(dir, modelFile);
  const scan = scanModel(modelPath);
  const tokCandidates = ["tokenizer.json", path.join("onnx", "tokenizer.json")].map((c) => path.resolve(dir, c));
  const tokenizerPath = tokCandidates.find((p) => existsSync(p));
  if (!tokenizerPath) throw new ModelLoadError(`no tokenizer.json in MODEL_DIR "${dir}" (or its onnx/ folder)`);
  let tok: { added_tokens?: AddedToken[]; model?: { vocab?: unknown } };
  try {
    tok = JSON.parse(readFileSync(tokenizerPath, "utf8"));
  } catch (err) {
    throw new ModelLoadError(`tokenizer.json in "${dir}" is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const added = tok.added_tokens ?? [];
  const idOf = (content: string, fallback: number) => added.find((t) => t.content === content)?.id ?? fallback;
  const hf = readJson(path.join(dir, "config.json"));
  const padId = typeof hf?.pad_token_id === "number" ? hf.pad_token_id : idOf("<pad>", 1);
  const bosId = idOf("<s>", 0);
  const eosId = idOf("</s>", 2);
  const unkId = idOf("<unk>", 3);
  const maxPos = typeof hf?.max_position_embeddings === "number" ? hf.max_position_embeddings : undefined;
  // XLM-R offsets positions by padding_idx + 1 = 2, so 8194 positions hold 8192 tokens.
  const offset = hf?.model_type === "xlm-roberta" || padId === 1 ? 2 : 0;
  return {
    dir,
    modelPath,
    tokenizerPath,
    padId,
    bosId,
    eosId,
    specialIds: [...new Set([bosId, padId, eosId, unkId])],
    maxPositions: maxPos !== undefined ? maxPos - offset : undefined,
    declared: { inputs: scan.inputs, outputs: scan.outputs },
    externalFiles: [...new Set(scan.external.map((e) => e.location))],
    encoder: encoderDims(hf),
  };
}

function encoderDims(hf: Record<string, unknown> | undefined): ModelFiles["encoder"] {
  const heads = hf?.num_attention_heads;
  const hidden = hf?.hidden_size;
  const positive = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;
  return positive(heads) && positive(hidden) ? { heads, hidden } : undefined;
}

function readJson(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

function findModelFile(dir: string, modelFile?: string): string {
  if (modelFile) {
    const p = path.resolve(dir, modelFile);
    if (!existsSync(p)) throw new ModelLoadError(`MODEL_FILE "${modelFile}" does not exist in MODEL_DIR "${dir}"`);
    return p;
  }
  const names = [...MODEL_FILE_NAMES, ...MODEL_FILE_NAMES.map((n) => path.join("onnx", n))];
  const found = names.filter((n) => existsSync(path.resolve(dir, n)));
  if (found.length === 0) {
    throw new ModelLoadError(`no ONNX model in MODEL_DIR "${dir}": looked for ${names.join(", ")}`);
  }
  if (found.length > 1) {
    throw new ModelLoadError(
      `MODEL_DIR "${dir}" holds several ONNX models (${found.join(", ")}); set MODEL_FILE to the one to use`,
    );
  }
  return path.resolve(dir, found[0]);
}

/** The graph's declared I/O; throws naming every external-data file missing or too short. */
function scanModel(modelPath: string): ReturnType<typeof scanOnnxGraph> {
  let scan: ReturnType<typeof scanOnnxGraph>;
  try {
    scan = scanOnnxGraph(modelPath);
  } catch (err) {
    if (!(err instanceof OnnxFormatError)) throw err;
    const lfs = fileHead(modelPath, 64).startsWith("version https://git-lfs");
    const hint = lfs ? " (it is a Git LFS pointer: fetch the file itself, e.g. `git lfs pull`)" : "";
    throw new ModelLoadError(`${modelPath} is not an ONNX model${hint}: ${err.message}`, { cause: err });
  }
  const problems = externalDataProblems(path.dirname(modelPath), scan.external);
  if (problems.length > 0) {
    throw new ModelLoadError(
      `${modelPath} keeps weights in external data files that are ${problems.join("; ")}; ` +
        "put every file of the export beside the .onnx file",
    );
  }
  return scan;
}

function externalDataProblems(base: string, refs: readonly ExternalRef[]): string[] {
  const byFile = new Map<string, ExternalRef[]>();
  for (const r of refs) byFile.set(r.location, [...(byFile.get(r.location) ?? []), r]);
  const problems: string[] = [];
  for (const [location, list] of byFile) {
    const file = path.resolve(base, location);
    const more = list.length > 3 ? `, ... (${list.length})` : "";
    const tensors =
      list
        .slice(0, 3)
        .map((r) => r.tensor)
        .join(", ") + more;
    if (!existsSync(file)) {
      problems.push(`missing: ${location} (holds ${tensors})`);
      continue;
    }
    const need = Math.max(...list.map((r) => r.offset + (r.length ?? 0)));
    const size = statSync(file).size;
    if (size < need) problems.push(`too short: ${location} has ${size} bytes, the graph reads up to byte ${need}`);
  }
  return problems;
}

function fileHead(file: string, bytes: number): string {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0)).toString("latin1");
  } finally {
    closeSync(fd);
  }
}
