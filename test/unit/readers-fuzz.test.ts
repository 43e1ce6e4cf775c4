/**
 * Property-based fuzzing of the producer's readers (issue 13): random bytes and near-valid documents in
 * each format (.txt, .srt, .vtt, transcript .json, .jsonl), with lone surrogates, NUL, stray markup,
 * broken timings and invalid UTF-8 spliced in. Every file must be read in bounded time into documents
 * whose every string is well-formed Unicode, or into skips with a typed reason (never the readers'
 * "unexpected … reader failure" wrapper for an untyped error); chunking those documents must not throw
 * and must keep strings well-formed. Seeded and bounded, so a failure replays exactly.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import fc from "fast-check";
import type { JsonValue, ReadEvent } from "../../producer/document.js";
import { chunksForQueue } from "../../producer/enqueue.js";
import { readDocuments } from "../../producer/readers/index.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const RUNS = 150;
const SECONDS_PER_FILE = 5;
let tmp = "";
let fileNo = 0;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "readers-fuzz-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Pieces that have broken readers or workers somewhere: surrogates, controls, markup, timing arrows, entities. */
const nasty = fc.constantFrom(
  "\uD800",
  "\uDC00",
  "\uD83D\uDE00",
  "\u0000",
  "\u0007",
  "\r\n",
  "\n\n",
  "<",
  ">",
  "<v Ann>",
  "</v>",
  "<i>",
  "{\\an8}",
  "-->",
  "&#xD800;",
  "&amp;",
  "&#1114112;",
  "WEBVTT",
  "NOTE",
  "00:00:01,000",
  "e\u0301",
  "\uFEFF",
  " ",
  "\t",
  "東京",
);
const text = fc
  .array(fc.oneof(nasty, fc.string({ maxLength: 12 }), fc.string({ unit: "binary", maxLength: 6 })), {
    maxLength: 30,
  })
  .map((parts) => parts.join(""));

const srtTime = fc
  .tuple(fc.nat(99), fc.nat(70), fc.nat(70), fc.nat(1200))
  .map(
    ([h, m, s, ms]) =>
      `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")},${ms}`,
  );
const srt = fc
  .array(fc.tuple(srtTime, srtTime, text), { maxLength: 6 })
  .map((cues) => cues.map(([a, b, t], i) => `${i + 1}\n${a} --> ${b}\n${t}\n`).join("\n"));
const vtt = fc
  .array(fc.tuple(srtTime, srtTime, text), { maxLength: 6 })
  .map(
    (cues) =>
      "WEBVTT\n\n" + cues.map(([a, b, t]) => `${a.replace(",", ".")} --> ${b.replace(",", ".")}\n${t}\n`).join("\n"),
  );
const anyJson: fc.Arbitrary<JsonValue> = fc.letrec<{ v: JsonValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    text,
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(text, tie("v"), { maxKeys: 3 }),
  ),
})).v;
/** Mostly `valid`, sometimes any JSON value at all. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: anyJson as fc.Arbitrary<T | JsonValue>, weight: 1 });
const seconds = fc.double({ min: 0, max: 1e5, noNaN: true });
const segment = fc.record(
  { text: mostly(text), speaker: mostly(text), start: mostly(seconds), end: mostly(seconds) },
  { requiredKeys: ["text"] },
);
const transcriptJson = fc
  .record(
    {
      id: mostly(text),
      segments: mostly(fc.array(segment, { maxLength: 5 })),
      metadata: mostly(fc.dictionary(text, anyJson)),
    },
    { requiredKeys: ["segments"] },
  )
  .map((v) => JSON.stringify(v));
const jsonl = fc
  .array(
    fc.oneof(
      fc
        .record({ id: fc.oneof(text, fc.integer()), text, metadata: anyJson }, { requiredKeys: [] })
        .map((r) => JSON.stringify(r)),
      text,
    ),
    { maxLength: 6 },
  )
  .map((lines) => lines.join("\n"));

/** UTF-8 of `source` with random bytes spliced in (invalid sequences), or plain random bytes. */
function bytesOf(source: fc.Arbitrary<string>): fc.Arbitrary<Uint8Array> {
  const junk = fc.array(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })), { maxLength: 3 });
  const spliced = fc.tuple(source, junk).map(([s, cuts]) => {
    let bytes = Buffer.from(s, "utf8");
    for (const [at, junk] of cuts) {
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      bytes = Buffer.concat([bytes.subarray(0, i), junk, bytes.subarray(i)]);
    }
    return new Uint8Array(bytes);
  });
  return fc.oneof({ arbitrary: spliced, weight: 4 }, { arbitrary: fc.uint8Array({ maxLength: 600 }), weight: 1 });
}

function assertWellFormed(value: unknown, where: string): void {
  if (typeof value === "string") {
    assert.ok(!LONE_SURROGATE.test(value), `${where}: ill-formed ${JSON.stringify(value)}`);
    return;
  }
  if (Array.isArray(value)) value.forEach((v, i) => assertWellFormed(v, `${where}[${i}]`));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      assertWellFormed(k, `${where} key`);
      assertWellFormed(v, `${where}.${k}`);
    }
  }
}

const countWords = (t: string): number => t.split(/\s+/).filter(Boolean).length;

async function checkFile(ext: string, bytes: Uint8Array, seen: { documents: number; skips: number }): Promise<void> {
  const file = path.join(tmp, `f${fileNo++}${ext}`);
  await writeFile(file, bytes);
  const started = performance.now();
  const events: ReadEvent[] = [];
  for await (const ev of readDocuments(file)) events.push(ev);
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < SECONDS_PER_FILE, `${ext}: read took ${seconds.toFixed(1)} s`);
  for (const ev of events) {
    seen[ev.kind === "skipped" ? "skips" : "documents"]++;
    if (ev.kind === "skipped") {
      assert.ok(ev.reason.length > 0, "empty skip reason");
      assert.doesNotMatch(ev.reason, /^unexpected .* reader failure/, `untyped error: ${ev.reason}`);
      assertWellFormed(ev.reason, "reason");
      continue;
    }
    assertWellFormed(ev.doc, "document");
    const chunks = chunksForQueue(ev.doc, { chunkTokens: 16, overlapTokens: 2, countTokens: countWords });
    if (Array.isArray(chunks)) assertWellFormed(chunks, "chunks");
    else assert.doesNotMatch(chunks.reason, /chunking failed/, chunks.reason);
  }
  await rm(file);
}

const FORMATS: Record<string, fc.Arbitrary<string>> = {
  ".txt": text,
  ".srt": srt,
  ".vtt": vtt,
  ".json": transcriptJson,
  ".jsonl": jsonl,
};

for (const [ext, source] of Object.entries(FORMATS)) {
  const title = `fuzz ${ext}: documents with well-formed strings or typed skips, in bounded time`;
  test(title, { timeout: 120_000 }, async (t) => {
    const seen = { documents: 0, skips: 0 };
    await fc.assert(
      fc.asyncProperty(bytesOf(source), (bytes) => checkFile(ext, bytes, seen)),
      { seed: 1313, numRuns: RUNS },
    );
    t.diagnostic(`${ext}: ${seen.documents} documents, ${seen.skips} skips`);
    // The generators must reach both outcomes, or the property proves little.
    assert.ok(seen.documents >= RUNS / 20 && seen.skips >= RUNS / 20, JSON.stringify(seen));
  });
}
