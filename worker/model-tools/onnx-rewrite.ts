/** Writes a modified copy of an ONNX model in one streaming pass over the source, holding
 *  only tensor headers in memory: graph fields are copied byte for byte, chosen outputs are
 *  dropped, extra graph fields (new nodes, initializers, outputs) are appended, and inline
 *  initializers of `threshold` bytes or more move to an external-data file. Moving them keeps
 *  the `.onnx` file small, so ONNX Runtime can map weights instead of parsing a 1 GB protobuf
 *  (and the file stays under protobuf's 2 GB limit as heads are added). Trades one full copy
 *  of the weights (the caller hard-links external files instead when it can) for a peak
 *  memory of a few MB whatever the model size. */
import { open, type FileHandle } from "node:fs/promises";
import onnxProto from "onnx-proto";
import { FIELD, type GraphEntry, type ModelScan } from "./onnx-scan.js";
import { encodeVarint, lenField, WIRE, type WireField } from "./onnx-wire.js";

const { onnx } = onnxProto;
const COPY_CHUNK = 8 << 20;
/** Data offsets are page-aligned so the file can be memory-mapped tensor by tensor. */
const ALIGN = 4096;

type Segment = { start: number; end: number } | Uint8Array;

export interface RewritePlan {
  scan: ModelScan;
  outPath: string;
  /** External-data file for moved initializers, relative to the model (e.g. `model.onnx_data`). */
  dataFile: string;
  dataPath: string;
  /** Inline initializers at least this large move out; Infinity keeps all inline. */
  threshold: number;
  dropOutputs: Set<string>;
  /** Serialised GraphProto whose fields are appended to the graph. */
  append: Uint8Array;
}

export interface RewriteResult {
  moved: number;
  dataBytes: number;
}

const segLength = (s: Segment) => (s instanceof Uint8Array ? s.length : s.end - s.start);
const total = (segs: Segment[]) => segs.reduce((n, s) => n + segLength(s), 0);
const copyOf = (f: WireField): Segment => ({ start: f.start, end: f.end });

export async function rewriteModel(plan: RewritePlan): Promise<RewriteResult> {
  const src = await open(plan.scan.path, "r");
  const moves: Move[] = [];
  let dataBytes = 0;
  const graphSegs: Segment[] = [];
  for (const entry of plan.scan.graphFields) {
    if (entry.field.field === FIELD.graph.output && plan.dropOutputs.has(entry.valueName ?? "")) continue;
    const raw = entry.tensor?.raw;
    if (!raw || raw.end - raw.valueStart < plan.threshold) {
      graphSegs.push(copyOf(entry.field));
      continue;
    }
    const offset = Math.ceil(dataBytes / ALIGN) * ALIGN;
    dataBytes = offset + (raw.end - raw.valueStart);
    moves.push({ raw, offset });
    graphSegs.push(...externalTensor(entry, plan.dataFile, offset, raw.end - raw.valueStart));
  }
  graphSegs.push(plan.append);
  const modelSegs: Segment[] = [];
  for (const f of plan.scan.modelFields) {
    if (f.field !== FIELD.model.graph) modelSegs.push(copyOf(f));
    else
      modelSegs.push(
        Buffer.concat([encodeVarint(FIELD.model.graph * 8 + WIRE.LEN), encodeVarint(total(graphSegs))]),
        ...graphSegs,
      );
  }
  try {
    await writeSegments(src, plan.outPath, modelSegs);
    if (moves.length > 0) await writeData(src, plan.dataPath, moves);
  } finally {
    await src.close();
  }
  return { moved: moves.length, dataBytes };
}

/** The TensorProto without raw_data, plus external_data entries and data_location = EXTERNAL. */
function externalTensor(entry: GraphEntry, location: string, offset: number, length: number): Segment[] {
  const t = entry.field;
  const raw = entry.tensor!.raw!;
  const kv = (key: string, value: string) =>
    lenField(FIELD.tensor.externalData, onnx.StringStringEntryProto.encode({ key, value }).finish());
  const extra = Buffer.concat([
    kv("location", location),
    kv("offset", String(offset)),
    kv("length", String(length)),
    encodeVarint(FIELD.tensor.dataLocation * 8 + WIRE.VARINT),
    encodeVarint(1),
  ]);
  // A later scalar field wins in protobuf, so an earlier data_location = DEFAULT is overridden.
  const body: Segment[] = [{ start: t.valueStart, end: raw.start }, { start: raw.end, end: t.end }, extra];
  const head = Buffer.concat([encodeVarint(FIELD.graph.initializer * 8 + WIRE.LEN), encodeVarint(total(body))]);
  return [head, ...body];
}

async function copyRange(src: FileHandle, dst: FileHandle, start: number, end: number, buf: Buffer): Promise<void> {
  for (let pos = start; pos < end;) {
    const n = Math.min(buf.length, end - pos);
    const { bytesRead } = await src.read(buf, 0, n, pos);
    if (bytesRead !== n) throw new Error(`source ended at byte ${pos + bytesRead} while copying`);
    await dst.write(buf, 0, n);
    pos += n;
  }
}

async function writeSegments(src: FileHandle, outPath: string, segs: Segment[]): Promise<void> {
  const dst = await open(outPath, "w");
  const buf = Buffer.alloc(COPY_CHUNK);
  try {
    for (const s of segs) {
      if (s instanceof Uint8Array) await dst.write(s);
      else await copyRange(src, dst, s.start, s.end, buf);
    }
  } finally {
    await dst.close();
  }
}

type Move = { raw: WireField; offset: number };

async function writeData(src: FileHandle, dataPath: string, moves: Move[]): Promise<void> {
  const dst = await open(dataPath, "w");
  const buf = Buffer.alloc(COPY_CHUNK);
  let written = 0;
  try {
    for (const m of moves) {
      if (m.offset > written) await dst.write(Buffer.alloc(m.offset - written));
      await copyRange(src, dst, m.raw.valueStart, m.raw.end, buf);
      written = m.offset + (m.raw.end - m.raw.valueStart);
    }
  } finally {
    await dst.close();
  }
}
