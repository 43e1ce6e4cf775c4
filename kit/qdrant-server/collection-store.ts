/**
 * In-memory state of the test server: collections, their points, per-id
 * write counters and payload indexes, plus every mutating operation
 * (create/delete collection, upsert, delete points, create payload index).
 *
 * Writes are all-or-nothing: a request is fully validated before the first
 * point is stored, matching Qdrant's behaviour for a rejected batch.
 * Trade-off: there is no WAL/async apply; `wait=false` is acknowledged after
 * the write has already been applied, which is a stricter ordering than real
 * Qdrant gives but never weaker.
 */
import { collectionInfo, parseCreateCollection } from "./collection-schema.js";
import { parseFilter } from "./filters.js";
import { KeywordIndex } from "./keyword-index.js";
import { isPlainObject, type CollectionState, type PointId, type StoredPoint } from "./model.js";
import { describeJson, parsePointIdList } from "./point-ids.js";
import { checkAndNormalize, parseUpsertBody } from "./point-validation.js";
import { alreadyExists, collectionNotFound, formatError, noVariant, validationError } from "./qdrant-errors.js";

const PAYLOAD_TYPES = ["keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid"];

export interface UpdateResult {
  operation_id: number;
  status: "completed" | "acknowledged";
}

function validateCollectionName(name: string): void {
  if (name.length < 1 || name.length > 255) {
    throw validationError([{ path: "name", message: "must be from 1 to 255 characters" }]);
  }
}

/** The points a (validated) filter can match: narrowed by the keyword index when it can, else all. */
export function filterCandidates(state: CollectionState, filter: unknown): Iterable<StoredPoint> {
  const ids = state.keywordIndex.candidates(filter);
  if (ids === null) return state.points.values();
  return [...ids].map((id) => state.points.get(id)!).filter((p) => p !== undefined);
}

export class CollectionStore {
  private readonly collections = new Map<string, CollectionState>();

  reset(): void {
    this.collections.clear();
  }

  names(): string[] {
    return [...this.collections.keys()];
  }

  exists(name: string): boolean {
    return this.collections.has(name);
  }

  get(name: string): CollectionState {
    const state = this.collections.get(name);
    if (!state) throw collectionNotFound(name);
    return state;
  }

  /** For introspection helpers: no HTTP error, a plain programming error. */
  peek(name: string): CollectionState {
    const state = this.collections.get(name);
    if (!state) throw new Error(`qdrant test server: no collection named "${name}"`);
    return state;
  }

  info(name: string): Record<string, unknown> {
    return collectionInfo(this.get(name));
  }

  create(name: string, body: unknown): true {
    validateCollectionName(name);
    // Body errors win over the conflict check, as in Qdrant (extractor runs first).
    const schema = parseCreateCollection(body);
    if (this.collections.has(name)) throw alreadyExists(`Collection \`${name}\` already exists!`);
    this.collections.set(name, {
      name,
      schema,
      points: new Map(),
      versions: new Map(),
      writeCounts: new Map(),
      payloadIndexes: new Map(),
      keywordIndex: new KeywordIndex(),
      nextOperationId: 0,
    });
    return true;
  }

  /** Qdrant answers `false` (not 404) when deleting a collection that does not exist. */
  drop(name: string): boolean {
    return this.collections.delete(name);
  }

  private finishUpdate(state: CollectionState, wait: boolean): UpdateResult {
    const operation_id = state.nextOperationId++;
    return { operation_id, status: wait ? "completed" : "acknowledged" };
  }

  upsert(name: string, body: unknown, wait: boolean): UpdateResult {
    const parsed = parseUpsertBody(body);
    const state = this.get(name);
    const points = checkAndNormalize(parsed, state.schema);
    const version = state.nextOperationId;
    for (const p of points) {
      const old = state.points.get(p.id);
      if (old) state.keywordIndex.remove(old);
      state.keywordIndex.add(p);
      state.points.set(p.id, p);
      state.versions.set(p.id, version);
      state.writeCounts.set(p.id, (state.writeCounts.get(p.id) ?? 0) + 1);
    }
    return this.finishUpdate(state, wait);
  }

  deletePoints(name: string, body: unknown, wait: boolean): UpdateResult {
    if (!isPlainObject(body)) throw noVariant("PointsSelector");
    let ids: PointId[];
    if (body.points !== undefined) {
      const state = this.get(name);
      ids = parsePointIdList(body.points, "points");
      return this.removeIds(state, ids, wait);
    }
    if (body.filter !== undefined) {
      const predicate = parseFilter(body.filter);
      const state = this.get(name);
      ids = [...filterCandidates(state, body.filter)].filter(predicate).map((p) => p.id);
      return this.removeIds(state, ids, wait);
    }
    throw noVariant("PointsSelector");
  }

  private removeIds(state: CollectionState, ids: PointId[], wait: boolean): UpdateResult {
    for (const id of ids) {
      const old = state.points.get(id);
      if (old) state.keywordIndex.remove(old);
      state.points.delete(id);
      state.versions.delete(id);
    }
    return this.finishUpdate(state, wait);
  }

  createPayloadIndex(name: string, body: unknown, wait: boolean): UpdateResult {
    if (!isPlainObject(body))
      throw formatError(`invalid type: ${describeJson(body)}, expected struct CreateFieldIndex`);
    const field = body.field_name;
    if (typeof field !== "string") throw formatError("missing field `field_name`");
    const schema = body.field_schema;
    let dataType: string;
    let params: Record<string, unknown> | null = null;
    if (typeof schema === "string" && PAYLOAD_TYPES.includes(schema)) dataType = schema;
    else if (isPlainObject(schema) && typeof schema.type === "string" && PAYLOAD_TYPES.includes(schema.type)) {
      dataType = schema.type;
      params = structuredClone(schema);
    } else if (schema === undefined || schema === null) {
      throw formatError("field_schema is required by the test server (schema inference not implemented)");
    } else throw noVariant("PayloadFieldSchema", "field_schema");
    const state = this.get(name);
    state.payloadIndexes.set(field, { dataType, params });
    if (dataType === "keyword") state.keywordIndex.addField(field, state.points.values());
    return this.finishUpdate(state, wait);
  }

  /** Deep copies so tests cannot mutate server state through introspection. */
  snapshotPoints(name: string): Map<PointId, StoredPoint> {
    const state = this.peek(name);
    return new Map([...state.points].map(([id, p]) => [id, structuredClone(p)]));
  }

  snapshotWriteCounts(name: string): Map<PointId, number> {
    return new Map(this.peek(name).writeCounts);
  }
}
