/**
 * Hostile-size input for the chunker (issue 13): one segment of several MiB (a single cue, a paragraph
 * with no blank line, a word with no whitespace) must be chunked in time linear in its length and memory
 * bounded by the chunks returned, not by the segment. Before the fix, V8's Intl.Segmenter iterator made
 * 1 MiB of short sentences take about two minutes, the graphemes of a long word were collected all at
 * once, and the whole segment went through the token counter in one call. Timing bounds here are
 * generous (measured figures are in the report and the CHANGELOG); the regressions they catch are
 * 100x, not 2x.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import fc from "fast-check";
import { boundedSegments } from "../../producer/bounded-segments.js";
import { chunkDocument } from "../../producer/chunker.js";
import type { SourceDocument } from "../../producer/document.js";
import { repoRoot } from "../../kit/harness.js";

const MIB = 1024 * 1024;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const TARGET = 512;
const BUDGET = TARGET - 2;
const words = (text: string): string[] => text.split(/\s+/).filter(Boolean);
/** ceil(length/4) tokens per word: long words cost more, as with a real tokenizer. */
const charCounter = (text: string): number => words(text).reduce((n, w) => n + Math.ceil(w.length / 4), 0);

const oneSegment = (kind: SourceDocument["kind"], text: string): SourceDocument => ({
  id: "big",
  kind,
  segments: [{ text }],
  metadata: {},
  source: { file: "mem" },
});

const SHAPES: Record<string, { kind: SourceDocument["kind"]; text: (bytes: number) => string }> = {
  "short sentences in one paragraph": { kind: "text", text: (n) => "Hello there. ".repeat(Math.ceil(n / 13)) },
  "one word without whitespace": { kind: "text", text: (n) => "x".repeat(n) },
  "one subtitle cue of plain words": { kind: "transcript", text: (n) => "hello world ".repeat(Math.ceil(n / 12)) },
};

for (const [name, shape] of Object.entries(SHAPES)) {
  const title = `a 2 MiB segment (${name}) is chunked in bounded time, within budget, losing nothing`;
  test(title, { timeout: 120_000 }, (t) => {
    const text = shape.text(2 * MIB);
    const doc = oneSegment(shape.kind, text);
    let longestCounted = 0;
    const countTokens = (t: string): number => {
      longestCounted = Math.max(longestCounted, t.length);
      return charCounter(t);
    };
    const started = performance.now();
    const chunks = chunkDocument(doc, { targetTokens: TARGET, overlapTokens: 0, countTokens });
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`${name}: ${chunks.length} chunks in ${seconds.toFixed(2)} s`);
    assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s (about 1 s expected on a 2-core CPU)`);
    // The counter (a tokenizer in production) never sees the whole segment at once: its memory stays bounded.
    assert.ok(longestCounted <= BUDGET * 16, `counter asked about ${longestCounted} characters at once`);
    for (const c of chunks) assert.ok(c.tokens <= TARGET, `chunk ${c.index}: ${c.tokens} tokens`);
    const squash = (t: string) => t.replace(/\s+/g, "");
    assert.ok(chunks.map((c) => squash(c.text)).join("") === squash(text), "text lost or reordered");
  });
}

test("an 8 MiB cue is chunked under a 48 MiB heap limit (memory bounded by the chunks)", { timeout: 150_000 }, () => {
  const chunker = path.join(repoRoot, "dist", "producer", "chunker.js");
  const script = `
    const { chunkDocument } = await import(${JSON.stringify(chunker)});
    const text = "hello world ".repeat(${Math.ceil((8 * MIB) / 12)});
    const count = (t) => t.split(/\\s+/).filter(Boolean).length;
    const doc = { id: "big", kind: "transcript", segments: [{ text }], metadata: {}, source: { file: "mem" } };
    const chunks = chunkDocument(doc, { targetTokens: 512, overlapTokens: 32, countTokens: count });
    process.stdout.write(String(chunks.length));`;
  const r = spawnSync(process.execPath, ["--max-old-space-size=48", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ""}: ${r.stderr.slice(-400)}`);
  assert.ok(Number(r.stdout) > 2000, `chunks: ${r.stdout}`);
});

test("property: bounded segmentation keeps the text whole and matches Intl's graphemes", () => {
  const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
  const sentences = new Intl.Segmenter(undefined, { granularity: "sentence" });
  const pieces = fc.constantFrom("a", "é", "e\u0301", "😀", "👩‍👩‍👧", "\uD800", "\uDC00", " ", ". ", "A", "\n", "東");
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 200 }), fc.integer({ min: 2, max: 40 }), (parts, window) => {
      const text = parts.join("");
      const g = Array.from(boundedSegments(text, graphemes, window, window * 4));
      assert.equal(g.join(""), text);
      // Clusters here are at most 8 code units, shorter than any window the test uses after growth.
      if (window >= 8)
        assert.deepEqual(
          g,
          Array.from(graphemes.segment(text), (s) => s.segment),
        );
      // A window edge never falls inside a surrogate pair: a well-formed text gives well-formed segments.
      if (!LONE_SURROGATE.test(text)) for (const s of g) assert.ok(s.length > 0 && !LONE_SURROGATE.test(s), s);
      assert.equal(Array.from(boundedSegments(text, sentences, window)).join(""), text);
    }),
    { seed: 13, numRuns: 300 },
  );
});

test("progress through one long segment is reported after each chunk, rising to the whole text", () => {
  const text = "hello world ".repeat(20_000);
  const doc = oneSegment("transcript", text);
  const seen: number[] = [];
  const chunks = chunkDocument(doc, {
    targetTokens: 64,
    overlapTokens: 8,
    countTokens: charCounter,
    onProgress: (p) => {
      assert.equal(p.totalChars, text.length);
      assert.equal(p.chunks, seen.length + 1);
      seen.push(p.chars);
    },
  });
  assert.equal(seen.length, chunks.length);
  assert.ok(
    seen.every((c, i) => i === 0 || c > seen[i - 1]),
    "progress must rise with every chunk",
  );
  // Only trailing whitespace (trimmed off the segment) is left uncounted.
  assert.ok(seen[seen.length - 1] >= text.trim().length, `${seen[seen.length - 1]} of ${text.length}`);
});
