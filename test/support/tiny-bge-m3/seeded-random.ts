/**
 * Seeded pseudo-random numbers for the tiny BGE-M3 test model.
 *
 * Trade-off: weights are drawn from a *uniform* distribution scaled to the
 * wanted standard deviation instead of a Gaussian. Box-Muller would need
 * Math.log / Math.cos, whose last bits are not guaranteed identical across
 * JavaScript engines, and the whole point of this generator is that the same
 * seed yields byte-identical model files on every machine. Integer mixing and
 * one float multiply are exactly reproducible everywhere.
 */

/** Deterministic 32-bit generator (SplitMix32 variant). */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(
        `SeededRandom seed must be an integer in [0, 2^32 - 1], got ${seed}`,
      );
    }
    this.state = seed >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    // Weyl increment keeps the period at 2^32 even when the mix collides.
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  nextUnit(): number {
    return this.nextUint32() / 0x100000000;
  }

  /**
   * Zero-mean value with the requested standard deviation, already rounded to
   * float32 so that the stored weights and the in-memory copy agree exactly.
   */
  nextWeight(std: number): number {
    // A uniform on [-a, a] has std a / sqrt(3); sqrt is correctly rounded
    // by IEEE 754, so this stays reproducible.
    const halfWidth = std * Math.sqrt(3);
    return Math.fround((this.nextUnit() * 2 - 1) * halfWidth);
  }

  /** Fill a new float32 array with zero-mean weights. */
  weights(count: number, std: number): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.nextWeight(std);
    return out;
  }

  /** Float32 array of values around `centre` (used for LayerNorm gains). */
  weightsAround(count: number, centre: number, std: number): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = Math.fround(centre + this.nextWeight(std));
    return out;
  }
}

/**
 * Derive an independent stream per named tensor, so adding a tensor later
 * does not shift the values of every tensor drawn after it.
 */
export function streamFor(seed: number, tensorName: string): SeededRandom {
  // FNV-1a over the name, folded with the seed.
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < tensorName.length; i++) {
    h ^= tensorName.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return new SeededRandom(h >>> 0);
}
