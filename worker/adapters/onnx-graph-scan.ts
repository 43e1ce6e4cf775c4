/** Reads what an ONNX file declares without decoding it (issue 12): the graph's inputs and
 *  outputs with element types and shapes, and every external-data reference (initializers,
 *  tensor attributes of nodes such as `Constant`, sparse tensors, subgraphs) with the file
 *  it names. A protobuf wire-format walker that reads field headers at offsets with
 *  `fs.readSync` through a small window and skips every payload it does not need, so a 2 GB
 *  single-file model costs reads of its headers only, never the weights. Trades generality
 *  for that: it knows just the few ONNX messages on the way (field numbers as in onnx.proto:
 *  ModelProto.graph 7; GraphProto node 1, initializer 5, input 11, output 12, sparse_initializer
 *  15; NodeProto.attribute 5; AttributeProto t 5, g 6, tensors 10, graphs 11, sparse_tensor 22,
 *  sparse_tensors 23; TensorProto name 8, external_data 13, data_location 14). Runs at start-up. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** ONNX TensorProto.DataType codes, named as onnxruntime-common names them. */
export const ELEM_TYPES: Readonly<Record<number, string>> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  14: "complex64",
  15: "complex128",
  16: "bfloat16",
};

export interface DeclaredValue {
  name: string;
  /** ONNX element type code (0 when not a tensor). */
  elemType: number;
  shape: Array<number | string>;
}

export interface ExternalRef {
  /** Tensor (or `node <name>` for an unnamed attribute tensor) whose data is elsewhere. */
  tensor: string;
  location: string;
  offset: number;
  /** Bytes, when the reference says (else the rest of the file). */
  length?: number;
}

export interface GraphScan {
  inputs: DeclaredValue[];
  outputs: DeclaredValue[];
  external: ExternalRef[];
  /** Bytes read from disk to find all this. */
  bytesRead: number;
}

export class OnnxFormatError extends Error {}

const WINDOW = 4096;

/** Positional reads through a small window; payloads are skipped by offset. */
class Reader {
  private readonly buf = Buffer.alloc(WINDOW);
  private start = 0;
  private end = 0;
  bytesRead = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  private fill(pos: number): void {
    const n = readSync(this.fd, this.buf, 0, WINDOW, pos);
    this.bytesRead += n;
    this.start = pos;
    this.end = pos + n;
  }

  byte(pos: number): number {
    if (pos < this.start || pos >= this.end) this.fill(pos);
    if (pos >= this.end) throw new OnnxFormatError(`unexpected end of file at byte ${pos}`);
    return this.buf[pos - this.start];
  }

  /** Varint at `pos`: value (exact below 2^53) and the position after it. */
  varint(pos: number): [number, number] {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(pos + i);
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return [value, pos + i + 1];
    }
    throw new OnnxFormatError(`malformed varint at byte ${pos}`);
  }

  text(pos: number, len: number): string {
    if (len > 1 << 20) throw new OnnxFormatError(`a ${len}-byte name at byte ${pos}`);
    const out = Buffer.alloc(len);
    this.bytesRead += readSync(this.fd, out, 0, len, pos);
    return out.toString("utf8");
  }
}

type Field = { field: number; wire: number; pos: number; len: number; value: number };

/** Calls `visit` for each field of the message in [start, end); length-delimited payloads
 *  are handed over by position and never read here. */
function walk(r: Reader, start: number, end: number, visit: (f: Field) => void): void {
  let pos = start;
  while (pos < end) {
    const [key, p] = r.varint(pos);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value = 0;
    let len = 0;
    let next: number;
    if (wire === 0) [value, next] = r.varint(p);
    else if (wire === 1) next = p + 8;
    else if (wire === 5) next = p + 4;
    else if (wire === 2) {
      [len, next] = r.varint(p);
      value = next;
      next += len;
    } else throw new OnnxFormatError(`unsupported wire type ${wire} at byte ${pos}`);
    if (next > end) throw new OnnxFormatError(`field ${field} at byte ${pos} runs past its message`);
    visit({ field, wire, pos: wire === 2 ? value : p, len, value });
    pos = next;
  }
}

