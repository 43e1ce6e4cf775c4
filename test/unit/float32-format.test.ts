/** The shortest round-trip float32 formatter against a slow reference that tries the
 *  decimals of 1..9 digits next to each value in order: every output reads back (via Math.fround) to the same float32
 *  and is exactly the reference's string, hence no longer than needed. Covered: hand-picked
 *  edges, every binary exponent (subnormals included) with random mantissas, whole runs of
 *  consecutive bit patterns at the subnormal, normal and powers-of-two edges, a large seeded
 *  random sample of all bit patterns, and fast-check's float32 generator. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { formatFloat32, writeFloat32, writeUint } from "../../worker/core/float32-format.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (bits: number) => ((u32[0] = bits >>> 0), f32[0]);
const buf = new Uint8Array(32);
const decoder = new TextDecoder();
const written = (x: number) => decoder.decode(buf.subarray(0, writeFloat32(buf, 0, x)));

/** The slow definition: for p = 1..9 digits, the p-digit decimals next to x (x.toExponential
 *  rounded, and one unit either side: just above a power of two the nearest may fall in the
 *  narrower lower half of the interval while the next one up still reads back); the nearest of
 *  those that read back, at the smallest p, in JavaScript's layout. */
function reference(x: number): string {
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  for (let p = 1; p <= 9; p++) {
    const [mantissa, exp] = x.toExponential(p - 1).split("e");
    const m = Number(mantissa.replace(".", ""));
    const e = Number(exp) - (p - 1);
    const fits = [m, m - 1, m + 1] // m first: on a tie the stable sort keeps it, JavaScript's half-up choice
      .map((c) => Number(`${c}e${e}`))
      .filter((n) => Math.fround(n) === x)
      .sort((a, b) => Math.abs(a - x) - Math.abs(b - x));
    if (fits.length > 0) return String(fits[0]);
  }
  throw new Error(`no round trip for ${x}`);
}

/** Checks one value; returns a description of the failure, or undefined. */
function problem(x: number): string | undefined {
  const s = formatFloat32(x);
  const b = written(x);
  if (s !== b) return `${x}: string "${s}" but bytes "${b}"`;
  if (!Object.is(Math.fround(Number(s)), x)) return `${x}: "${s}" reads back as ${Math.fround(Number(s))}`;
  const r = reference(x);
  if (s !== r) return `${x}: "${s}", the reference gives "${r}"`;
  return undefined;
}

function checkAll(values: Iterable<number>): void {
  const failures: string[] = [];
  let n = 0;
  for (const x of values) {
    n++;
    const p = problem(x);
    if (p && failures.push(p) >= 10) break;
  }
  assert.deepEqual(failures, [], `${failures.length} failures among ${n} values`);
}

/** A seeded 32-bit generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

test("hand-picked values: shortest, JavaScript's layout, signed zeros", () => {
  const cases: Array<[number, string]> = [
    [0.1, "0.1"],
    [1 / 3, "0.33333334"],
    [0, "0"],
    [-0, "-0"],
    [1, "1"],
    [-2.5, "-2.5"],
    [16777216, "16777216"],
    [16777217, "16777216"],
    [123456789, "123456790"],
    [1e-7, "1e-7"],
    [1.5e-7, "1.5e-7"],
    [0.000001, "0.000001"],
    [1e21, "1e+21"],
    [1e20, "100000000000000000000"],
    [1.401298464324817e-45, "1e-45"],
    [1.1754943508222875e-38, "1.1754944e-38"],
    [3.4028234663852886e38, "3.4028235e+38"],
    [-3.4028234663852886e38, "-3.4028235e+38"],
  ];
  for (const [input, want] of cases) {
    const x = Math.fround(input);
    assert.equal(formatFloat32(x), want, `formatFloat32(${x})`);
    assert.equal(written(x), want, `writeFloat32(${x})`);
    assert.equal(problem(x), undefined);
  }
});

test("non-finite values and doubles that are not float32 are refused clearly", () => {
  for (const x of [NaN, Infinity, -Infinity]) {
    assert.throws(() => formatFloat32(x), /non-finite vectors must be refused/);
    assert.throws(() => writeFloat32(buf, 0, x), /non-finite vectors must be refused/);
  }
  assert.throws(() => formatFloat32(0.1), /is not a float32 value/);
  assert.throws(() => writeFloat32(buf, 0, 1e39), /is not a float32 value/);
});

test("every binary exponent, subnormals included, with random mantissas of both signs", () => {
  const next = random(15);
  function* values() {
    for (let biased = 0; biased < 255; biased++) {
      for (let i = 0; i < 200; i++) {
        const bits = (biased << 23) | (next() & 0x7fffff) | (i & 1 ? 0x80000000 : 0);
        yield fromBits(bits);
      }
    }
  }
  checkAll(values());
});

test("runs of consecutive bit patterns: subnormal start, subnormal/normal seam, powers of two, the top", () => {
  function* values() {
    const runs: Array<[number, number]> = [
      [0x00000001, 10000], // smallest subnormals
      [0x007fc000, 0x8000], // up to and past the smallest normal
      [0x7f7fc000, 0x3fff], // the largest finite values
    ];
    for (let biased = 1; biased < 255; biased++) runs.push([(biased << 23) - 40, 80]); // around every power of two
    for (const [start, count] of runs) for (let b = start; b < start + count; b++) yield fromBits(b);
  }
  checkAll(values());
});

test("a large seeded random sample of all float32 bit patterns", () => {
  const next = random(2026);
  function* values() {
    for (let i = 0; i < 200_000;) {
      const x = fromBits(next());
      if (Number.isFinite(x)) {
        i++;
        yield x;
      }
    }
  }
  checkAll(values());
});

test("values of unit-norm vectors (|x| < 1) and fast-check's float32 generator", () => {
  const next = random(7);
  function* small() {
    for (let i = 0; i < 100_000; i++) yield Math.fround(((next() / 2 ** 32) * 2 - 1) / 16);
  }
  checkAll(small());
  fc.assert(
    fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => problem(x) === undefined),
    { numRuns: 10_000 },
  );
});

test("writeUint writes unsigned integers as JSON does", () => {
  for (const v of [0, 7, 10, 99, 100, 250001, 4294967295]) {
    const end = writeUint(buf, 0, v);
    assert.equal(decoder.decode(buf.subarray(0, end)), String(v));
  }
});
