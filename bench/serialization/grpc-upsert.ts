/** The gRPC lever of issue 15, measured rather than adopted: the bytes and CPU of one Qdrant
 *  `UpsertPoints` message built with the official gRPC client's generated message types
 *  (`@qdrant/js-client-grpc`, protobuf-es `create` + `toBinary`) from the same points the REST
 *  paths send. Floats travel as packed binary there, but building the message (Float32Array ->
 *  number[], payload -> protobuf `Value`s) and encoding it runs where the caller runs it: on the
 *  main thread unless moved like the REST body. Used by `npm run bench:upsert-body` only. */
import { create, toBinary } from "@bufbuild/protobuf";
import { UpsertPointsSchema } from "@qdrant/js-client-grpc";
import type { VectorPoint } from "../../worker/core/ports.js";

type ValueInit = { kind: { case: string; value: unknown } };

function value(v: unknown): ValueInit {
  if (v === null || v === undefined) return { kind: { case: "nullValue", value: 0 } };
  if (typeof v === "string") return { kind: { case: "stringValue", value: v } };
  if (typeof v === "boolean") return { kind: { case: "boolValue", value: v } };
  if (typeof v === "number")
    return Number.isInteger(v)
      ? { kind: { case: "integerValue", value: BigInt(v) } }
      : { kind: { case: "doubleValue", value: v } };
  if (Array.isArray(v)) return { kind: { case: "listValue", value: { values: v.map(value) } } };
  return { kind: { case: "structValue", value: { fields: fields(v as Record<string, unknown>) } } };
}

function fields(o: Record<string, unknown>): Record<string, ValueInit> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)]));
}

function vectors(p: VectorPoint) {
  const named: Record<string, unknown> = {};
  if (p.dense) named.dense = { vector: { case: "dense", value: { data: Array.from(p.dense) } } };
  if (p.sparse)
    named.sparse = {
      vector: { case: "sparse", value: { indices: Array.from(p.sparse.indices), values: Array.from(p.sparse.values) } },
    };
  if (p.colbert && p.colbertDim) {
    const rows = [];
    for (let o = 0; o < p.colbert.length; o += p.colbertDim)
      rows.push({ data: Array.from(p.colbert.subarray(o, o + p.colbertDim)) });
    named.colbert = { vector: { case: "multiDense", value: { vectors: rows } } };
  }
  return { vectorsOptions: { case: "vectors", value: { vectors: named } } };
}

/** The encoded `UpsertPoints` request (wait=true) for `points`. */
export function grpcUpsertBytes(collection: string, points: VectorPoint[]): Uint8Array {
  const msg = create(UpsertPointsSchema, {
    collectionName: collection,
    wait: true,
    points: points.map((p) => ({
      id: { pointIdOptions: { case: "uuid", value: p.id } },
      payload: fields(p.payload),
      vectors: vectors(p),
    })),
  } as never);
  return toBinary(UpsertPointsSchema, msg);
}
