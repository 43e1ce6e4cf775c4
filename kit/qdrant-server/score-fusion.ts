/**
 * Reciprocal rank fusion as Qdrant computes it (`rrf_scoring` in its segment
 * crate): each prefetch's ranking adds 1 / (position + k) to a point's score,
 * with 0-based positions and Qdrant's default k = 2, so a point first in one
 * ranking gets 0.5 from it. Input scores are ignored; only order matters.
 * Arithmetic is float32 like Qdrant's, and a fused score is reported as the
 * shortest decimal that reads back as the same float32, which is how Qdrant's
 * JSON writes it (0.8333334, not 0.8333333730697632).
 *
 * Trade-off: Qdrant leaves ties in hash order; the test server breaks them by
 * point id so results are reproducible.
 */
import type { PointId } from "./model.js";
import { comparePointIds } from "./point-ids.js";

/** Qdrant's `DEFAULT_RRF_K`. */
export const DEFAULT_RRF_K = 2;

export interface Ranked<T> {
  id: PointId;
  item: T;
}

export interface Fused<T> {
  id: PointId;
  item: T;
  score: number;
}

/** The shortest decimal that reads back as the same float32 (Rust's `f32` Display). */
export function float32Json(x: number): number {
  const f = Math.fround(x);
  if (!Number.isFinite(f) || f === 0) return f;
  for (let digits = 1; digits <= 9; digits++) {
    const shortest = Number(f.toPrecision(digits));
    if (Math.fround(shortest) === f) return shortest;
  }
  return f;
}

/** Fuses rankings (best first) into one list sorted by fused score, best first. */
export function rrfFuse<T>(rankings: Array<Array<Ranked<T>>>, k = DEFAULT_RRF_K): Array<Fused<T>> {
  const byId = new Map<PointId, { id: PointId; item: T; f32: number }>();
  for (const ranking of rankings) {
    ranking.forEach((r, position) => {
      const add = Math.fround(1 / Math.fround(position + k));
      const seen = byId.get(r.id);
      if (seen) seen.f32 = Math.fround(seen.f32 + add);
      else byId.set(r.id, { id: r.id, item: r.item, f32: add });
    });
  }
  return [...byId.values()]
    .sort((a, b) => b.f32 - a.f32 || comparePointIds(a.id, b.id))
    .map((x) => ({ id: x.id, item: x.item, score: float32Json(x.f32) }));
}