function tensor(r: Reader, f: Field, owner: string, out: ExternalRef[]): void {
  let name = "";
  let external = false;
  const entries: Record<string, string> = {};
  walk(r, f.pos, f.pos + f.len, (t) => {
    if (t.field === 8 && t.wire === 2) name = r.text(t.pos, t.len);
    else if (t.field === 14 && t.wire === 0) external = t.value === 1;
    else if (t.field === 13 && t.wire === 2) {
      let key = "";
      let value = "";
      walk(r, t.pos, t.pos + t.len, (e) => {
        if (e.field === 1 && e.wire === 2) key = r.text(e.pos, e.len);
        else if (e.field === 2 && e.wire === 2) value = r.text(e.pos, e.len);
      });
      entries[key] = value;
    }
  });
  if (!external || entries.location === undefined) return;
  out.push({
    tensor: name || owner,
    location: entries.location,
    offset: Number(entries.offset ?? 0),
    ...(entries.length !== undefined ? { length: Number(entries.length) } : {}),
  });
}

function sparseTensor(r: Reader, f: Field, owner: string, out: ExternalRef[]): void {
  walk(r, f.pos, f.pos + f.len, (s) => {
    if ((s.field === 1 || s.field === 2) && s.wire === 2) tensor(r, s, owner, out);
  });
}

function node(r: Reader, f: Field, out: ExternalRef[]): void {
  let name = "";
  walk(r, f.pos, f.pos + f.len, (n) => {
    if (n.field === 3 && n.wire === 2) name = r.text(n.pos, n.len);
    if (n.field !== 5 || n.wire !== 2) return;
    walk(r, n.pos, n.pos + n.len, (a) => {
      if (a.wire !== 2) return;
      const owner = `node ${name || "(unnamed)"}`;
      if (a.field === 5 || a.field === 10) tensor(r, a, owner, out);
      else if (a.field === 22 || a.field === 23) sparseTensor(r, a, owner, out);
      else if (a.field === 6 || a.field === 11) graph(r, a, out);
    });
  });
}

function declared(r: Reader, f: Field): DeclaredValue {
  const v: DeclaredValue = { name: "", elemType: 0, shape: [] };
  const sub = (g: Field, fn: (x: Field) => void) => walk(r, g.pos, g.pos + g.len, fn);
  sub(f, (x) => {
    if (x.field === 1 && x.wire === 2) v.name = r.text(x.pos, x.len);
    if (x.field !== 2 || x.wire !== 2) return;
    sub(
      x,
      (type) =>
        type.field === 1 &&
        type.wire === 2 &&
        sub(type, (t) => {
          if (t.field === 1 && t.wire === 0) v.elemType = t.value;
          if (t.field === 2 && t.wire === 2) {
            sub(
              t,
              (d) =>
                d.field === 1 &&
                d.wire === 2 &&
                sub(d, (dim) => {
                  if (dim.field === 1 && dim.wire === 0) v.shape.push(dim.value);
                  if (dim.field === 2 && dim.wire === 2) v.shape.push(r.text(dim.pos, dim.len));
                }),
            );
          }
        }),
    );
  });
  return v;
}

function graph(r: Reader, f: Field, out: ExternalRef[], io?: Pick<GraphScan, "inputs" | "outputs">): void {
  walk(r, f.pos, f.pos + f.len, (g) => {
    if (g.wire !== 2) return;
    if (g.field === 1) node(r, g, out);
    else if (g.field === 5) tensor(r, g, "initializer", out);
    else if (g.field === 15) sparseTensor(r, g, "sparse initializer", out);
    else if (g.field === 11) io?.inputs.push(declared(r, g));
    else if (g.field === 12) io?.outputs.push(declared(r, g));
  });
}

/** Scans `file`; throws OnnxFormatError when it is not an ONNX (protobuf) file. */
export function scanOnnxGraph(file: string): GraphScan {
  const fd = openSync(file, "r");
  try {
    const r = new Reader(fd, fstatSync(fd).size);
    const scan: GraphScan = { inputs: [], outputs: [], external: [], bytesRead: 0 };
    let graphs = 0;
    walk(r, 0, r.size, (f) => {
      if (f.field === 7 && f.wire === 2) {
        graphs++;
        graph(r, f, scan.external, scan);
      }
    });
    if (graphs === 0) throw new OnnxFormatError("no graph in the file");
    scan.bytesRead = r.bytesRead;
    return scan;
  } finally {
    closeSync(fd);
  }
}
