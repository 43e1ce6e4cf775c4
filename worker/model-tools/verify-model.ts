/** Checks a model folder against BGE-M3's published numbers: embeds the model card's two
 *  queries and two passages through the worker's own model path (model discovery, ONNX
 *  session in its thread, layout detection, heads, tokenizer; see query-embedder.ts) and
 *  compares dense similarities, the queries' lexical weights, lexical matching scores and
 *  ColBERT scores with what FlagEmbedding prints for BAAI/bge-m3 with fp16, the scores both
 *  from each text alone and from the four in one padded batch. Passing means the export, its
 *  layout and the tokenizer give BGE-M3's vectors as this worker stores them; a random or wrong
 *  model, a wrong tokenizer, a mis-read layout or batch-dependent vectors fail. It acts once per
 *  run and pays one model load: 11-18 s and 2.1 GB peak for a BGE-M3-sized fp32 model on a busy
 *  2-core CPU. Comparing is pure. */
import { OUTPUT_KINDS, type OutputKind } from "../../shared/config.js";
import type { ChunkEmbedding } from "../core/heads.js";
import { LocalQueryEmbedder } from "../search/query-embedder.js";
import {
  COLBERT_SCORES,
  DENSE_SIMILARITY,
  LEXICAL_SCORES,
  PASSAGES,
  QUERIES,
  QUERY_LEXICAL_WEIGHTS,
  TOLERANCES,
} from "./bge-m3-published.js";
import { colbertScore, denseSimilarity, lexicalMatchingScore, weightsByToken } from "./bge-m3-scores.js";

export type CheckGroup = "dense similarity" | "lexical weight" | "lexical score" | "colbert score";

/** The settings the worker's model path reads (MODEL_DIR, MODEL_FILE, EXECUTION_PROVIDER, ...). */
export type VerifyModelConfig = Parameters<typeof LocalQueryEmbedder.open>[0];

export interface VerifyCheck {
  group: CheckGroup;
  /** What is compared: `q0·p1`, or a query and a decoded token (`q0 "What"`). */
  name: string;
  published: number;
  /** null when this model gives no value (e.g. a published token it gives no weight). */
  measured: number | null;
  /** measured - published; null when nothing was measured. */
  deviation: number | null;
  tolerance: number;
  ok: boolean;
}

/** What the model gives for the published examples (only the outputs that were checked). */
export interface Measured {
  /** queries x passages. */
  dense?: number[][];
  /** Each query's lexical weights keyed by decoded token. */
  queryWeights?: Array<Map<string, number>>;
  lexical?: { q0p0: number; q0q1: number };
  colbert?: { q0p0: number; q0p1: number };
}

export interface VerifyReport {
  ok: boolean;
  modelPath: string;
  /** The ONNX outputs the model declares. */
  onnxOutputs: string[];
  /** How the worker reads each vector from them (layout id, output, element type, CLS handling). */
  layout: Record<string, string>;
  outputs: OutputKind[];
  tolerances: typeof TOLERANCES;
  checks: VerifyCheck[];
  failed: number;
}

/** Loads the model as the worker would, with `outputs` switched on, and compares. */
export async function verifyModel(
  cfg: VerifyModelConfig,
  outputs: readonly OutputKind[] = OUTPUT_KINDS,
): Promise<VerifyReport> {
  const wanted = OUTPUT_KINDS.filter((o) => outputs.includes(o));
  const embedder = await LocalQueryEmbedder.open({ ...cfg, OUTPUTS: wanted });
  try {
    const { alone, batched } = await measure(embedder, wanted);
    const checks = [...compareWithPublished(alone), ...compareBatched(batched)];
    const failed = checks.filter((c) => !c.ok).length;
    const { onnxOutputs, layout = {} } = embedder.info;
    return {
      ok: failed === 0 && checks.length > 0,
      modelPath: embedder.modelPath,
      onnxOutputs,
      layout,
      outputs: wanted,
      tolerances: TOLERANCES,
      checks,
      failed,
    };
  } finally {
    await embedder.close();
  }
}

type Run = Awaited<ReturnType<LocalQueryEmbedder["embedTokenized"]>>[number];

/** The examples one at a time (as published), and all four as one padded batch. */
async function measure(
  embedder: LocalQueryEmbedder,
  outputs: readonly OutputKind[],
): Promise<{ alone: Measured; batched: Measured }> {
  const texts = [...QUERIES, ...PASSAGES];
  const alone: Run[] = [];
  for (const text of texts) alone.push(...(await embedder.embedTokenized([text])));
  const batched = await embedder.embedTokenized(texts);
  return { alone: scores(alone, outputs), batched: scores(batched, outputs) };
}

