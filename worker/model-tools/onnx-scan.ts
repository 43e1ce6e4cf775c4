/** Finds where things sit in an ONNX file so `onnx-rewrite.ts` can copy it around them: the
 *  ModelProto and GraphProto fields in file order, each initializer's inline raw_data, the
 *  graph outputs' names, the default-domain opset and every name already taken. Memory is
 *  proportional to the number of fields, not to the weights, which are never read. The
 *  worker's own header scan (adapters/onnx-graph-scan.ts) answers a different question (what
 *  the graph declares and which external files it needs) and keeps no positions; prepare-model
 *  uses it for that. Acts once per preparation. */
import onnxProto from "onnx-proto";
import { WIRE, WireFile, type WireField } from "./onnx-wire.js";

const { onnx } = onnxProto;

/** ModelProto, GraphProto, NodeProto and TensorProto field numbers used here and by the rewrite. */
export const FIELD = {
  model: { graph: 7, opsetImport: 8 },
  graph: { node: 1, initializer: 5, input: 11, output: 12 },
  node: { output: 2, name: 3 },
  tensor: { name: 8, rawData: 9, externalData: 13, dataLocation: 14 },
} as const;

/** One GraphProto field; initializers carry their inline data's field, inputs and outputs their name. */
export interface GraphEntry {
  field: WireField;
  /** Initializer name and its raw_data field (tag included), if the data is inline. */
  tensor?: { name: string; raw?: WireField };
  valueName?: string;
}

export interface ModelScan {
  path: string;
  /** ModelProto fields in file order; the graph is the one with field number 7. */
  modelFields: WireField[];
  graphFields: GraphEntry[];
  /** Version of the default ("" / ai.onnx) opset. */
  opset: number;
  /** Every value, initializer and node name in the graph, to keep added names unique. */
  names: Set<string>;
}

export async function scanModel(path: string): Promise<ModelScan> {
  const file = await WireFile.open(path);
  try {
    const scan: ModelScan = { path, modelFields: [], graphFields: [], opset: 0, names: new Set() };
    for await (const f of file.fields(0, file.size)) {
      scan.modelFields.push(f);
      if (f.field === FIELD.model.opsetImport && f.wire === WIRE.LEN) {
        const op = onnx.OperatorSetIdProto.decode(await file.bytes(f.valueStart, f.end));
        if (!op.domain || op.domain === "ai.onnx") scan.opset = Number(op.version);
      }
    }
    const graphs = scan.modelFields.filter((f) => f.field === FIELD.model.graph && f.wire === WIRE.LEN);
    if (graphs.length !== 1) throw new Error(`${path} has ${graphs.length} graph fields; expected one`);
    await scanGraph(file, graphs[0], scan);
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
      entry.valueName = onnx.ValueInfoProto.decode(await file.bytes(f.valueStart, f.end)).name ?? "";
      scan.names.add(entry.valueName);
    } else if (f.field === g.initializer) {
      entry.tensor = await scanTensor(file, f);
      scan.names.add(entry.tensor.name);
    } else if (f.field === g.node) {
      for await (const n of file.fields(f.valueStart, f.end)) {
        if (n.field === FIELD.node.output || n.field === FIELD.node.name) scan.names.add(await file.string(n));
      }
    }
  }
}

async function scanTensor(file: WireFile, tensor: WireField): Promise<{ name: string; raw?: WireField }> {
  const t: { name: string; raw?: WireField } = { name: "" };
  for await (const f of file.fields(tensor.valueStart, tensor.end)) {
    if (f.field === FIELD.tensor.name) t.name = await file.string(f);
    else if (f.field === FIELD.tensor.rawData) t.raw = f;
  }
  return t;
}
