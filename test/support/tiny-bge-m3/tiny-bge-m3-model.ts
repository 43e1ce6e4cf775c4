/**
 * Entry point of the tiny BGE-M3-shaped test model generator.
 *
 * `buildTinyBgeM3Model` returns the ONNX bytes plus the exact parameters used,
 * so tests can compare ORT's output against the reference forward pass.
 * `ensureTinyBgeM3ModelDir` writes `model.onnx` + `config.json` into a cache
 * directory keyed by a hash of the resolved options. Trade-off: the cache
 * lives in the OS temp dir (never in the repo) and is written via
 * rename-into-place so parallel test files can race on it safely; a stale or
 * half-written directory is simply rewritten, and the key covers the
 * generator version so an old layout is never picked up.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  resolveTinyBgeM3Config,
  toHuggingFaceConfigJson,
  type TinyBgeM3Config,
  type TinyBgeM3Options,
} from "./tiny-bge-m3-config.js";
import {
  HIDDEN_STATE_OUTPUT_NAMES,
  INPUT_NAMES,
  M3_OUTPUT_NAMES,
  writeTinyBgeM3Graph,
} from "./tiny-bge-m3-graph.js";
import { generateTinyBgeM3Weights, type TinyBgeM3Weights } from "./tiny-bge-m3-weights.js";

/** Bump when the graph or weight scheme changes, so caches are not reused. */
export const TINY_BGE_M3_GENERATOR_VERSION = 1;

export interface TinyBgeM3Model {
  readonly config: TinyBgeM3Config;
  readonly weights: TinyBgeM3Weights;
  /** Serialised ONNX ModelProto (IR 8, opset 17). */
  readonly bytes: Uint8Array;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface TinyBgeM3ModelFiles {
  readonly dir: string;
  readonly modelPath: string;
  readonly configPath: string;
  readonly config: TinyBgeM3Config;
}

/** Thrown when the model directory cannot be written or read back. */
export class TinyModelFilesError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TinyModelFilesError";
  }
}

/** Build the model in memory. Same options, same bytes, on any machine. */
export function buildTinyBgeM3Model(options: TinyBgeM3Options = {}): TinyBgeM3Model {
  const config = resolveTinyBgeM3Config(options);
  const weights = generateTinyBgeM3Weights(config);
  return {
    config,
    weights,
    bytes: writeTinyBgeM3Graph(config, weights),
    inputNames: [...INPUT_NAMES],
    outputNames: config.layout === "m3-heads" ? [...M3_OUTPUT_NAMES] : [...HIDDEN_STATE_OUTPUT_NAMES],
  };
}

/** Stable key of resolved options; part of the cache directory name. */
export function tinyBgeM3CacheKey(config: TinyBgeM3Config): string {
  const payload = JSON.stringify({ v: TINY_BGE_M3_GENERATOR_VERSION, config });
  return createHash("sha256").update(payload).digest("hex").slice(0, 16);
}

/**
 * Write `model.onnx` and `config.json` into `dir` (created if missing).
 * Files are written to temporary names first so a reader never sees half a model.
 */
export function writeTinyBgeM3ModelDir(dir: string, options: TinyBgeM3Options = {}): TinyBgeM3ModelFiles {
  const model = buildTinyBgeM3Model(options);
  const modelPath = join(dir, "model.onnx");
  const configPath = join(dir, "config.json");
  try {
    mkdirSync(dir, { recursive: true });
    const suffix = `.tmp-${process.pid}-${Date.now()}`;
    writeFileSync(modelPath + suffix, model.bytes);
    writeFileSync(configPath + suffix, JSON.stringify(toHuggingFaceConfigJson(model.config), null, 2) + "\n");
    renameSync(modelPath + suffix, modelPath);
    renameSync(configPath + suffix, configPath);
  } catch (cause) {
    throw new TinyModelFilesError(
      `Could not write the tiny BGE-M3 test model into ${dir}; check that the directory is writable and the disk is not full`,
      { cause },
    );
  }
  return { dir, modelPath, configPath, config: model.config };
}

/**
 * Return a directory holding the model for `options`, generating it on first
 * use. `baseDir` defaults to the OS temp directory.
 */
export function ensureTinyBgeM3ModelDir(
  options: TinyBgeM3Options = {},
  baseDir: string = tmpdir(),
): TinyBgeM3ModelFiles {
  const config = resolveTinyBgeM3Config(options);
  const dir = join(baseDir, `tiny-bge-m3-${tinyBgeM3CacheKey(config)}`);
  const modelPath = join(dir, "model.onnx");
  const configPath = join(dir, "config.json");
  if (existsSync(modelPath) && existsSync(configPath) && looksComplete(configPath, config)) {
    return { dir, modelPath, configPath, config };
  }
  return writeTinyBgeM3ModelDir(dir, options);
}

function looksComplete(configPath: string, config: TinyBgeM3Config): boolean {
  try {
    const parsed = JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>;
    return parsed.hidden_size === config.hiddenSize && parsed.vocab_size === config.vocabSize;
  } catch {
    return false;
  }
}
