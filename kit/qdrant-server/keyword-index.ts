/**
 * Point ids by value of keyword-indexed payload fields, so a filter that must match an
 * indexed keyword (`doc_id` here) looks at the matching points only, as Qdrant's payload
 * index lets it. Without it every filtered delete, count or scroll scans the collection,
 * which makes per-document deletes over a few hundred thousand points quadratic.
 *
 * Trade-off: only top-level `must` conditions of the form `{key, match: {value}}` on a
 * keyword-indexed field narrow the scan, and a top-level `should` whose every condition is a
 * filter so narrowed (the worker's grouped stale delete, issue 15) narrows it to their union;
 * the full predicate still runs on every candidate, so results never depend on the index.
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
    for (const c of asList(filter.must)) {
      if (!isPlainObject(c) || typeof c.key !== "string" || !isPlainObject(c.match) || !("value" in c.match)) continue;
      const byValue = this.fields.get(c.key);
      if (byValue) return byValue.get(c.match.value) ?? new Set();
    }
    // A point matches a non-empty `should` only if it matches one of its conditions.
    const should = asList(filter.should);
    if (should.length === 0) return null;
    const union = new Set<PointId>();
    for (const c of should) {
      const ids = this.candidates(c);
      if (ids === null) return null;
      for (const id of ids) union.add(id);
    }
    return union;
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

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}
