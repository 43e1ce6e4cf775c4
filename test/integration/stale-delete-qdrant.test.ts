/** The Qdrant sink's grouped stale-point delete (issue 15) through the real `@qdrant/js-client-rest`
 *  against the strict Qdrant-compatible test server (or a real Qdrant with QDRANT_URL): one request
 *  removes exactly what each document's selector selects (chunk index at or past its bound, version
 *  below its bound or absent) and nothing of the documents it does not name; a failed request says
 *  the HTTP status, Qdrant's detail and the documents it carried. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import { pointId } from "../../shared/ids.js";
import { SinkError } from "../../worker/errors.js";
import { QdrantSink, staleFilterMany } from "../../worker/adapters/qdrant-sink.js";
import type { StaleSelector, VectorPoint } from "../../worker/core/ports.js";
import { suiteFixture } from "../support/suite-fixture.js";
import { fakeModelInfo } from "../support/fake-model-info.js";

const fx = suiteFixture({ redis: false, model: false, qdrant: "target" });

function sinkFor(collection: string): QdrantSink {
  return new QdrantSink(
    parseConfig({ QDRANT_URL: fx.target.url, QDRANT_API_KEY: fx.target.apiKey, COLLECTION: collection }),
  );
}

/** A point of `doc` at `chunk`, written by version `v` (undefined: a point from before versions were stored). */
function point(doc: string, chunk: number, v?: number): VectorPoint {
  const payload: Record<string, unknown> = { doc_id: doc, chunk_index: chunk };
  if (v !== undefined) payload.doc_version = v;
  return { id: pointId(doc, chunk), dense: Float32Array.from([1, chunk + 1]), payload };
}

const key = (doc: string, chunk: number) => `${doc}#${chunk}`;

test("one grouped delete removes each document's stale points, by chunk index and version, and nothing else", async () => {
  const collection = `stale_${randomUUID().slice(0, 8)}`;
  const sink = sinkFor(collection);
  await sink.init(fakeModelInfo());
  fx.onCleanup(async () => {
    const { QdrantClient } = await import("@qdrant/js-client-rest");
    const client = new QdrantClient({ url: fx.target.url, apiKey: fx.target.apiKey, checkCompatibility: false });
    await client.deleteCollection(collection).catch(() => undefined);
  });
  const stored = [
    // a: an older, longer version (v1) of a document now 3 chunks long at v5.
    ...[0, 1, 2, 3, 4, 5].map((c) => point("a", c, 1)),
    // b: chunk 2 from before versions, chunk 3 older (v2), chunk 4 written by a NEWER version (v9).
    point("b", 0, 5),
    point("b", 1, 5),
    point("b", 2),
    point("b", 3, 2),
    point("b", 4, 9),
    // c: not in the request at all, same shape as a.
    ...[0, 1, 2, 3, 4, 5].map((c) => point("c", c, 1)),
    // d: in the request, but nothing past its bound.
    ...[0, 1].map((c) => point("d", c, 1)),
  ];
  await sink.upsert(stored);
  const sels: StaleSelector[] = [
    { docId: "a", fromChunk: 3, belowVersion: 5 },
    { docId: "b", fromChunk: 2, belowVersion: 5 },
    { docId: "d", fromChunk: 10, belowVersion: 5 },
  ];
  const deletesBefore = fx.target.server?.requests.filter((r) => r.path.endsWith("/points/delete")).length;
  await sink.deleteStaleMany(sels);
  if (fx.target.server) {
    const deletes = fx.target.server.requests.filter((r) => r.path.endsWith("/points/delete"));
    assert.equal(deletes.length - deletesBefore!, 1, "three documents' removals must be one request");
    assert.equal(deletes.at(-1)!.status, 200);
  }
  const { QdrantClient } = await import("@qdrant/js-client-rest");
  const client = new QdrantClient({ url: fx.target.url, apiKey: fx.target.apiKey, checkCompatibility: false });
  const left = (await client.scroll(collection, { limit: 100, with_payload: true, with_vector: false })).points;
  const have = new Set(left.map((p) => key(String(p.payload!.doc_id), Number(p.payload!.chunk_index))));
  const want = new Set([
    ...[0, 1, 2].map((c) => key("a", c)),
    key("b", 0),
    key("b", 1),
    key("b", 4),
    ...[0, 1, 2, 3, 4, 5].map((c) => key("c", c)),
    key("d", 0),
    key("d", 1),
  ]);
  assert.deepEqual([...have].sort(), [...want].sort());
});

test("the grouped filter is a should of the per-document filters; one selector stays the plain filter", () => {
  const one = { docId: "x", fromChunk: 2, belowVersion: 7 };
  const single = staleFilterMany([one]);
  assert.ok("must" in single && !("should" in single));
  const many = staleFilterMany([one, { ...one, docId: "y" }]) as { should: unknown[] };
  assert.equal(many.should.length, 2);
  assert.deepEqual(many.should[0], single);
});

test("a failed grouped delete names the HTTP status, Qdrant's detail and the documents it carried", async () => {
  const sink = sinkFor(`missing_${randomUUID().slice(0, 8)}`);
  const sels = ["p", "q", "r", "s", "t"].map((docId) => ({ docId, fromChunk: 1, belowVersion: 2 }));
  await assert.rejects(sink.deleteStaleMany(sels), (err: SinkError) => {
    assert.ok(err instanceof SinkError);
    assert.equal(err.status, 404);
    assert.match(err.message, /deleting stale points of 5 documents \("p", "q", "r" and 2 more\) from "missing_/);
    assert.match(err.message, /\(HTTP 404\): .*[Nn]ot found/);
    return true;
  });
});
