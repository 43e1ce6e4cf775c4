/*
 * Seeded pseudo-random numbers for deterministic test-model weights.
 *
 * mulberry32 is tiny, fast and fully specified, so the same seed yields the
 * same weights on every platform and Node version; Box-Muller turns its
 * uniforms into normals. Trade-off: statistical quality is far below a
 * cryptographic or PCG-class generator, which is irrelevant for weights whose
 * only job is to be non-degenerate and reproducible.
 */

/** Returns a generator of uniforms in [0, 1) from a 32-bit seed (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 32-bit FNV-1a of a string mixed with a seed. Gives each weight tensor its
 * own stream, so adding a layer or an output head does not shift the values
 * of every tensor generated after it.
 */
export function deriveSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // One extra avalanche round so nearby seeds give unrelated streams.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** Fills `out` with N(mean, std^2) samples using Box-Muller pairs. */
export function fillNormal(out: Float32Array, seed: number, std: number, mean = 0): Float32Array {
  const next = mulberry32(seed);
  const twoPi = 2 * Math.PI;
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    // 1 - u keeps the argument of log strictly positive.
    const r = Math.sqrt(-2 * Math.log(1 - next())) * std;
    const theta = twoPi * next();
    out[i] = mean + r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = mean + r * Math.sin(theta);
  }
  return out;
}

/** Fills `out` with uniforms in [lo, hi). */
export function fillUniform(out: Float32Array, seed: number, lo: number, hi: number): Float32Array {
  const next = mulberry32(seed);
  const span = hi - lo;
  for (let i = 0; i < out.length; i++) out[i] = lo + span * next();
  return out;
}
