/** Builds BGE-M3's three heads as extra GraphProto fields on top of a backbone's hidden state
 *  h [B,L,H]: dense = normalise(h[:,0]) → `dense_vecs` [B,H]; sparse = relu(h·Wsᵀ+bs) →
 *  `sparse_vecs` [B,L,1]; ColBERT = normalise(h[:,1:]·Wcᵀ+bc) → `colbert_vecs` [B,L-1,C]. The
 *  projections run in the backbone's element type (float16 weights on a float16 backbone), the
 *  normalisation in float32 after a Cast so float16 cannot overflow, and every output is
 *  float32. Padded positions are not masked: the worker drops padded rows and normalises again.
 *  Emits the opset-specific forms (ReduceL2 axes as attribute before opset 18, as input after). */
import onnxProto from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";
import { ModelLayoutError } from "./model-tool-errors.js";
import { ptToFloat32, type PtTensor } from "./pt-reader.js";

const { onnx } = onnxProto;
const FLOAT = 1;
const FLOAT16 = 10;
const INT64 = 7;
const INT64_MAX = 0x7fffffffffffffffn;
/** Slice with inputs and Gather with negative-safe indices need opset 10/11; exports use 14-17. */
export const MIN_OPSET = 11;

export interface LinearHead {
  weight: PtTensor;
  bias: PtTensor;
}

export interface HeadGraphInput {
  /** The backbone's hidden-state value, e.g. `last_hidden_state`. */
  hidden: string;
  /** Its element type: 1 (float32) or 10 (float16). */
  elemType: number;
  hiddenSize: number;
  batchDim: string;
  seqDim: string;
  opset: number;
  sparse: LinearHead;
  colbert: LinearHead;
  /** Names already used in the backbone; added names avoid them. */
  taken: Set<string>;
}

export const HEAD_OUTPUTS = ["dense_vecs", "sparse_vecs", "colbert_vecs"] as const;

/** Checks an nn.Linear state dict against the hidden size; returns its output size. */
export function linearOutSize(head: LinearHead, hiddenSize: number, what: string): number {
  const [out, inp] = head.weight.shape;
  if (head.weight.shape.length !== 2 || inp !== hiddenSize || head.bias.shape.join() !== String(out)) {
    throw new ModelLayoutError(
      `${what}: weight [${head.weight.shape}] and bias [${head.bias.shape}] do not fit a ` +
        `Linear from the backbone's hidden size ${hiddenSize} (expected weight [out, ${hiddenSize}], bias [out])`,
    );
  }
  return out;
}

class Fragment {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  constructor(private readonly taken: Set<string>) {}

  name(base: string): string {
    let n = `bge_m3_heads/${base}`;
    for (let i = 1; this.taken.has(n); i++) n = `bge_m3_heads/${base}_${i}`;
    this.taken.add(n);
    return n;
  }
  init(base: string, dataType: number, dims: number[], raw: Uint8Array): string {
    const name = this.name(base);
    this.initializers.push({ name, dataType, dims, rawData: raw });
    return name;
  }
  int64s(base: string, values: bigint[], dims = [values.length]): string {
    const a = BigInt64Array.from(values);
    return this.init(base, INT64, dims, new Uint8Array(a.buffer));
  }
  node(op: string, inputs: string[], attrs: OnnxTypes.IAttributeProto[] = [], out?: string): string {
    const output = out ?? this.name(`${op}_out`);
    this.nodes.push({ opType: op, input: inputs, output: [output], name: this.name(op), attribute: attrs });
    return output;
  }
}

const A = onnx.AttributeProto.AttributeType;

/** [rows, cols] elements of `size` bytes to [cols, rows]. */
function transposeBytes(src: Uint8Array, rows: number, cols: number, size: number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const from = (r * cols + c) * size;
      out.set(src.subarray(from, from + size), (c * rows + r) * size);
    }
  }
  return out;
}

/** A head tensor as an initializer in the backbone's element type; a weight [out,in] becomes the
 *  MatMul operand [in,out]. float16 on a float16 backbone and float32 on a float32 one are
 *  copied bit for bit; float16/bfloat16 on a float32 backbone are widened exactly; float32 (or
 *  bfloat16) on a float16 backbone goes in as float32 behind a Cast, which ONNX Runtime folds
 *  into a float16 constant when the session starts. */