/** The published scores of runs for the queries and passages, in that order. */
function scores(runs: readonly Run[], outputs: readonly OutputKind[]): Measured {
  const [q0, q1, p0, p1] = runs.map((r) => r.embedding);
  const m: Measured = {};
  if (outputs.includes("dense")) {
    m.dense = denseSimilarity([need(q0, "dense"), need(q1, "dense")], [need(p0, "dense"), need(p1, "dense")]);
  }
  if (outputs.includes("sparse")) {
    m.queryWeights = runs.slice(0, 2).map(({ embedding, chunk }) => {
      const pieceOf = new Map<number, string>();
      chunk.ids.forEach((id, i) => pieceOf.set(id, chunk.tokens?.[i] ?? `[id ${id}]`));
      return weightsByToken(need(embedding, "sparse"), pieceOf);
    });
    m.lexical = {
      q0p0: lexicalMatchingScore(need(q0, "sparse"), need(p0, "sparse")),
      q0q1: lexicalMatchingScore(need(q0, "sparse"), need(q1, "sparse")),
    };
  }
  if (outputs.includes("colbert")) {
    const mv = (e: ChunkEmbedding) => ({ data: need(e, "colbert"), dim: e.colbertDim ?? 0 });
    m.colbert = { q0p0: colbertScore(mv(q0), mv(p0)), q0p1: colbertScore(mv(q0), mv(p1)) };
  }
  return m;
}

function need<K extends OutputKind>(e: ChunkEmbedding, kind: K): NonNullable<ChunkEmbedding[K]> {
  const v = e[kind];
  // OnnxModel.load refuses a model that lacks a configured output, so this cannot happen.
  if (v === undefined || v === null) throw new Error(`the model returned no ${kind} output; this is a bug`);
  return v as NonNullable<ChunkEmbedding[K]>;
}

function check(
  group: CheckGroup,
  name: string,
  published: number,
  measured: number | undefined,
  tolerance: number,
): VerifyCheck {
  if (measured === undefined) return { group, name, published, measured: null, deviation: null, tolerance, ok: false };
  const deviation = measured - published;
  return { group, name, published, measured, deviation, tolerance, ok: Math.abs(deviation) <= tolerance };
}

/** One check per published number of the outputs measured, plus one per token the model
 *  weighs that the published weights lack (published 0). Pure. */
export function compareWithPublished(m: Measured): VerifyCheck[] {
  const checks: VerifyCheck[] = [];
  if (m.dense) {
    DENSE_SIMILARITY.forEach((row, i) =>
      row.forEach((want, j) => {
        checks.push(check("dense similarity", `q${i}·p${j}`, want, m.dense![i]?.[j], TOLERANCES.similarity));
      }),
    );
  }
  m.queryWeights?.forEach((got, q) => {
    const want = new Map(QUERY_LEXICAL_WEIGHTS[q]);
    for (const [token, w] of want) {
      checks.push(check("lexical weight", `q${q} ${JSON.stringify(token)}`, w, got.get(token), TOLERANCES.weight));
    }
    for (const [token, w] of got) {
      if (want.has(token)) continue;
      checks.push(check("lexical weight", `q${q} ${JSON.stringify(token)}`, 0, w, TOLERANCES.weight));
    }
  });
  if (m.lexical) {
    checks.push(check("lexical score", "q0·p0", LEXICAL_SCORES.q0p0, m.lexical.q0p0, TOLERANCES.score));
    checks.push(check("lexical score", "q0·q1", LEXICAL_SCORES.q0q1, m.lexical.q0q1, TOLERANCES.score));
  }
  if (m.colbert) {
    checks.push(check("colbert score", "q0·p0", COLBERT_SCORES.q0p0, m.colbert.q0p0, TOLERANCES.score));
    checks.push(check("colbert score", "q0·p1", COLBERT_SCORES.q0p1, m.colbert.q0p1, TOLERANCES.score));
  }
  return checks;
}

/** The published scores again from the four texts run as one padded batch, as FlagEmbedding
 *  runs them: an export whose vectors depend on their batch-mates (dynamic int8 quantisation
 *  scales activations over the whole batch) or on padding shows here. The lexical weights
 *  are left to the one-at-a-time rows; the lexical scores carry them. Pure. */
export function compareBatched(m: Measured): VerifyCheck[] {
  return compareWithPublished({ ...m, queryWeights: undefined }).map((c) => ({ ...c, name: `${c.name} batched` }));
}
