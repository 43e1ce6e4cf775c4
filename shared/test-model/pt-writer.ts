/*
 * Writes a PyTorch state dict of float16 tensors as `torch.save` does, without Python.
 *
 * BGE-M3 ships its heads as `sparse_linear.pt` and `colbert_linear.pt`: `torch.save` of an
 * `nn.Linear` state dict (an OrderedDict of `weight` [out, in] and `bias` [out], float16),
 * which is a zip of `<name>/data.pkl` (pickle protocol 2), one raw little-endian file per
 * tensor storage (`<name>/data/0`, ...) and `<name>/version`. The archive folder is the file
 * name without its extension, as torch.save writes when given a path. Entries are stored
 * (not deflated) and their data start on 64-byte boundaries, padded with an "FB" extra field,
 * as PyTorch's own zip writer does. Tests use these files to exercise the `.pt` reader and
 * `prepare-model` against backbone-only layouts. Trade-off: only float16 tensors and the
 * opcodes torch 1.13 emits for such a dict; no compression, no zip64 (files stay small).
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { toFloat16Bits } from "./float16.js";

export interface PtTensor {
  /** Row-major values; written as float16. */
  data: Float32Array;
  shape: number[];
}

/** Pickle protocol 2 for an OrderedDict of `_rebuild_tensor_v2` calls, with memoised strings and globals. */
class Pickler {
  private readonly parts: number[] = [];
  private readonly memo = new Map<string, number>();
  private next = 0;

  private op(...bytes: number[]): void {
    this.parts.push(...bytes);
  }

  private u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }

  /** BINPUT after an object the Python pickler memoises; `key` lets a later `get` find it. */
  private put(key?: string): void {
    const index = this.next++;
    if (index > 0xff) throw new Error("pickle memo past 255 entries; LONG_BINPUT is not implemented");
    if (key !== undefined) this.memo.set(key, index);
    this.op(0x71, index);
  }

  /** BINGET of an earlier memoised object; false when it was not pickled yet. */
  private get(key: string): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    this.op(0x68, index);
    return true;
  }

  global(module: string, name: string): void {
    if (this.get(`global:${module}.${name}`)) return;
    this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, "latin1")); // GLOBAL
    this.put(`global:${module}.${name}`);
  }

  str(s: string): void {
    if (this.get(`str:${s}`)) return;
    const bytes = Buffer.from(s, "utf8");
    this.op(0x58, ...this.u32(bytes.length), ...bytes); // BINUNICODE
    this.put(`str:${s}`);
  }

  int(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`pickle int out of range: ${n}`);
    if (n < 0x100) this.op(0x4b, n); // BININT1
    else if (n < 0x10000) this.op(0x4d, n & 0xff, n >>> 8); // BININT2
    else this.op(0x4a, ...this.u32(n)); // BININT
  }

  /** A tuple of ints: TUPLE1/TUPLE2/TUPLE3 for short ones, MARK ... TUPLE otherwise; memoised. */
  intTuple(values: number[]): void {
    if (values.length > 3) this.op(0x28);
    for (const v of values) this.int(v);
    this.op(values.length > 3 ? 0x74 : [0x29, 0x85, 0x86, 0x87][values.length]);
    if (values.length > 0) this.put();
  }

  /** `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`. */
  tensor(key: string, numel: number, shape: number[]): void {
    this.global("torch._utils", "_rebuild_tensor_v2");
    this.op(0x28); // MARK: the call's arguments
    this.op(0x28); // MARK: persistent id ('storage', torch.HalfStorage, key, 'cpu', numel)
    this.str("storage");
    this.global("torch", "HalfStorage");
    this.str(key);
    this.str("cpu");
    this.int(numel);
    this.op(0x74); // TUPLE
    this.put();
    this.op(0x51); // BINPERSID
    this.int(0); // storage offset
    this.intTuple(shape);
    this.intTuple(shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1)));
    this.op(0x89); // NEWFALSE: requires_grad
    this.global("collections", "OrderedDict");
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE: no backward hooks
    this.put();
    this.op(0x74); // TUPLE
    this.put();
    this.op(0x52); // REDUCE
    this.put();
  }

  stateDict(entries: Array<[string, number[]]>): Uint8Array {
    this.op(0x80, 2); // PROTO 2
    this.global("collections", "OrderedDict");
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
    this.put();
    if (entries.length > 1) this.op(0x28); // MARK for SETITEMS
    entries.forEach(([name, shape], i) => {
      this.str(name);
      this.tensor(String(i), shape.reduce((a, b) => a * b, 1), shape);
    });
    this.op(entries.length > 1 ? 0x75 : 0x73); // SETITEMS or SETITEM
    this.op(0x2e); // STOP
    return Uint8Array.from(this.parts);
  }
}

