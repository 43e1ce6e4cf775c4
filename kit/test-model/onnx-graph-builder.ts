/*
 * Minimal ONNX graph builder on top of the onnx-proto message classes.
 *
 * Keeps node/initializer bookkeeping and name generation in one place so the
 * model definition reads like the architecture it describes. Weights go into
 * `raw_data` as views over typed arrays: no per-element protobuf encoding,
 * which is what makes a 400 MB model serialise in seconds. Trade-off: raw_data
 * is little-endian by spec, so big-endian hosts are refused rather than
 * byte-swapped.
 */
import onnxProto from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";

const { onnx } = onnxProto;

export const OPSET_VERSION = 17;
export const IR_VERSION = 8;
export const TensorType = { FLOAT: 1, INT32: 6, INT64: 7, FLOAT16: 10 } as const;
export type ElemType = (typeof TensorType)[keyof typeof TensorType];
/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function rawBytes(data: Float32Array | BigInt64Array): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error("ONNX raw_data must be little-endian; big-endian hosts are unsupported");
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Marks a float attribute. Plain numbers are always INT attributes: guessing
 * from the value would turn an epsilon of 1 into an integer.
 */
export class FloatAttr {
  constructor(readonly value: number) {}
}

/** Attribute values: int, ints, or an explicitly marked float. */
export type AttrValue = number | number[] | FloatAttr;

function attribute(name: string, value: AttrValue): OnnxTypes.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (value instanceof FloatAttr) return { name, type: A.FLOAT, f: value.value };
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  if (!Number.isInteger(value))
    throw new Error(`attribute ${name}: ${value} is not an integer; wrap floats in FloatAttr`);
  return { name, type: A.INT, i: value };
}

function valueInfo(name: string, elemType: ElemType, dims: Dim[]): OnnxTypes.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

/** A model whose large initializers live in a separate file (ONNX external data). */
export interface ExternalDataModel {
  model: Uint8Array;
  data: Uint8Array;
}

export class GraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;
  private paramCount = 0;

  private unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.names.add(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a trainable weight; it counts toward `parameterCount`. */
  weight(name: string, dims: number[], data: Float32Array): string {
    this.paramCount += data.length;
    return this.tensor(name, dims, data);
  }

  /** Adds a constant initializer (shapes, axes, scalars). */
  tensor(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== data.length) throw new Error(`${name}: ${data.length} values for dims [${dims}]`);
    const unique = this.unique(name);
    const dataType = data instanceof Float32Array ? TensorType.FLOAT : TensorType.INT64;
    this.initializers.push({ name: unique, dims, dataType, rawData: rawBytes(data) });
    return unique;
  }

  int64s(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.tensor(name, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** int64 constant from bigints, for values past 2^53 such as INT64_MAX slice ends. */
  bigInt64s(name: string, values: bigint[]): string {
    return this.tensor(name, [values.length], BigInt64Array.from(values));
  }

  scalarFloat(name: string, value: number): string {
    return this.tensor(name, [], Float32Array.of(value));
  }

  /** Appends a node and returns its (single) output name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    const output = outName ?? this.unique(`${opType.toLowerCase()}_out`);
    if (outName) this.names.add(outName);
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: this.unique(`${opType}_${this.nodes.length}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  get parameterCount(): number {
    return this.paramCount;
  }

  /** Serialises the graph into a complete ModelProto. */
  encode(graphName: string, docString: string): Uint8Array {
    return this.encodeWith(graphName, docString, this.initializers);
  }

  /**
   * Serialises the graph with every initializer of at least `minBytes` moved to one external
   * data file (named `location`, relative to the model), written back to back as `onnx`'s
   * `save_model(..., save_as_external_data=True)` does with its 1 KiB default threshold.
   */
  encodeWithExternalData(graphName: string, docString: string, location: string, minBytes = 1024): ExternalDataModel {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const initializers = this.initializers.map((t): OnnxTypes.ITensorProto => {
      const raw = t.rawData as Uint8Array;
      if (raw.byteLength < minBytes) return t;
      const entry = (key: string, value: number | string) => ({ key, value: String(value) });
      const externalData = [entry("location", location), entry("offset", offset), entry("length", raw.byteLength)];
      chunks.push(raw);
      offset += raw.byteLength;
      const { rawData: _inline, ...rest } = t;
      return { ...rest, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData };
    });
    const data = new Uint8Array(offset);
    let o = 0;
    for (const c of chunks) {
      data.set(c, o);
      o += c.byteLength;
    }
    return { model: this.encodeWith(graphName, docString, initializers), data };
  }

  private encodeWith(graphName: string, docString: string, initializers: OnnxTypes.ITensorProto[]): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: OPSET_VERSION }],
      producerName: "bge-m3-queue-worker test-model generator",
      producerVersion: "1",
      docString,
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
