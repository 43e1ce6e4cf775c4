/** Finds and reads what a model folder holds: the ONNX file, the tokenizer and the special
 *  token ids. Fails early with a message naming the folder and what is missing, since a
 *  worker that starts without a usable model only fails later, on every job. */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { ModelLoadError } from "../../shared/errors.js";

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
}

interface AddedToken { id: number; content: string; special?: boolean }

export function locateModelFiles(dir: string, modelFile?: string): ModelFiles {
  if (!existsSync(dir)) throw new ModelLoadError(`MODEL_DIR "${dir}" does not exist; point it at a folder holding a BGE-M3 ONNX export (model.onnx, tokenizer.json)`);
  const candidates = modelFile ? [modelFile] : ["model.onnx", path.join("onnx", "model.onnx")];
  const modelPath = candidates.map((c) => path.resolve(dir, c)).find((p) => existsSync(p));
  if (!modelPath) throw new ModelLoadError(`no ONNX model in MODEL_DIR "${dir}": looked for ${candidates.join(", ")}`);
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
    dir, modelPath, tokenizerPath, padId, bosId, eosId,
    specialIds: [...new Set([bosId, padId, eosId, unkId])],
    maxPositions: maxPos !== undefined ? maxPos - offset : undefined,
  };
}

function readJson(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}
