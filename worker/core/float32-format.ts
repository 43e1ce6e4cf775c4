/** Shortest round-trip decimal for float32 values: the fewest significant digits whose
 *  `Math.fround(Number(s))` is the same float32 (0.1f gives "0.1", where `String` on the widened
 *  double gives "0.10000000149011612"). Used to write vectors as JSON in the model thread
 *  (issue 15): a 1024-d vector takes about half the bytes of `JSON.stringify` on the same values,
 *  and Qdrant, which stores float32, reads back exactly the same vector. No npm package does
 *  float32 shortest formatting, so this is hand-written.
 *
 *  How: the float32 `x` is exactly a double, and so are the bounds `lo`, `hi` of the doubles
 *  that round to it (a float32 mantissa plus one bit). Scaled by a power of ten into
 *  [1e8, 1e9) they are computed with a relative error under 3e-16, i.e. under 3e-7 in units of
 *  the ninth digit, while the interval is at least 3 such units wide. For k = 1..9 digits the
 *  multiples of 10^(9-k) inside the interval widened by EPS are candidates; the one nearest `x`
 *  wins. A candidate within 2·EPS of a bound (a bound that is itself a short decimal, ties to
 *  even) is checked by parsing it back, the definition itself, so no rounding error can make
 *  the output wrong or longer than needed. Output follows ECMAScript's Number-to-String layout
 *  (fixed for 1e-7 <= |x| < 1e21, else exponent), which is also valid JSON. Pure, no allocation
 *  on the byte path. */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

const POW10_BIAS = 64;
/** POW10[i + 64] = 10^i, correctly rounded (parsed, not computed). */
const POW10: number[] = Array.from({ length: 2 * POW10_BIAS + 1 }, (_, i) => Number(`1e${i - POW10_BIAS}`));
const POW2_BIAS = 160;
/** POW2[i + 160] = 2^i, exact. */
const POW2: number[] = Array.from({ length: 2 * POW2_BIAS + 1 }, (_, i) => {
  let v = 1;
  for (let n = i - POW2_BIAS; n > 0; n--) v *= 2;
  for (let n = i - POW2_BIAS; n < 0; n++) v /= 2;
  return v;
});
/** Margin over the bound on the scaled values' rounding error (3e-7 units of the ninth digit). */
const EPS = 1e-6;

/** Result of `shortest`: |x| = digits × 10^exponent, digits without trailing zeros. */
let outDigits = 0;
let outExponent = 0;

function notFloat32(x: number): never {
  if (!Number.isFinite(x)) {
    throw new RangeError(`cannot write ${x} as a JSON number; non-finite vectors must be refused before this`);
  }
  throw new RangeError(`${x} is not a float32 value (Math.fround(x) !== x)`);
}

/** Sets outDigits/outExponent for a positive finite float32 `a`. */
function shortest(a: number): void {
  f32[0] = a;
  const bits = u32[0];
  const biased = bits >>> 23;
  const mant = bits & 0x7fffff;
  const m = biased === 0 ? mant : mant | 0x800000;
  const e = biased === 0 ? -149 : biased - 150;
  const halfUlp = POW2[e - 1 + POW2_BIAS];
  const hi = (2 * m + 1) * halfUlp;
  // Just above a power of two the float32 spacing below is half the spacing above.
  const lo = mant === 0 && biased > 1 ? (4 * m - 1) * POW2[e - 2 + POW2_BIAS] : (2 * m - 1) * halfUlp;
  // floor(log10(a)) from the binary exponent (off by at most one, corrected below).
  let e10 = biased === 0 ? Math.floor(Math.log10(a)) : Math.floor((biased - 127) * 0.30102999566398114);
  let scale = POW10[8 - e10 + POW10_BIAS];
  let x9 = a * scale;
  if (x9 >= 1e9) scale = POW10[8 - ++e10 + POW10_BIAS];
  else if (x9 < 1e8) scale = POW10[8 - --e10 + POW10_BIAS];
  x9 = a * scale;
  const lo9 = lo * scale - EPS;
  const hi9 = hi * scale + EPS;
  // The fewest digits k with a multiple of 10^(9-k) in the widened interval: if k digits fit,
  // so do k+1, so step down from 9 while they fit (usually one or two steps).
  let k = 9;
  // Multiplying by 10^-n (rounded) instead of dividing by 10^n doubles the rounding error of
  // these quotients (to 2.2e-16 relative), still several times under the margin EPS leaves.
  while (k > 1) {
    const inv = POW10[k - 10 + POW10_BIAS];
    if (Math.ceil(lo9 * inv) > Math.floor(hi9 * inv)) break;
    k--;
  }
  for (; k <= 9; k++) {
    const unit = POW10[9 - k + POW10_BIAS];
    const inv = POW10[k - 9 + POW10_BIAS];
    const cLo = Math.ceil(lo9 * inv);
    const cHi = Math.floor(hi9 * inv);
    if (cLo > cHi) continue;
    let c = Math.round(x9 * inv);
    if (c < cLo) c = cLo;
    else if (c > cHi) c = cHi;
    if (accept(a, c, unit, lo9, hi9, e10 + 1 - k)) return;
    // c sat on a bound and was outside: the next one inward, if any, is well inside.
    const inward = c === cLo ? c + 1 : c - 1;
    if (inward >= cLo && inward <= cHi && accept(a, inward, unit, lo9, hi9, e10 + 1 - k)) return;
  }
  throw new Error(`no decimal of at most 9 digits found for float32 ${a}; this is a bug`);
}

