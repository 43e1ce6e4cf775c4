/**
 * Point ids by value of keyword-indexed payload fields, so a filter that must match an
 * indexed keyword (`doc_id` here) looks at the matching points only, as Qdrant's payload
 * index lets it. Without it every filtered delete, count or scroll scans the collection,
 * which makes per-document deletes over a few hundred thousand points quadratic.
 *
 * Trade-off: only top-level `must` conditions of the form `{key, match: {value}}` on a
 * keyword-indexed field narrow the scan; the full predicate still runs on every candidate,
 * so results never depend on the index.
 */
import { valuesAtPath } from "./filters.js";
import { isPlainObject, type PointId, type StoredPoint } from "./model.js";

export class KeywordIndex {
  private readonly fields = new Map<string, Map<unknown, Set<PointId>>>();

  /** Starts indexing `field`, including the points already stored. */
  addField(field: string, points: Iterable<StoredPoint>): void {
    if (this.fields.has(field)) return;
    const byValue = new Map<unknown, Set<PointId>>();
    this.fields.set(field, byValue);
    for (const p of points) this.addTo(field, byValue, p);
  }

  add(p: StoredPoint): void {
    for (const [field, byValue] of this.fields) this.addTo(field, byValue, p);
  }

  remove(p: StoredPoint): void {
    for (const [field, byValue] of this.fields) {
      for (const v of valuesAtPath(p.payload, field)) {
        const ids = byValue.get(v);
        ids?.delete(p.id);
        if (ids?.size === 0) byValue.delete(v);
      }
    }
  }

  /** Ids that can match `filter` (already validated by parseFilter), or null when the index cannot narrow it. */
  candidates(filter: unknown): Set<PointId> | null {
    if (!isPlainObject(filter)) return null;
    const must = Array.isArray(filter.must)
      ? filter.must
      : filter.must === undefined || filter.must === null
        ? []
        : [filter.must];
    for (const c of must) {
      if (!isPlainObject(c) || typeof c.key !== "string" || !isPlainObject(c.match) || !("value" in c.match)) continue;
      const byValue = this.fields.get(c.key);
      if (byValue) return byValue.get(c.match.value) ?? new Set();
    }
    return null;
  }

  private addTo(field: string, byValue: Map<unknown, Set<PointId>>, p: StoredPoint): void {
    for (const v of valuesAtPath(p.payload, field)) {
      if (typeof v !== "string") continue;
      let ids = byValue.get(v);
      if (!ids) byValue.set(v, (ids = new Set()));
      ids.add(p.id);
    }
  }
}