/** PyTorch aligns every record's data to this many bytes. */
const ALIGNMENT = 64;
const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;

interface ZipEntry {
  name: Buffer;
  data: Uint8Array;
  crc: number;
  offset: number;
}

function localHeader(e: ZipEntry): Buffer {
  const dataStart = e.offset + LOCAL_HEADER + e.name.length + 4;
  const padding = (ALIGNMENT - (dataStart % ALIGNMENT)) % ALIGNMENT;
  const h = Buffer.alloc(LOCAL_HEADER + e.name.length + 4 + padding, "Z".charCodeAt(0));
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(20, 4); // version needed
  h.writeUInt32LE(0, 6); // flags 0, method 0 (stored)
  h.writeUInt32LE(0x00210000, 10); // DOS time 00:00, date 1980-01-01
  h.writeUInt32LE(e.crc, 14);
  h.writeUInt32LE(e.data.length, 18);
  h.writeUInt32LE(e.data.length, 22);
  h.writeUInt16LE(e.name.length, 26);
  h.writeUInt16LE(4 + padding, 28);
  e.name.copy(h, LOCAL_HEADER);
  h.write("FB", LOCAL_HEADER + e.name.length, "latin1");
  h.writeUInt16LE(padding, LOCAL_HEADER + e.name.length + 2);
  return h;
}

function centralHeader(e: ZipEntry): Buffer {
  const h = Buffer.alloc(CENTRAL_HEADER + e.name.length);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(20, 4); // version made by
  h.writeUInt16LE(20, 6); // version needed
  h.writeUInt32LE(0x00210000, 12); // flags 0 and method 0 at 8-11 stay zero; DOS time and date
  h.writeUInt32LE(e.crc, 16);
  h.writeUInt32LE(e.data.length, 20);
  h.writeUInt32LE(e.data.length, 24);
  h.writeUInt16LE(e.name.length, 28);
  h.writeUInt32LE(e.offset, 42);
  e.name.copy(h, CENTRAL_HEADER);
  return h;
}

/** A zip of stored entries, each entry's data 64-byte aligned. */
export function storedZip(files: Array<[string, Uint8Array]>): Buffer {
  const parts: Buffer[] = [];
  const entries: ZipEntry[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const e: ZipEntry = { name: Buffer.from(name, "utf8"), data, crc: crc32(data), offset };
    const header = localHeader(e);
    parts.push(header, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    entries.push(e);
    offset += header.length + data.length;
  }
  const central = Buffer.concat(entries.map(centralHeader));
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(central.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, central, end]);
}

/** The bytes `torch.save(state_dict, "<archiveName>.pt")` writes for float16 tensors, in order. */
export function ptBytes(archiveName: string, tensors: Array<[string, PtTensor]>): Buffer {
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
  }
  const pickle = new Pickler().stateDict(tensors.map(([name, t]) => [name, t.shape]));
  const storages = tensors.map(([, t], i): [string, Uint8Array] => {
    const bits = toFloat16Bits(t.data);
    return [`${archiveName}/data/${i}`, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength)];
  });
  const version = new TextEncoder().encode("3\n");
  return storedZip([[`${archiveName}/data.pkl`, pickle], ...storages, [`${archiveName}/version`, version]]);
}

/** Writes an nn.Linear state dict (`weight` [out, in], `bias` [out]) as float16 to `file`. */
export async function writeLinearPt(file: string, weight: PtTensor, bias: PtTensor): Promise<void> {
  const archiveName = path.basename(file, path.extname(file));
  await fs.writeFile(file, ptBytes(archiveName, [["weight", weight], ["bias", bias]]));
}
