/*
 * Writes a PyTorch state dict of float16 tensors as `torch.save` does, without Python.
 *
 * BGE-M3 ships its heads as `sparse_linear.pt` and `colbert_linear.pt`: `torch.save` of an
 * `nn.Linear` state dict (an OrderedDict of `weight` [out, in] and `bias` [out], float16),
 * which is a zip of `<name>/data.pkl` (pickle protocol 2), one raw little-endian file per
 * tensor storage (`<name>/data/0`, ...) and `<name>/version`. The archive folder is the file
 * name without its extension, as torch.save writes when given a path. Entries are stored
 * (not deflated), their data start on 64-byte boundaries (padded with an "FB" extra field)
 * and are followed by data descriptors, with zip64 end records, as PyTorch's own zip writer
 * (miniz) does: byte for byte what torch 1.13 writes for such a dict. Tests use these files
 * to exercise the `.pt` reader and `prepare-model` against backbone-only layouts. Trade-off:
 * only float16 tensors and the opcodes torch 1.13 emits for such a dict; no compression, and
 * no zip64 sizes or offsets (entries past 4 GiB), which heads never need.
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
    if (n < 0x100)
      this.op(0x4b, n); // BININT1
    else if (n < 0x10000)
      this.op(0x4d, n & 0xff, n >>> 8); // BININT2
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

  /** `entries` are (key, shape) in order; storages are keyed "0", "1", ... in the same order. */
  stateDict(entries: Array<[string, number[]]>, moduleMetadata: boolean): Uint8Array {
    this.op(0x80, 2); // PROTO 2
    this.global("collections", "OrderedDict");
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
    this.put();
    if (entries.length > 1) this.op(0x28); // MARK for SETITEMS
    entries.forEach(([name, shape], i) => {
      this.str(name);
      this.tensor(
        String(i),
        shape.reduce((a, b) => a * b, 1),
        shape,
      );
    });
    this.op(entries.length > 1 ? 0x75 : 0x73); // SETITEMS or SETITEM
    if (moduleMetadata) this.metadata();
    this.op(0x2e); // STOP
    return Uint8Array.from(this.parts);
  }

  /** BUILD with `{'_metadata': OrderedDict([('', {'version': 1})])}`, which `module.state_dict()` attaches. */
  private metadata(): void {
    this.op(0x7d); // EMPTY_DICT
    this.put();
    this.str("_metadata");
    this.global("collections", "OrderedDict");
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
    this.put();
    this.str("");
    this.op(0x7d); // EMPTY_DICT
    this.put();
    this.str("version");
    this.int(1);
    this.op(0x73, 0x73, 0x73, 0x62); // SETITEM x3, BUILD
  }
}

/** PyTorch aligns every record's data to this many bytes. */
const ALIGNMENT = 64;
const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const DATA_DESCRIPTOR = 16;
/** Bit 3 (sizes and CRC in a data descriptor after the data) and bit 11 (UTF-8 names), as miniz sets them. */
const FLAGS = 0x0808;

interface ZipEntry {
  name: Buffer;
  data: Uint8Array;
  crc: number;
  offset: number;
}

/** Local header with zero CRC and sizes (they follow in the data descriptor) and the "FB" padding extra field. */
function localHeader(e: ZipEntry): Buffer {
  const dataStart = e.offset + LOCAL_HEADER + e.name.length + 4;
  const padding = (ALIGNMENT - (dataStart % ALIGNMENT)) % ALIGNMENT;
  const h = Buffer.alloc(LOCAL_HEADER + e.name.length + 4 + padding, "Z".charCodeAt(0));
  h.fill(0, 0, LOCAL_HEADER);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(FLAGS, 6);
  h.writeUInt16LE(e.name.length, 26);
  h.writeUInt16LE(4 + padding, 28);
  e.name.copy(h, LOCAL_HEADER);
  h.write("FB", LOCAL_HEADER + e.name.length, "latin1");
  h.writeUInt16LE(padding, LOCAL_HEADER + e.name.length + 2);
  return h;
}

