/** A pickle reader for PyTorch state dicts that runs no code. Python's pickle calls whatever
 *  callable a file names; this one knows the handful a state dict uses (OrderedDict, the
 *  tensor and parameter rebuild functions, three storage classes) and refuses any other
 *  GLOBAL/STACK_GLOBAL by name the moment it is read, before a REDUCE could call it. Trades
 *  generality for safety: opcodes a state dict never needs (object construction, INST,
 *  extension registry) are refused too. Acts once per `.pt` file; inputs are a few KB. */
import { PtFormatError, UnsafePickleError } from "./model-tool-errors.js";

export type StorageDtype = "float16" | "float32" | "bfloat16";

const STORAGE_CLASSES: Record<string, StorageDtype> = {
  "torch.HalfStorage": "float16",
  "torch.FloatStorage": "float32",
  "torch.BFloat16Storage": "bfloat16",
};
const CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
]);

/** A storage the pickle refers to by persistent id: raw bytes live in the zip as data/<key>. */
export interface StorageRef {
  kind: "storage";
  dtype: StorageDtype;
  key: string;
  numel: number;
}
/** A tensor view over a storage, as `_rebuild_tensor_v2` describes it (offsets in elements). */
export interface TensorRef {
  kind: "tensor";
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

interface GlobalRef {
  kind: "global";
  name: string;
}
type Value =
  null | boolean | number | bigint | string | Value[] | Map<Value, Value> | GlobalRef | StorageRef | TensorRef;
const MARK = Symbol("mark");
type Slot = Value | typeof MARK;

class Reader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly fail: (msg: string) => never,
  ) {}
  u8(): number {
    if (this.pos >= this.buf.length) this.fail("pickle ends before STOP");
    return this.buf[this.pos++];
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) this.fail("pickle ends inside a value");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  uint(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v += this.u8() * 2 ** (8 * i);
    return v;
  }
  int32(): number {
    const v = this.uint(4);
    return v >= 2 ** 31 ? v - 2 ** 32 : v;
  }
  line(): string {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0) this.fail("unterminated GLOBAL");
    const s = new TextDecoder().decode(this.buf.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  utf8(n: number): string {
    return new TextDecoder().decode(this.bytes(n));
  }
}

