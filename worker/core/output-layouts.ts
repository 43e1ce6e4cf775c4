/** The one table of BGE-M3 ONNX output layouts the worker knows (issue 12). A layout is chosen
 *  by output names when the model is loaded (or given by MODEL_OUTPUT_NAMES), then confirmed
 *  by the shapes of one probe run: dense is a [B,H] vector or the CLS row of [B,L,H]; sparse
 *  is [B,L,1] or [B,L]; ColBERT is [B,L-1,H] (CLS already dropped) or [B,L,H] (its CLS row is
 *  skipped here). Trades a probe run at start-up for never guessing a shape at run time: a
 *  shape the table does not explain refuses the model with its inputs and outputs listed.
 *  Pure: no ONNX Runtime, no I/O. */
import { OUTPUT_KINDS, type OutputKind } from "../../shared/config.js";
import { ModelLoadError } from "../errors.js";
import { DECODABLE_TYPES, isDecodable } from "./tensor-decode.js";

/** An input or output as the session declares it. */
export interface TensorMeta {
  name: string;
  type: string;
  shape: ReadonlyArray<number | string>;
}

export interface LayoutEntry {
  id: string;
  /** Where exports of this layout come from, for the start-up log and error messages. */
  seenIn: string;
  /** Candidates per kind, first present wins. */
  names: Partial<Record<OutputKind, string[]>>;
  /** No sparse or ColBERT head in the graph: `npm run prepare-model` adds them. */
  backboneOnly?: boolean;
}

export const KNOWN_LAYOUTS: readonly LayoutEntry[] = [
  {
    id: "bge-m3-vecs",
    seenIn: "aapot/bge-m3-onnx and its copies",
    names: { dense: ["dense_vecs"], sparse: ["sparse_vecs"], colbert: ["colbert_vecs"] },
  },
  {
    id: "raw-heads",
    seenIn: "newtechstudio/bge-m3-3head",
    names: { dense: ["dense"], sparse: ["sparse"], colbert: ["colbert"] },
  },
  {
    id: "embeddings-weights-vectors",
    seenIn: "yuniko-software",
    names: { dense: ["dense_embeddings"], sparse: ["sparse_weights"], colbert: ["colbert_vectors"] },
  },
  {
    id: "sentence-transformers",
    seenIn: "sentence-transformers exports",
    names: { dense: ["sentence_embedding", "token_embeddings"] },
    backboneOnly: true,
  },
  { id: "backbone", seenIn: "BAAI/bge-m3 onnx/, Xenova", names: { dense: ["last_hidden_state"] }, backboneOnly: true },
];

export const OUTPUT_NAMES_SETTING = "MODEL_OUTPUT_NAMES";

export interface LayoutMatch {
  id: string;
  /** The ONNX output feeding each kind the model can produce. */
  outputs: Partial<Record<OutputKind, string>>;
  backboneOnly: boolean;
}

const dims = (m: TensorMeta) => `[${m.shape.join(", ")}]`;

/** "inputs: input_ids int64 [batch, sequence], ...; outputs: ..." */
export function describeIo(inputs: readonly TensorMeta[], outputs: readonly TensorMeta[]): string {
  const list = (ms: readonly TensorMeta[]) => ms.map((m) => `${m.name} ${m.type} ${dims(m)}`).join(", ") || "none";
  return `the model's inputs: ${list(inputs)}; its outputs: ${list(outputs)}`;
}

function mappingHint(): string {
  return `set ${OUTPUT_NAMES_SETTING}=dense=<output>,sparse=<output>,colbert=<output> to map them`;
}

/** Picks the layout from output names (or the configured mapping); throws when nothing fits. */
export function matchLayout(
  inputs: readonly TensorMeta[],
  outputs: readonly TensorMeta[],
  mapping?: Partial<Record<OutputKind, string>>,
): LayoutMatch {
  const present = new Set(outputs.map((o) => o.name));
  if (mapping && Object.keys(mapping).length > 0) {
    const absent = Object.entries(mapping).filter(([, name]) => !present.has(name!));
    if (absent.length > 0) {
      const what = absent.map(([k, n]) => `${k}=${n}`).join(", ");
      const io = describeIo(inputs, outputs);
      throw new ModelLoadError(`${OUTPUT_NAMES_SETTING} names outputs the model lacks (${what}); ${io}`);
    }
    return { id: OUTPUT_NAMES_SETTING, outputs: { ...mapping }, backboneOnly: false };
  }
  for (const entry of KNOWN_LAYOUTS) {
    const found: Partial<Record<OutputKind, string>> = {};
    for (const kind of OUTPUT_KINDS) {
      const name = entry.names[kind]?.find((n) => present.has(n));
      if (name) found[kind] = name;
    }
    if (Object.keys(found).length === 0) continue;
    return { id: entry.id, outputs: found, backboneOnly: entry.backboneOnly ?? false };
  }
  throw new ModelLoadError(
    `no known BGE-M3 output layout matches this model (known output names: ${knownNames()}); ` +
      `${describeIo(inputs, outputs)}; ${mappingHint()}`,
  );
}