function dataDescriptor(e: ZipEntry): Buffer {
  const d = Buffer.alloc(DATA_DESCRIPTOR);
  d.writeUInt32LE(0x08074b50, 0);
  d.writeUInt32LE(e.crc, 4);
  d.writeUInt32LE(e.data.length, 8);
  d.writeUInt32LE(e.data.length, 12);
  return d;
}

/** Central header: versions, times and attributes zero, no extra field, as PyTorch's miniz writes them. */
function centralHeader(e: ZipEntry): Buffer {
  const h = Buffer.alloc(CENTRAL_HEADER + e.name.length);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(FLAGS, 8);
  h.writeUInt32LE(e.crc, 16);
  h.writeUInt32LE(e.data.length, 20);
  h.writeUInt32LE(e.data.length, 24);
  h.writeUInt16LE(e.name.length, 28);
  h.writeUInt32LE(e.offset, 42);
  e.name.copy(h, CENTRAL_HEADER);
  return h;
}

/** Zip64 end record and locator, then the classic end record: miniz writes all three. */
function endRecords(count: number, centralOffset: number, centralSize: number): Buffer {
  const z64 = Buffer.alloc(56);
  z64.writeUInt32LE(0x06064b50, 0);
  z64.writeBigUInt64LE(44n, 4); // size of the rest of the record
  z64.writeUInt16LE(0x031e, 12); // made by: Unix, 3.0
  z64.writeUInt16LE(45, 14); // needed: 4.5 (zip64)
  z64.writeBigUInt64LE(BigInt(count), 24);
  z64.writeBigUInt64LE(BigInt(count), 32);
  z64.writeBigUInt64LE(BigInt(centralSize), 40);
  z64.writeBigUInt64LE(BigInt(centralOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(centralOffset + centralSize), 8);
  locator.writeUInt32LE(1, 16); // total disks
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([z64, locator, end]);
}

/** A zip of stored entries laid out as PyTorch's zip writer lays them out (each entry's data 64-byte aligned). */
export function storedZip(files: Array<[string, Uint8Array]>): Buffer {
  const parts: Buffer[] = [];
  const entries: ZipEntry[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const e: ZipEntry = { name: Buffer.from(name, "utf8"), data, crc: crc32(data), offset };
    const header = localHeader(e);
    parts.push(header, Buffer.from(data.buffer, data.byteOffset, data.byteLength), dataDescriptor(e));
    entries.push(e);
    offset += header.length + data.length + DATA_DESCRIPTOR;
  }
  const central = Buffer.concat(entries.map(centralHeader));
  return Buffer.concat([...parts, central, endRecords(entries.length, offset, central.length)]);
}

export interface PtOptions {
  /** The folder inside the zip; torch.save names it after the file (without extension). */
  archiveName: string;
  /**
   * Attach `_metadata` as `module.state_dict()` does. FlagEmbedding saves its heads through a
   * copy (`type(sd)({k: v.clone().cpu() ...})`) that drops it, so BGE-M3's files lack it.
   */
  moduleMetadata?: boolean;
}

/** The bytes `torch.save(state_dict, "<archiveName>.pt")` (torch 1.13) writes for float16 tensors, in order. */
export function ptBytes(tensors: Array<[string, PtTensor]>, opts: PtOptions): Buffer {
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
  }
  const pickle = new Pickler().stateDict(
    tensors.map(([name, t]) => [name, t.shape]),
    opts.moduleMetadata ?? false,
  );
  const dir = opts.archiveName;
  const storages = tensors.map(([, t], i): [string, Uint8Array] => {
    const bits = toFloat16Bits(t.data);
    return [`${dir}/data/${i}`, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength)];
  });
  const version = new TextEncoder().encode("3\n");
  return storedZip([[`${dir}/data.pkl`, pickle], ...storages, [`${dir}/version`, version]]);
}

/** Writes an nn.Linear state dict (`weight` [out, in], `bias` [out]) as float16 to `file`, as FlagEmbedding
 *  saves its heads. */
export async function writeLinearPt(file: string, weight: PtTensor, bias: PtTensor): Promise<void> {
  const archiveName = path.basename(file, path.extname(file));
  await fs.writeFile(
    file,
    ptBytes(
      [
        ["weight", weight],
        ["bias", bias],
      ],
      { archiveName },
    ),
  );
}
