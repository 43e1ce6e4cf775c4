/** Reads what `prepare-model` needs from an ONNX file without loading its weights: the
 *  default-domain opset, the graph's inputs and outputs, every name already taken, where each
 *  initializer's inline bytes sit, and every external-data reference (initializers and
 *  Constant-node tensors, such as BAAI's `Constant_7_attr__value`). Acts once per preparation;
 *  memory is proportional to the number of tensors, not their size. */
import onnxProto from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";
import { WIRE, WireFile, type WireField } from "./onnx-wire.js";

const { onnx } = onnxProto;

/** ModelProto, GraphProto, NodeProto, AttributeProto and TensorProto field numbers used here. */
export const FIELD = {
  model: { graph: 7, opsetImport: 8 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12 },
  node: { output: 2, name: 3, attribute: 5 },
  attribute: { t: 5, tensors: 11 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 },
} as const;

export interface ExternalRef { location: string; offset: number; length?: number }

export interface TensorScan {
  name: string;
  dataType: number;
  /** The TensorProto field inside its parent (tag included). */
  field: WireField;
  /** The inline raw_data field, if any. */
  raw?: WireField;
  external?: ExternalRef;
}

/** One GraphProto field; initializers carry their tensor details, inputs and outputs their value info. */
export interface GraphEntry { field: WireField; tensor?: TensorScan; value?: OnnxTypes.IValueInfoProto }

export interface ModelScan {
  path: string;
  size: number;
  /** ModelProto fields in file order; the graph is the one with field number 7. */
  modelFields: WireField[];
  /** GraphProto fields in file order, with the initializers' details. */
  graphFields: GraphEntry[];
  /** Version of the default ("" / ai.onnx) opset. */
  opset: number;
  inputs: OnnxTypes.IValueInfoProto[];
  outputs: OnnxTypes.IValueInfoProto[];
  /** Every value, initializer and node name in the graph, to keep added names unique. */
  names: Set<string>;
  /** External-data references with the tensor that holds each. */
  externalRefs: Array<{ tensor: string; ref: ExternalRef }>;
}

export async function scanModel(path: string): Promise<ModelScan> {
  const file = await WireFile.open(path);
  try {
    const scan: ModelScan = {
      path, size: file.size, modelFields: [], graphFields: [], opset: 0, inputs: [], outputs: [],
      names: new Set(), externalRefs: [],
    };
    let graph: WireField | undefined;
    for await (const f of file.fields(0, file.size)) {
      scan.modelFields.push(f);
      if (f.field === FIELD.model.graph && f.wire === WIRE.LEN) graph = f;
      if (f.field === FIELD.model.opsetImport && f.wire === WIRE.LEN) {
        const op = onnx.OperatorSetIdProto.decode(await file.bytes(f.valueStart, f.end));
        if (!op.domain || op.domain === "ai.onnx") scan.opset = Number(op.version);
      }
    }
    if (!graph) throw new Error(`${path} holds no graph; is it an ONNX model?`);
    if (scan.modelFields.filter((f) => f.field === FIELD.model.graph).length > 1) {
      throw new Error(`${path} splits its graph over several fields; re-save it with onnx.save first`);
    }
    await scanGraph(file, graph, scan);
    return scan;
  } finally {
    await file.close();
  }
}

async function scanGraph(file: WireFile, graph: WireField, scan: ModelScan): Promise<void> {
  const g = FIELD.graph;
  for await (const f of file.fields(graph.valueStart, graph.end)) {
    const entry: GraphEntry = { field: f };
    scan.graphFields.push(entry);
    if (f.field === g.input || f.field === g.output) {
      const vi = onnx.ValueInfoProto.decode(await file.bytes(f.valueStart, f.end));
      (f.field === g.input ? scan.inputs : scan.outputs).push(vi);
      entry.value = vi;
      scan.names.add(vi.name ?? "");
    } else if (f.field === g.initializer) {
      entry.tensor = await scanTensor(file, f);
      scan.names.add(entry.tensor.name);
      if (entry.tensor.external) scan.externalRefs.push({ tensor: entry.tensor.name, ref: entry.tensor.external });
    } else if (f.field === g.node) {
      await scanNode(file, f, scan);
    }
  }
}

async function scanNode(file: WireFile, node: WireField, scan: ModelScan): Promise<void> {
  let nodeName = "";
  for await (const f of file.fields(node.valueStart, node.end)) {
    if (f.field === FIELD.node.output || f.field === FIELD.node.name) {
      const s = await file.string(f);
      scan.names.add(s);
      if (f.field === FIELD.node.name) nodeName = s;
    } else if (f.field === FIELD.node.attribute) {
      for await (const a of file.fields(f.valueStart, f.end)) {
        if (a.field !== FIELD.attribute.t && a.field !== FIELD.attribute.tensors) continue;
        const t = await scanTensor(file, a);
        if (t.external) scan.externalRefs.push({ tensor: t.name || `attribute of node ${nodeName}`, ref: t.external });
      }
    }
  }
}

async function scanTensor(file: WireFile, tensor: WireField): Promise<TensorScan> {
  const t: TensorScan = { name: "", dataType: 0, field: tensor };
  const entries: Record<string, string> = {};
  let external = false;
  const T = FIELD.tensor;
  for await (const f of file.fields(tensor.valueStart, tensor.end)) {
    if (f.field === T.name) t.name = await file.string(f);
    else if (f.field === T.dataType) t.dataType = f.value;
    else if (f.field === T.rawData) t.raw = f;
    else if (f.field === T.dataLocation) external = f.value === 1;
    else if (f.field === T.externalData) {
      const e = onnx.StringStringEntryProto.decode(await file.bytes(f.valueStart, f.end));
      entries[e.key ?? ""] = e.value ?? "";
    }
  }
  if (external) {
    t.external = { location: entries.location ?? "", offset: Number(entries.offset ?? 0) };
    if (entries.length !== undefined) t.external.length = Number(entries.length);
  }
  return t;
}

const TYPE_NAMES: Record<number, string> = {
  1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64", 16: "bfloat16",
};

/** "input_ids: int64 [batch, sequence]" for error messages. */
export function describeValue(v: OnnxTypes.IValueInfoProto): string {
  const t = v.type?.tensorType;
  if (!t) return `${v.name}: (not a tensor)`;
  const type = TYPE_NAMES[t.elemType ?? 0] ?? `type ${t.elemType}`;
  const dims = (t.shape?.dim ?? []).map((d) => d.dimParam || (d.dimValue != null ? String(d.dimValue) : "?"));
  return `${v.name}: ${type} [${dims.join(", ")}]`;
}

export function elementTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}