function accept(a: number, c: number, unit: number, lo9: number, hi9: number, exponent: number): boolean {
  let digits = c | 0;
  let exp = exponent;
  while (digits % 10 === 0) {
    digits = (digits / 10) | 0;
    exp++;
  }
  outDigits = digits;
  outExponent = exp;
  const v = c * unit;
  if (v - lo9 > 3 * EPS && hi9 - v > 3 * EPS) return true;
  return Math.fround(Number(layout(digits, exp))) === a;
}

/** ECMAScript Number::toString layout of digits × 10^exp (digits > 0, no trailing zeros). */
function layout(digits: number, exp: number): string {
  const s = String(digits);
  const k = s.length;
  const n = exp + k;
  if (k <= n && n <= 21) return s + "0".repeat(n - k);
  if (0 < n && n <= 21) return `${s.slice(0, n)}.${s.slice(n)}`;
  if (-6 < n && n <= 0) return `0.${"0".repeat(-n)}${s}`;
  const e = n - 1;
  return `${s[0]}${k > 1 ? "." + s.slice(1) : ""}e${e < 0 ? "-" : "+"}${Math.abs(e)}`;
}

/** The shortest decimal string that reads back to the float32 `x`; "-0" for negative zero.
 *  Throws a RangeError for NaN, ±Infinity or a value that is not a float32. */
export function formatFloat32(x: number): string {
  if (Math.fround(x) !== x || !Number.isFinite(x)) notFloat32(x);
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  shortest(x < 0 ? -x : x);
  return (x < 0 ? "-" : "") + layout(outDigits, outExponent);
}

const DIGITS = new Uint8Array(10);
const ZERO = 48;
const DOT = 46;
const MINUS = 45;

/** Writes the unsigned integer `v` (< 2^53) at `pos`; returns the position after it. */
export function writeUint(buf: Uint8Array, pos: number, v: number): number {
  if (v < 10) {
    buf[pos] = ZERO + v;
    return pos + 1;
  }
  let n = 0;
  while (v > 0) {
    const q = Math.floor(v / 10);
    DIGITS[n++] = ZERO + (v - q * 10);
    v = q;
  }
  while (n > 0) buf[pos++] = DIGITS[--n];
  return pos;
}

/** Writes `formatFloat32(x)` as ASCII at `pos` (at most 15 bytes); returns the position after it. */
export function writeFloat32(buf: Uint8Array, pos: number, x: number): number {
  if (Math.fround(x) !== x || !Number.isFinite(x)) notFloat32(x);
  if (x === 0) {
    if (Object.is(x, -0)) buf[pos++] = MINUS;
    buf[pos] = ZERO;
    return pos + 1;
  }
  if (x < 0) {
    buf[pos++] = MINUS;
    x = -x;
  }
  shortest(x);
  // outDigits < 2^31 (at most 9 digits, rounded up at most to 10^9): int32 arithmetic is exact.
  let v = outDigits | 0;
  let k = 0;
  while (v > 0) {
    const q = (v / 10) | 0;
    DIGITS[k++] = ZERO + (v - q * 10);
    v = q;
  }
  // DIGITS holds the k digits in reverse order.
  const n = outExponent + k;
  if (k <= n && n <= 21) {
    for (let i = k - 1; i >= 0; i--) buf[pos++] = DIGITS[i];
    for (let z = k; z < n; z++) buf[pos++] = ZERO;
    return pos;
  }
  if (0 < n && n <= 21) {
    for (let i = 0; i < n; i++) buf[pos++] = DIGITS[k - 1 - i];
    buf[pos++] = DOT;
    for (let i = n; i < k; i++) buf[pos++] = DIGITS[k - 1 - i];
    return pos;
  }
  if (-6 < n && n <= 0) {
    buf[pos++] = ZERO;
    buf[pos++] = DOT;
    for (let z = n; z < 0; z++) buf[pos++] = ZERO;
    while (k > 0) buf[pos++] = DIGITS[--k];
    return pos;
  }
  buf[pos++] = DIGITS[k - 1];
  if (k > 1) {
    buf[pos++] = DOT;
    for (let i = k - 2; i >= 0; i--) buf[pos++] = DIGITS[i];
  }
  buf[pos++] = 101; // e
  const e = n - 1;
  buf[pos++] = e < 0 ? MINUS : 43; // - or +
  return writeUint(buf, pos, e < 0 ? -e : e);
}
