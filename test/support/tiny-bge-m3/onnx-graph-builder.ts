/**
 * Minimal helper for writing ONNX graphs by hand with onnx-proto.
 *
 * It covers only what the tiny test model needs: float32 / int64
 * initializers stored as raw little-endian bytes, nodes with int / ints /
 * float attributes, and symbolic-dimension graph inputs and outputs. Trade-off:
 * no shape inference or validation here — ONNX Runtime's loader is the
 * checker, and the tests load every generated model.
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** ONNX 1.10 protos cap the IR version at 8; opset 17 is the newest it pairs with in ORT. */
export const IR_VERSION = 8;
export const OPSET_VERSION = 17;

export type ElementType = "float32" | "int64";

/** A dimension is a fixed size or a symbolic name such as "batch_size". */
export type Dim = number | string;

export type AttributeValue = number | readonly number[] | { readonly float: number };

const ELEMENT_TYPE_CODES: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

function littleEndianBytes(view: Float32Array | BigInt64Array): Uint8Array {
  // Copy rather than alias: the caller's array may be a view into a larger buffer.
  const bytes = new Uint8Array(view.byteLength);
  const out = new DataView(bytes.buffer);
  if (view instanceof Float32Array) {
    for (let i = 0; i < view.length; i++) out.setFloat32(i * 4, view[i], true);
  } else {
    for (let i = 0; i < view.length; i++) out.setBigInt64(i * 8, view[i], true);
  }
  return bytes;
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) {
      throw new TypeError(`Attribute ${name}: use { float: x } for float values, got ${value}`);
    }
    return { name, type: A.INT, i: value };
  }
  if ("float" in value) return { name, type: A.FLOAT, f: value.float };
  return { name, type: A.INTS, ints: [...value] };
}

function valueInfo(name: string, type: ElementType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPE_CODES[type],
        shape: {
          dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/** Accumulates nodes and initializers, then serialises a ModelProto. */
export class OnnxGraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private counter = 0;

  private claim(name: string): string {
    if (this.usedNames.has(name)) {
      throw new Error(`ONNX graph name "${name}" is defined twice; names must be unique`);
    }
    this.usedNames.add(name);
    return name;
  }

  input(name: string, type: ElementType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /** Declare `value` as a graph output named `name` (via Identity when renaming). */
  output(value: string, name: string, type: ElementType, dims: readonly Dim[]): void {
    if (value !== name) this.nodes.push({ opType: "Identity", input: [value], output: [this.claim(name)], name: `${name}_identity` });
    this.outputs.push(valueInfo(name, type, dims));
  }

  floatTensor(name: string, dims: readonly number[], data: Float32Array): string {
    return this.tensor(name, "float32", dims, littleEndianBytes(data), data.length);
  }

  int64Tensor(name: string, dims: readonly number[], data: readonly bigint[]): string {
    return this.tensor(name, "int64", dims, littleEndianBytes(BigInt64Array.from(data)), data.length);
  }

  floatScalar(name: string, value: number): string {
    return this.floatTensor(name, [], Float32Array.of(value));
  }

  int64Scalar(name: string, value: bigint): string {
    return this.int64Tensor(name, [], [value]);
  }

  private tensor(name: string, type: ElementType, dims: readonly number[], raw: Uint8Array, count: number): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== count) {
      throw new Error(`Initializer "${name}": dims [${dims.join(", ")}] need ${expected} values, got ${count}`);
    }
    this.initializers.push({ name: this.claim(name), dims: [...dims], dataType: ELEMENT_TYPE_CODES[type], rawData: raw });
    return name;
  }

  /** Add one node with a single output; returns that output's generated name. */
  op(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, hint = opType): string {
    const id = this.counter++;
    const out = this.claim(`${hint}_${id}`);
    this.nodes.push({
      opType,
      name: `${hint}_node_${id}`,
      input: [...inputs],
      output: [out],
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Serialise to ONNX protobuf bytes. Deterministic for identical call sequences. */
  build(graphName: string, producer: { name: string; version: string; docString: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: producer.name,
      producerVersion: producer.version,
      docString: producer.docString,
      opsetImport: [{ domain: "", version: OPSET_VERSION }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
