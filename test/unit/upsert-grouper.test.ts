/** The upsert grouper with a fake sink: a point the sink rejects fails only its own callback
 *  while its group-mates are stored; an outage fails the whole group without multiplying
 *  requests. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SinkError } from "../../worker/errors.js";
import { UpsertGrouper, type GroupedPoint } from "../../worker/core/upsert-grouper.js";
import type { VectorPoint, VectorSink } from "../../worker/core/ports.js";

class FakeSink implements VectorSink {
  requests: string[][] = [];
  stored = new Set<string>();
  constructor(private readonly answer: (ids: string[]) => SinkError | undefined) {}
  async init() {}
  describe() {
    return "fake";
  }
  async close() {}
  async upsert(points: VectorPoint[]) {
    const ids = points.map((p) => p.id);
    this.requests.push(ids);
    const err = this.answer(ids);
    if (err) throw err;
    for (const id of ids) this.stored.add(id);
  }
}

async function writeAll(sink: FakeSink, ids: string[], retries = 2) {
  const grouper = new UpsertGrouper(sink, { maxBytes: 1 << 20, maxPoints: 1000, lingerMs: 1, retries, retryBaseMs: 1 });
  const outcome = new Map<string, Error | undefined>();
  const settled = ids.map(
    (id) =>
      new Promise<void>((resolve) => {
        const entry: GroupedPoint = { point: { id, payload: {} }, done: (e) => (outcome.set(id, e), resolve()) };
        grouper.add([entry]);
      }),
  );
  await Promise.all(settled);
  await grouper.idle();
  return outcome;
}

const ids = Array.from({ length: 16 }, (_, i) => `p${i}`);

for (const status of [500, 400]) {
  test(`HTTP ${status} for one point: only that point fails, its group-mates are stored`, async () => {
    const sink = new FakeSink((req) => (req.includes("p11") ? new SinkError(`HTTP ${status}`, status) : undefined));
    const outcome = await writeAll(sink, ids);
    assert.equal(sink.requests[0].length, ids.length, "the points should first go out as one group");
    assert.deepEqual(
      [...outcome].filter(([, e]) => e).map(([id]) => id),
      ["p11"],
    );
    assert.match(outcome.get("p11")!.message, new RegExp(`HTTP ${status}`));
    assert.deepEqual([...sink.stored].sort(), ids.filter((id) => id !== "p11").sort());
    // 16 points: the full group (with retries if retryable), then one failing half per level down to p11 alone.
    assert.ok(sink.requests.length <= 3 + 2 * Math.log2(ids.length), `too many requests: ${sink.requests.length}`);
  });
}

for (const [what, status] of [
  ["refused connection", undefined],
  ["HTTP 503", 503],
] as const) {
  test(`${what}: the whole group fails after its retries, without splitting`, async () => {
    const sink = new FakeSink(() => new SinkError(what, status));
    const outcome = await writeAll(sink, ids, 2);
    assert.equal(outcome.size, ids.length);
    assert.ok([...outcome.values()].every((e) => e instanceof SinkError));
    assert.equal(sink.requests.length, 3, "one request plus two retries, no split");
  });
}

test("an exception past the grouper's handling fails the group's points via their callbacks", async () => {
  const sink = new FakeSink(() => undefined);
  // A throwing metrics callback stands for any bug in the success path.
  const grouper = new UpsertGrouper(sink, {
    maxBytes: 1 << 20,
    maxPoints: 1000,
    lingerMs: 1,
    retries: 0,
    retryBaseMs: 1,
    onRequest: () => {
      throw new TypeError("metrics exploded");
    },
  });
  const outcome = await new Promise<Array<Error | undefined>>((resolve) => {
    const seen: Array<Error | undefined> = [];
    const done = (e?: Error) => {
      seen.push(e);
      if (seen.length === 2) resolve(seen);
    };
    grouper.add([
      { point: { id: "a", payload: {} }, done },
      { point: { id: "b", payload: {} }, done },
    ]);
  });
  await grouper.idle();
  assert.equal(outcome.length, 2);
  for (const e of outcome) {
    assert.ok(e instanceof SinkError);
    assert.match(e.message, /^writing 2 points failed unexpectedly: metrics exploded/);
  }
});
