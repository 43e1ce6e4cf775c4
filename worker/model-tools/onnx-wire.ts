/** Protobuf wire-format access to an ONNX file on disk, without decoding it. A 2 GB model
 *  decoded by protobufjs needs several times its size in memory; walking tags and lengths
 *  through a 1 MB read window needs neither the weights nor a second copy. Trades convenience
 *  for memory: callers get field positions and decode only the small messages they need.
 *  Acts at preparation time, never in the worker's hot path. */
import { open, type FileHandle } from "node:fs/promises";

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

/** One field of a message: `start` is where its tag begins, `valueStart..end` its payload
 *  (for varints, `value` holds the number). */
export interface WireField {
  field: number;
  wire: number;
  start: number;
  valueStart: number;
  end: number;
  value: number;
}

const WINDOW = 1 << 20;

export class WireFile {
  private readonly buf = Buffer.alloc(WINDOW);
  private bufStart = 0;
  private bufLength = 0;

  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<WireFile> {
    const fh = await open(path, "r");
    return new WireFile(fh, (await fh.stat()).size, path);
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  /** Bytes [start, end), copied; for small messages only. */
  async bytes(start: number, end: number): Promise<Uint8Array> {
    const out = Buffer.alloc(end - start);
    const { bytesRead } = await this.fh.read(out, 0, out.length, start);
    if (bytesRead !== out.length) throw new Error(`${this.path}: ends at ${start + bytesRead}, inside a message`);
    return out;
  }

  private async byteAt(pos: number): Promise<number> {
    if (pos < this.bufStart || pos >= this.bufStart + this.bufLength) {
      if (pos >= this.size) throw new Error(`${this.path}: truncated protobuf (read past byte ${this.size})`);
      this.bufLength = (await this.fh.read(this.buf, 0, Math.min(WINDOW, this.size - pos), pos)).bytesRead;
      this.bufStart = pos;
    }
    return this.buf[pos - this.bufStart];
  }

  private async varint(pos: number): Promise<{ value: number; next: number }> {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = await this.byteAt(pos++);
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return { value, next: pos };
    }
    throw new Error(`${this.path}: malformed varint before byte ${pos}`);
  }

  /** The fields of the message occupying [start, end), in file order. */
  async *fields(start: number, end: number): AsyncGenerator<WireField> {
    let pos = start;
    while (pos < end) {
      const tag = await this.varint(pos);
      const field = Math.floor(tag.value / 8);
      const wire = tag.value % 8;
      let valueStart = tag.next;
      let next: number;
      let value = 0;
      if (wire === WIRE.VARINT) ({ value, next } = await this.varint(valueStart));
      else if (wire === WIRE.I64) next = valueStart + 8;
      else if (wire === WIRE.I32) next = valueStart + 4;
      else if (wire === WIRE.LEN) {
        const len = await this.varint(valueStart);
        valueStart = len.next;
        next = valueStart + len.value;
      } else throw new Error(`${this.path}: unsupported wire type ${wire} at byte ${pos}`);
      if (next > end) throw new Error(`${this.path}: field ${field} at byte ${pos} runs past its message`);
      yield { field, wire, start: pos, valueStart, end: next, value };
      pos = next;
    }
  }

  async string(f: WireField): Promise<string> {
    return new TextDecoder().decode(await this.bytes(f.valueStart, f.end));
  }
}

/** Protobuf varint encoding of a non-negative integer below 2^53. */
export function encodeVarint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** A length-delimited field: tag, length, payload. */
export function lenField(field: number, payload: Uint8Array): Uint8Array {
  const head = Buffer.concat([encodeVarint(field * 8 + WIRE.LEN), encodeVarint(payload.length)]);
  return Buffer.concat([head, payload]);
}