function knownNames(): string {
  return KNOWN_LAYOUTS.map((l) => Object.values(l.names).flat().join("/")).join("; ");
}

/** Refuses, naming everything, when `wanted` asks for kinds the layout lacks. */
export function checkWanted(
  match: LayoutMatch,
  wanted: readonly OutputKind[],
  inputs: readonly TensorMeta[],
  outputs: readonly TensorMeta[],
): void {
  const available = OUTPUT_KINDS.filter((k) => match.outputs[k] !== undefined);
  const missing = wanted.filter((k) => !available.includes(k));
  if (missing.length === 0) return;
  const fix = match.backboneOnly
    ? "this is a backbone-only export: `npm run prepare-model -- --from <its folder> --out <new folder>` adds " +
      "BGE-M3's sparse and ColBERT heads (sparse_linear.pt, colbert_linear.pt) to it"
    : `if the model has them under other names, ${mappingHint()}`;
  throw new ModelLoadError(
    `OUTPUTS asks for ${missing.join(", ")} but the model provides only ${available.join(", ") || "nothing usable"} ` +
      `(layout ${match.id}); ${describeIo(inputs, outputs)}; ${fix}`,
  );
}

/** Refuses outputs in use whose element type the heads cannot read, naming the type. */
export function checkOutputTypes(match: LayoutMatch, outputs: readonly TensorMeta[]): void {
  for (const [kind, name] of Object.entries(match.outputs)) {
    const meta = outputs.find((o) => o.name === name);
    if (meta && !isDecodable(meta.type)) {
      throw new ModelLoadError(
        `output ${name} (${kind}) has element type ${meta.type}; ` +
          `the worker reads ${DECODABLE_TYPES.join(", ")} outputs`,
      );
    }
  }
}

export interface DenseHead {
  output: string;
  pool: "vector" | "cls";
}
export interface SparseHead {
  output: string;
}
export interface ColbertHead {
  output: string;
  clsRow: boolean;
  dim: number;
}

export interface ConfirmedLayout {
  id: string;
  dense?: DenseHead;
  sparse?: SparseHead;
  colbert?: ColbertHead;
}

/** Shapes of one probe run of `batch` rows padded to `seq` tokens decide how each output is
 *  read. `seq` must be at least 3 so that L and L-1 cannot be confused with other dims. */
export function confirmLayout(
  match: LayoutMatch,
  shapes: Readonly<Record<string, readonly number[]>>,
  batch: number,
  seq: number,
): ConfirmedLayout {
  const out: ConfirmedLayout = { id: match.id };
  const bad = (kind: string, name: string, expected: string) =>
    new ModelLoadError(
      `output ${name} (${kind}) has shape [${shapes[name]?.join(", ")}] ` +
        `on a probe batch of ${batch} x ${seq} tokens; ` +
        `expected ${expected}; ${mappingHint()} if another output holds it`,
    );
  const { dense, sparse, colbert } = match.outputs;
  if (dense) {
    const d = shapes[dense] ?? [];
    if (d.length === 2 && d[0] === batch) out.dense = { output: dense, pool: "vector" };
    else if (d.length === 3 && d[0] === batch && d[1] === seq) out.dense = { output: dense, pool: "cls" };
    else throw bad("dense", dense, `[${batch}, H] or [${batch}, ${seq}, H]`);
  }
  if (sparse) {
    const d = shapes[sparse] ?? [];
    const ok = d[0] === batch && d[1] === seq && (d.length === 2 || (d.length === 3 && d[2] === 1));
    if (!ok) throw bad("sparse", sparse, `[${batch}, ${seq}, 1] or [${batch}, ${seq}]`);
    out.sparse = { output: sparse };
  }
  if (colbert) {
    const d = shapes[colbert] ?? [];
    const ok = d.length === 3 && d[0] === batch && (d[1] === seq || d[1] === seq - 1);
    if (!ok) throw bad("colbert", colbert, `[${batch}, ${seq - 1}, H] or [${batch}, ${seq}, H] (with the CLS row)`);
    out.colbert = { output: colbert, clsRow: d[1] === seq, dim: d[2] };
  }
  return out;
}

/** One line per head for the start-up log. */
export function describeLayout(layout: ConfirmedLayout, outputs: readonly TensorMeta[]): Record<string, string> {
  const type = (name: string) => outputs.find((o) => o.name === name)?.type ?? "?";
  const r: Record<string, string> = { layout: layout.id };
  if (layout.dense) {
    const how = layout.dense.pool === "cls" ? "CLS row of a hidden state" : "pooled vector";
    r.dense = `${layout.dense.output} ${type(layout.dense.output)}, ${how}, normalised here`;
  }
  if (layout.sparse) r.sparse = `${layout.sparse.output} ${type(layout.sparse.output)}`;
  if (layout.colbert) {
    const cls = layout.colbert.clsRow ? "CLS row skipped here" : "CLS row already dropped";
    const name = layout.colbert.output;
    r.colbert = `${name} ${type(name)}, ${cls}, padding rows dropped, normalised here`;
  }
  return r;
}
