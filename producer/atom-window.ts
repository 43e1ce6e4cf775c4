/**
 * A sliding window over a lazy stream of atoms, addressed by absolute index
 * the way the chunker addresses an array. Trades a little bookkeeping for
 * memory bounded by the chunk being built (plus its overlap) instead of by
 * the document: the chunker `release`s atoms once no later chunk can start
 * before them (issue 13: one multi-MiB cue held millions of atoms at once).
 * Pulls from the source only when an index past the window is asked for.
 */
import assert from "node:assert/strict";
import type { Atom } from "./chunk-atoms.js";

export class AtomWindow {
  private atoms: Atom[] = [];
  /** Absolute index of `atoms[0]`. */
  private base = 0;
  private exhausted = false;

  constructor(private readonly source: Iterator<Atom>) {}

  /** True when atom `i` exists; reads ahead from the source as far as `i`. */
  has(i: number): boolean {
    while (!this.exhausted && i >= this.base + this.atoms.length) {
      const next = this.source.next();
      if (next.done) this.exhausted = true;
      else this.atoms.push(next.value);
    }
    return i < this.base + this.atoms.length;
  }

  /** Atom `i`, which must exist and not have been released. */
  at(i: number): Atom {
    assert.ok(i >= this.base && this.has(i), `atom ${i} outside the window [${this.base}, …); this is a bug`);
    return this.atoms[i - this.base];
  }

  /** Forgets the atoms before `i`: no caller reads them again. */
  release(i: number): void {
    if (i <= this.base) return;
    assert.ok(i <= this.base + this.atoms.length, `release(${i}) past the atoms read; this is a bug`);
    this.atoms = this.atoms.slice(i - this.base);
    this.base = i;
  }

  /** Sum of the per-atom counts of [from, to). */
  tokens(from: number, to: number): number {
    let sum = 0;
    for (let i = from; i < to; i++) sum += this.at(i).tokens;
    return sum;
  }

  /** Text of atoms [from, to), joined with each atom's separator (the first atom's is dropped). */
  join(from: number, to: number): string {
    let text = "";
    for (let i = from; i < to; i++) text += i === from ? this.at(i).text : this.at(i).separator + this.at(i).text;
    return text;
  }
}
