/** Request bodies and answers of the query API, as pure functions: parsing turns a JSON body
 *  into texts and options or a message that names the offending field and index; encoding
 *  turns embeddings into the OpenAI embeddings shape or the /embed/batch shape. Performs no I/O. */
import { z } from "zod";
import type { OutputKind } from "../../shared/config.js";
import { colbertRows } from "../core/heads.js";
import type { QueryResult } from "../core/pipeline.js";

export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** The client went away before its answer: not a failure of the worker, and nobody to answer. */
export class ClientClosedError extends Error {}

const invalid = (message: string) => new RequestError(400, "validation_error", message);

export interface Limits {
  maxInputs: number;
  maxChars: number;
  modelName: string;
  denseDim: number;
  outputs: OutputKind[];
}

/** `input[3]` from a zod path. */
function where(path: PropertyKey[]): string {
  return (
    path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("") || "body"
  );
}

function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const i = r.error.issues[0];
  throw invalid(`${where(i.path)}: ${i.message}`);
}

/** With the u flag a string is read by code points, so only an unpaired surrogate is a Cs code point. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Texts must be 1..maxInputs non-blank, well-formed strings of at most maxChars characters; the message names
 *  the first bad index. */
function checkTexts(texts: string[], field: string, limits: Limits): void {
  if (texts.length === 0) throw invalid(`${field} is empty: send 1 to ${limits.maxInputs} texts`);
  if (texts.length > limits.maxInputs)
    throw invalid(
      `${field} has ${texts.length} texts, more than the ${limits.maxInputs} allowed per request (QUERY_MAX_INPUTS)`,
    );
  texts.forEach((t, i) => {
    if (t.trim().length === 0) throw invalid(`${field}[${i}] is empty`);
    // A lone surrogate cannot be encoded as UTF-8 for the tokenizer, the logs or a reply (issue 13).
    if (LONE_SURROGATE.test(t)) throw invalid(`${field}[${i}] is not well-formed Unicode (it holds a lone surrogate)`);
    if (t.length > limits.maxChars)
      throw invalid(`${field}[${i}] has ${t.length} characters, more than MAX_CHUNK_CHARS=${limits.maxChars}`);
  });
}

function needOutput(kind: OutputKind, field: string, limits: Limits): void {
  if (!limits.outputs.includes(kind)) {
    throw invalid(`${field}: this worker does not produce ${kind} vectors (OUTPUTS=${limits.outputs.join(",")})`);
  }
}

const openAiSchema = z.object({
  input: z.union([z.string(), z.array(z.string())], {
    error: "must be a string or an array of strings (token-id arrays are not supported)",
  }),
  model: z.string({ error: "is required (GET /v1/models lists the model served here)" }),
  encoding_format: z.enum(["float", "base64"], { error: 'must be "float" or "base64"' }).optional(),
  dimensions: z.number().int().positive().optional(),
  user: z.string().optional(),
});

export interface OpenAiRequest {
  texts: string[];
  base64: boolean;
}

/** The model names a request may use: the configured name and its last path segment, any case. */
export function servesModel(requested: string, modelName: string): boolean {
  const r = requested.trim().toLowerCase();
  const name = modelName.toLowerCase();
  return r === name || r === name.split("/").pop();
}

export function parseOpenAiRequest(body: unknown, limits: Limits): OpenAiRequest {
  const b = parseWith(openAiSchema, body);
  if (!servesModel(b.model, limits.modelName)) {
    throw new RequestError(
      404,
      "model_not_found",
      `model ${JSON.stringify(b.model.slice(0, 100))} is not served here; ` +
        `this worker serves "${limits.modelName}" (GET /v1/models)`,
    );
  }
  if (b.dimensions !== undefined && b.dimensions !== limits.denseDim) {
    throw invalid(
      `dimensions: ${limits.modelName} vectors have a fixed size of ${limits.denseDim}; ` +
        "omit dimensions (shortened vectors are not supported)",
    );
  }
  needOutput("dense", "model", limits);
  const texts = typeof b.input === "string" ? [b.input] : b.input;
  checkTexts(texts, "input", limits);
  return { texts, base64: b.encoding_format === "base64" };
}

const batchSchema = z.object({
  texts: z.array(z.string(), { error: "must be an array of strings" }),
  return_dense: z.boolean().default(true),
  return_sparse: z.boolean().default(false),
  return_colbert: z.boolean().default(false),
  /** Also return the token string of each sparse index (implies return_sparse). */
  sparse_tokens: z.boolean().default(false),
});

export interface BatchRequest {
  texts: string[];
  dense: boolean;
  sparse: boolean;
  sparseTokens: boolean;
  colbert: boolean;
}

export function parseBatchRequest(body: unknown, limits: Limits): BatchRequest {
  const b = parseWith(batchSchema, body);
  const sparse = b.return_sparse || b.sparse_tokens;
  if (!b.return_dense && !sparse && !b.return_colbert)
    throw invalid("return_dense, return_sparse and return_colbert are all false: ask for at least one");
  if (b.return_dense) needOutput("dense", "return_dense", limits);
  if (sparse) needOutput("sparse", "return_sparse", limits);
  if (b.return_colbert) needOutput("colbert", "return_colbert", limits);
  checkTexts(b.texts, "texts", limits);
  return { texts: b.texts, dense: b.return_dense, sparse, sparseTokens: b.sparse_tokens, colbert: b.return_colbert };
}

/** Float32 little-endian bytes, base64: what OpenAI's `encoding_format: "base64"` returns. */
export function float32Base64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
}

const usage = (r: QueryResult) => {
  const n = r.tokens.reduce((a, b) => a + b, 0);
  return { prompt_tokens: n, total_tokens: n };
};

export function openAiResponse(r: QueryResult, req: OpenAiRequest, modelName: string) {
  return {
    object: "list",
    data: r.embeddings.map((e, index) => ({
      object: "embedding",
      index,
      embedding: req.base64 ? float32Base64(e.dense!) : Array.from(e.dense!),
    })),
    model: modelName,
    usage: usage(r),
  };
}

export function batchResponse(r: QueryResult, req: BatchRequest, modelName: string, ms: number) {
  return {
    model: modelName,
    data: r.embeddings.map((e, index) => {
      const item: Record<string, unknown> = { index };
      if (req.dense) item.dense = Array.from(e.dense!);
      if (req.sparse) {
        const indices = Array.from(e.sparse?.indices ?? []);
        const sparse: Record<string, unknown> = { indices, values: Array.from(e.sparse?.values ?? []) };
        if (req.sparseTokens) sparse.tokens = indices.map((id) => r.tokenMaps?.[index].get(id) ?? null);
        item.sparse = sparse;
      }
      if (req.colbert) item.colbert = colbertRows(e);
      return item;
    }),
    usage: usage(r),
    processing_time_ms: Math.round(ms * 100) / 100,
    batch_size: req.texts.length,
  };
}