/** Little-endian two's-complement LONG1 payload. */
function long1(b: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Unpickles `data` (a state dict's data.pkl); `file` names the source in errors. */
export function unpickleStateDict(data: Uint8Array, file: string): Value {
  const fail = (msg: string): never => {
    throw new PtFormatError(file, msg);
  };
  const r = new Reader(data, fail);
  const vm = new Machine(file, fail);
  for (;;) {
    const op = r.u8();
    if (op === 0x2e) return vm.finish(); // STOP
    vm.step(op, r);
  }
}

class Machine {
  private readonly stack: Slot[] = [];
  private readonly memo = new Map<number, Value>();
  constructor(
    private readonly file: string,
    private readonly fail: (msg: string) => never,
  ) {}

  finish(): Value {
    if (this.stack.length !== 1) this.fail(`STOP with ${this.stack.length} values on the stack`);
    return this.pop();
  }

  private pop(): Value {
    const v = this.stack.pop();
    if (v === undefined) this.fail("stack underflow");
    if (v === MARK) this.fail("unexpected MARK");
    return v as Value;
  }
  private top(): Value {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail("stack underflow");
    return v as Value;
  }
  private popMark(): Value[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) this.fail("no MARK on the stack");
    return this.stack.splice(i).slice(1) as Value[];
  }
  private global(module: string, name: string): GlobalRef {
    const full = `${module}.${name}`;
    if (!CALLABLES.has(full) && !(full in STORAGE_CLASSES)) throw new UnsafePickleError(this.file, full);
    return { kind: "global", name: full };
  }
  private dict(v: Value): Map<Value, Value> {
    if (!(v instanceof Map)) this.fail("SETITEM(S) on something that is not a dict");
    return v as Map<Value, Value>;
  }

  step(op: number, r: Reader): void {
    const s = this.stack;
    switch (op) {
      case 0x80:
        r.u8();
        return; // PROTO
      case 0x95:
        r.bytes(8);
        return; // FRAME
      case 0x28:
        s.push(MARK);
        return; // MARK
      case 0x7d:
      case 0x64: // EMPTY_DICT, DICT
        s.push(op === 0x64 ? this.pairs(new Map(), this.popMark()) : new Map());
        return;
      case 0x5d:
        s.push([]);
        return; // EMPTY_LIST
      case 0x6c:
        s.push(this.popMark());
        return; // LIST
      case 0x29:
        s.push([]);
        return; // EMPTY_TUPLE
      case 0x74:
        s.push(this.popMark());
        return; // TUPLE
      case 0x85:
        s.push([this.pop()]);
        return; // TUPLE1
      case 0x86: {
        const b = this.pop();
        s.push([this.pop(), b]);
        return;
      }
      case 0x87: {
        const c = this.pop();
        const b = this.pop();
        s.push([this.pop(), b, c]);
        return;
      }
      case 0x58:
        s.push(r.utf8(r.uint(4)));
        return; // BINUNICODE
      case 0x8c:
        s.push(r.utf8(r.u8()));
        return; // SHORT_BINUNICODE
      case 0x8d:
        s.push(r.utf8(r.uint(8)));
        return; // BINUNICODE8
      case 0x71:
        this.memo.set(r.u8(), this.top());
        return; // BINPUT
      case 0x72:
        this.memo.set(r.uint(4), this.top());
        return; // LONG_BINPUT
      case 0x94:
        this.memo.set(this.memo.size, this.top());
        return; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const k = op === 0x68 ? r.u8() : r.uint(4);
        if (!this.memo.has(k)) this.fail(`memo ${k} read before it was written`);
        s.push(this.memo.get(k) as Value);
        return;
      }
      case 0x63: {
        const module = r.line();
        s.push(this.global(module, r.line()));
        return;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== "string" || typeof name !== "string") this.fail("STACK_GLOBAL without two strings");
        s.push(this.global(module as string, name as string));
        return;
      }
      case 0x52: {
        const args = this.pop();
        s.push(this.reduce(this.pop(), args));
        return;
      } // REDUCE
      case 0x51:
        s.push(this.persistent(this.pop()));
        return; // BINPERSID
      case 0x4a:
        s.push(r.int32());
        return; // BININT
      case 0x4b:
        s.push(r.u8());
        return; // BININT1
      case 0x4d:
        s.push(r.uint(2));
        return; // BININT2
      case 0x8a:
        s.push(long1(r.bytes(r.u8())));
        return; // LONG1
      case 0x47:
        s.push(new DataView(r.bytes(8).slice().buffer).getFloat64(0, false));
        return; // BINFLOAT
      case 0x88:
        s.push(true);
        return;
      case 0x89:
        s.push(false);
        return;
      case 0x4e:
        s.push(null);
        return; // NONE
      case 0x73: {
        const v = this.pop();
        const k = this.pop();
        this.dict(this.top()).set(k, v);
        return;
      } // SETITEM
      case 0x75: {
        const items = this.popMark();
        this.pairs(this.dict(this.top()), items);
        return;
      } // SETITEMS
      case 0x61: {
        const v = this.pop();
        this.list(this.top()).push(v);
        return;
      } // APPEND
      case 0x65: {
        const items = this.popMark();
        this.list(this.top()).push(...items);
        return;
      } // APPENDS
      case 0x62:
        this.build(this.pop());
        return; // BUILD
      default:
        this.fail(`opcode 0x${op.toString(16)} at byte ${r.pos - 1} is not used by state dicts`);
    }
  }

  private pairs(d: Map<Value, Value>, items: Value[]): Map<Value, Value> {
    if (items.length % 2 !== 0) this.fail("odd number of dict items");
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
    return d;
  }
  private list(v: Value): Value[] {
    if (!Array.isArray(v)) this.fail("APPEND on something that is not a list");
    return v as Value[];
  }
  /** BUILD on an OrderedDict sets attributes such as `_metadata`; a state dict needs none of them. */
  private build(state: Value): void {
    if (!(this.top() instanceof Map) || !(state instanceof Map || state === null)) this.fail("BUILD on an object");
  }

  private persistent(pid: Value): StorageRef {
    // ('storage', storage class, key, location, numel)
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) this.fail("persistent id is not a storage");
    const [, cls, key, , numel] = pid as Value[];
    const dtype = isGlobal(cls) ? STORAGE_CLASSES[cls.name] : undefined;
    if (!dtype) this.fail(`storage class ${isGlobal(cls) ? cls.name : String(cls)} is not a float storage`);
    if (typeof key !== "string" || typeof numel !== "number") this.fail("storage key or size malformed");
    return { kind: "storage", dtype: dtype as StorageDtype, key: key as string, numel: numel as number };
  }

  private reduce(fn: Value, args: Value): Value {
    if (!isGlobal(fn) || !CALLABLES.has(fn.name)) this.fail(`REDUCE on ${isGlobal(fn) ? fn.name : "a non-callable"}`);
    if (!Array.isArray(args)) this.fail("REDUCE arguments are not a tuple");
    const a = args as Value[];
    const name = (fn as GlobalRef).name;
    if (name === "collections.OrderedDict") {
      if (a.length !== 0) this.fail("OrderedDict with constructor arguments");
      return new Map();
    }
    if (name === "torch._utils._rebuild_parameter") {
      if (!isTensor(a[0])) this.fail("_rebuild_parameter without a tensor");
      return a[0];
    }
    const [storage, offset, shape, stride] = a;
    const ints = (v: Value) => Array.isArray(v) && v.every((x) => typeof x === "number");
    if (!isStorage(storage) || typeof offset !== "number" || !ints(shape) || !ints(stride)) {
      this.fail("_rebuild_tensor_v2 arguments malformed");
    }
    return {
      kind: "tensor",
      storage: storage as StorageRef,
      offset: offset as number,
      shape: shape as number[],
      stride: stride as number[],
    };
  }
}

function isGlobal(v: Value | undefined): v is GlobalRef {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) && v.kind === "global";
}
function isStorage(v: Value | undefined): v is StorageRef {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) && v.kind === "storage";
}
export function isTensor(v: unknown): v is TensorRef {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Map) &&
    (v as { kind?: unknown }).kind === "tensor"
  );
}