function initializer(f: Fragment, base: string, t: PtTensor, elemType: number): string {
  const [rows, cols] = t.shape;
  const dims = t.shape.length === 2 ? [cols, rows] : t.shape;
  const same = (t.dtype === "float16" && elemType === FLOAT16) || (t.dtype === "float32" && elemType === FLOAT);
  const size = t.dtype === "float32" || !same ? 4 : 2;
  let bytes = same ? t.bytes : new Uint8Array(ptToFloat32(t).buffer);
  if (t.shape.length === 2) bytes = transposeBytes(bytes, rows, cols, size);
  const name = f.init(base, same ? elemType : FLOAT, dims, bytes);
  return same || elemType === FLOAT ? name : f.node("Cast", [name], [{ name: "to", type: A.INT, i: elemType }]);
}

function toFloat32(f: Fragment, x: string, elemType: number): string {
  return elemType === FLOAT ? x : f.node("Cast", [x], [{ name: "to", type: A.INT, i: FLOAT }]);
}

/** x / max(‖x‖₂ over the last axis, 1e-12), like torch.nn.functional.normalize. */
function normalise(f: Fragment, x: string, opset: number, out: string): string {
  const keep = { name: "keepdims", type: A.INT, i: 1 };
  const norm =
    opset >= 18
      ? f.node("ReduceL2", [x, f.int64s("last_axis", [-1n])], [keep])
      : f.node("ReduceL2", [x], [{ name: "axes", type: A.INTS, ints: [-1] }, keep]);
  const eps = f.init("min_norm", FLOAT, [], new Uint8Array(Float32Array.of(1e-12).buffer));
  return f.node("Div", [x, f.node("Max", [norm, eps])], [], out);
}

function linear(f: Fragment, x: string, head: LinearHead, base: string, elemType: number): string {
  const w = initializer(f, `${base}.weight_t`, head.weight, elemType);
  const b = initializer(f, `${base}.bias`, head.bias, elemType);
  return f.node("Add", [f.node("MatMul", [x, w]), b]);
}

/** The GraphProto holding only the added nodes, initializers and outputs (appendable bytes). */
export function buildHeadGraph(g: HeadGraphInput): Uint8Array {
  if (g.elemType !== FLOAT && g.elemType !== FLOAT16) {
    throw new ModelLayoutError(`${g.hidden} has element type ${g.elemType}; prepare-model handles float32 and float16`);
  }
  if (g.opset < MIN_OPSET) {
    throw new ModelLayoutError(`the backbone uses opset ${g.opset}; prepare-model needs ${MIN_OPSET}+`);
  }
  const colbertDim = linearOutSize(g.colbert, g.hiddenSize, "colbert_linear.pt");
  if (linearOutSize(g.sparse, g.hiddenSize, "sparse_linear.pt") !== 1) {
    const n = g.sparse.weight.shape[0];
    throw new ModelLayoutError(`sparse_linear.pt maps to ${n} values per token; BGE-M3's maps to 1`);
  }
  const f = new Fragment(g.taken);
  const cls = f.node("Gather", [g.hidden, f.int64s("cls_index", [0n], [])], [{ name: "axis", type: A.INT, i: 1 }]);
  normalise(f, toFloat32(f, cls, g.elemType), g.opset, "dense_vecs");

  const relu = f.node(
    "Relu",
    [linear(f, g.hidden, g.sparse, "sparse_linear", g.elemType)],
    [],
    g.elemType === FLOAT ? "sparse_vecs" : undefined,
  );
  if (g.elemType !== FLOAT) f.node("Cast", [relu], [{ name: "to", type: A.INT, i: FLOAT }], "sparse_vecs");

  // Position 0 is CLS; INT64_MAX as the end means "through the last position".
  const tokens = f.node("Slice", [
    g.hidden,
    f.int64s("colbert_start", [1n]),
    f.int64s("colbert_end", [INT64_MAX]),
    f.int64s("colbert_axis", [1n]),
  ]);
  const projected = linear(f, tokens, g.colbert, "colbert_linear", g.elemType);
  normalise(f, toFloat32(f, projected, g.elemType), g.opset, "colbert_vecs");

  const dims = (...d: Array<string | number>) =>
    d.map((x) => (typeof x === "number" ? { dimValue: x } : { dimParam: x }));
  const output = (name: string, shape: Array<string | number>) => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims(...shape) } } },
  });
  return onnx.GraphProto.encode({
    node: f.nodes,
    initializer: f.initializers,
    output: [
      output("dense_vecs", [g.batchDim, g.hiddenSize]),
      output("sparse_vecs", [g.batchDim, g.seqDim, 1]),
      output("colbert_vecs", [g.batchDim, `${g.seqDim}_minus_1`, colbertDim]),
    ],
  }).finish();
}
