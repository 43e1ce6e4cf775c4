/**
 * Tests for the token-aware chunker. Most tests use simple deterministic
 * counters (one token per whitespace word; or ceil(length/4) per word, so
 * long words cost more) and documents made of unique words ("w17"), which
 * makes "no text lost", order and overlap checkable exactly. The real XLM-R
 * tokenizer from the shared reference folder is used when present.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";
import { Tokenizer } from "@huggingface/tokenizers";
import { chunkDocument, ChunkerOptionsError, TokenCountError } from "../../producer/chunker.js";
import { splitSentences } from "../../producer/chunk-atoms.js";
import type { Chunk, Segment, SourceDocument } from "../../producer/document.js";
import { readDocuments } from "../../producer/readers/index.js";
import { referenceRoot, repoRoot } from "../../kit/harness.js";

const ROOT = repoRoot;
const SHARED = referenceRoot;
const TOKENIZER_DIR = join(SHARED, "reference", "tokenizers", "xlm-roberta-250k");
const TRANSCRIPTS = join(SHARED, "data", "transcripts");

const words = (text: string): string[] => text.split(/\s+/).filter(Boolean);
const wordCounter = (text: string): number => words(text).length;
const charCounter = (text: string): number => words(text).reduce((n, w) => n + Math.ceil(w.length / 4), 0);

function textDoc(paragraphs: string[]): SourceDocument {
  return {
    id: "t",
    kind: "text",
    segments: paragraphs.map((text) => ({ text })),
    metadata: {},
    source: { file: "mem" },
  };
}
function transcriptDoc(segments: Segment[]): SourceDocument {
  return { id: "tr", kind: "transcript", segments, metadata: {}, source: { file: "mem" } };
}

/** Word indices (w<N>) of a chunk, for documents built from unique words. */
const indices = (chunk: Chunk): number[] => words(chunk.text).map((w) => Number(/^w(\d+)/i.exec(w)![1]));
/** A sentence of `len` unique words; capitalised first word so the sentence segmenter sees a real sentence start. */
const uniqueSentence = (start: number, len: number): string =>
  Array.from({ length: len }, (_, i) => `${i === 0 ? "W" : "w"}${start + i}`).join(" ") + ".";

/** Checks coverage, order, contiguity, progress and overlap bounds; returns overlap sizes in words. */
function checkUniqueWordChunks(chunks: Chunk[], totalWords: number, overlapTokens: number): number[] {
  const overlaps: number[] = [];
  let prevLast = -1;
  let prevFirst = -1;
  for (const [k, chunk] of chunks.entries()) {
    assert.equal(chunk.index, k);
    const idx = indices(chunk);
    assert.ok(idx.length > 0, "empty chunk");
    idx.forEach((v, i) => i > 0 && assert.equal(v, idx[i - 1] + 1, `chunk ${k} not contiguous: ${chunk.text}`));
    if (k === 0) assert.equal(idx[0], 0, "first chunk must start at the first word");
    else {
      assert.ok(idx[0] <= prevLast + 1, `gap before chunk ${k}: text lost`);
      assert.ok(idx[0] > prevFirst, `chunk ${k} does not move forward`);
      assert.ok(idx[idx.length - 1] > prevLast, `chunk ${k} adds nothing new`);
      const overlap = prevLast - idx[0] + 1;
      assert.ok(overlap <= overlapTokens, `overlap ${overlap} > ${overlapTokens}`);
      overlaps.push(overlap);
    }
    prevFirst = idx[0];
    prevLast = idx[idx.length - 1];
  }
  assert.equal(prevLast, totalWords - 1, "last word missing");
  return overlaps;
}

// ---------------------------------------------------------------- options

test("options are validated with typed errors", () => {
  const doc = textDoc(["Hello there."]);
  assert.throws(
    () => chunkDocument(doc, { targetTokens: 7, overlapTokens: 0, countTokens: wordCounter }),
    (e) => e instanceof ChunkerOptionsError && e.option === "targetTokens",
  );
  assert.throws(
    () => chunkDocument(doc, { targetTokens: 10, overlapTokens: 8, countTokens: wordCounter }),
    (e) =>
      e instanceof ChunkerOptionsError && e.option === "overlapTokens" && /< targetTokens - 2 \(= 8\)/.test(e.message),
  );
  assert.throws(
    () => chunkDocument(doc, { targetTokens: 10, overlapTokens: -1, countTokens: wordCounter }),
    ChunkerOptionsError,
  );
  assert.throws(
    () => chunkDocument(doc, { targetTokens: 10.5, overlapTokens: 0, countTokens: wordCounter }),
    ChunkerOptionsError,
  );
  assert.throws(
    () => chunkDocument(doc, { targetTokens: 10, overlapTokens: 0, countTokens: () => Number.NaN }),
    TokenCountError,
  );
  assert.deepEqual(
    chunkDocument(textDoc(["   ", ""]), { targetTokens: 10, overlapTokens: 2, countTokens: wordCounter }),
    [],
  );
});

// ---------------------------------------------------------------- property test

const sentenceArb = fc.integer({ min: 1, max: 15 });
const docShapeArb = fc.record({
  transcript: fc.boolean(),
  segments: fc.array(
    fc.record({
      sentences: fc.array(sentenceArb, { minLength: 1, maxLength: 5 }),
      speaker: fc.constantFrom("A", "B", "C", "D"),
    }),
    { minLength: 1, maxLength: 8 },
  ),
  target: fc.integer({ min: 8, max: 60 }),
  // An integer reduced modulo the budget: fc.double clusters near 0 and would rarely exercise overlap.
  overlapSeed: fc.integer({ min: 0, max: 10_000 }),
});

test("property: budget never exceeded, no text lost, order kept, overlap bounded, deterministic", () => {
  fc.assert(
    fc.property(docShapeArb, (shape) => {
      let n = 0;
      const segments: Segment[] = shape.segments.map((s, i) => ({
        speaker: s.speaker,
        start: i * 10,
        end: i * 10 + 5,
        text: s.sentences.map((len) => uniqueSentence((n += len) - len, len)).join(" "),
      }));
      const doc = shape.transcript ? transcriptDoc(segments) : textDoc(segments.map((s) => s.text));
      const overlapTokens = shape.overlapSeed % (shape.target - 2);
      const opts = { targetTokens: shape.target, overlapTokens, countTokens: wordCounter };
      const chunks = chunkDocument(doc, opts);
      for (const c of chunks) {
        assert.equal(c.tokens, wordCounter(c.text) + 2);
        assert.ok(c.tokens <= shape.target, `chunk of ${c.tokens} tokens > target ${shape.target}`);
        assert.equal(c.metadata.chars, c.text.length);
        assert.equal(c.text, c.text.trim());
      }
      checkUniqueWordChunks(chunks, n, overlapTokens);
      assert.deepEqual(chunkDocument(doc, opts), chunks);
      if (shape.transcript) {
        // Segment of each word index, to recompute speakers/start/end independently.
        const segOf: number[] = [];
        segments.forEach((s, i) => words(s.text).forEach(() => segOf.push(i)));
        for (const c of chunks) {
          const segs = [...new Set(indices(c).map((w) => segOf[w]))];
          assert.deepEqual(c.metadata.speakers, [...new Set(segs.map((i) => segments[i].speaker))]);
          assert.equal(c.metadata.start, segments[segs[0]].start);
          assert.equal(c.metadata.end, segments[segs[segs.length - 1]].end);
          // Segment boundaries survive as newlines: each line's words come from one segment.
          for (const line of c.text.split("\n"))
            assert.equal(new Set(words(line).map((w) => segOf[Number(w.slice(1).replace(".", ""))])).size, 1);
        }
      }
    }),
    { numRuns: 300, seed: 20240514 },
  );
});

// ---------------------------------------------------------------- focused behaviour

test("overlap is present and within overlapTokens when units are small", () => {
  let n = 0;
  const sentence = () => uniqueSentence((n += 5) - 5, 5);
  const doc = textDoc([Array.from({ length: 40 }, sentence).join(" ")]);
  const chunks = chunkDocument(doc, { targetTokens: 42, overlapTokens: 12, countTokens: wordCounter });
  assert.ok(chunks.length > 4);
  const overlaps = checkUniqueWordChunks(chunks, n, 12);
  assert.ok(
    overlaps.every((o) => o === 10),
    `overlaps: ${overlaps}`,
  ); // two whole 5-word sentences
  // Overlap in whole sentences: every chunk starts at a sentence start.
  assert.ok(chunks.every((c) => indices(c)[0] % 5 === 0));
});

test("sentences are never cut when they fit the budget", () => {
  const sentences = [
    "The first sentence is short.",
    "A second sentence follows it, a little longer than the first one.",
    "Third!",
    "Is this the fourth sentence?",
    "Yes, and it has company: a fifth sentence, which runs on for quite a while before ending.",
    "Sixth.",
    "The seventh sentence closes the paragraph.",
  ];
  const doc = textDoc([sentences.slice(0, 4).join(" "), sentences.slice(4).join("  ")]);
  for (const [target, overlap] of [
    [20, 0],
    [20, 6],
    [30, 10],
    [8, 0],
  ] as const) {
    const chunks = chunkDocument(doc, { targetTokens: target, overlapTokens: overlap, countTokens: wordCounter });
    for (const c of chunks) {
      const parts = c.text.split("\n").flatMap((p) => splitSentences(p));
      if (parts.some((p) => !sentences.includes(p))) {
        // Only allowed for a sentence longer than the budget (target 8: budget 6 words).
        assert.ok(
          sentences.some((s) => wordCounter(s) > target - 2 && parts.some((p) => s.includes(p))),
          `cut sentence in: ${c.text}`,
        );
      }
    }
    if (target >= 20)
      assert.ok(
        chunks.every((c) =>
          c.text
            .split("\n")
            .flatMap((p) => splitSentences(p))
            .every((p) => sentences.includes(p)),
        ),
      );
  }
});

test("a sentence over budget is split at word boundaries, keeping every word", () => {
  const long = Array.from({ length: 100 }, (_, i) => `w${i}`).join(" ");
  const chunks = chunkDocument(textDoc([long]), { targetTokens: 20, overlapTokens: 3, countTokens: wordCounter });
  assert.ok(chunks.length >= 6);
  const overlaps = checkUniqueWordChunks(chunks, 100, 3);
  assert.ok(
    overlaps.every((o) => o === 3),
    `word-level overlap for split units: ${overlaps}`,
  );
  assert.ok(chunks.every((c) => c.tokens <= 20));
});

test("a giant single word is split by characters and nothing is lost", () => {
  const giant = "abcdefghijklmnopqrstuvwxyz".repeat(40); // 1040 chars = 260 tokens with charCounter
  const doc = textDoc([`Before the blob. ${giant} After the blob.`]);
  const chunks = chunkDocument(doc, { targetTokens: 32, overlapTokens: 4, countTokens: charCounter });
  assert.ok(chunks.length >= 9, `${chunks.length} chunks`);
  for (const c of chunks) assert.ok(charCounter(c.text) <= 30 && c.tokens === charCounter(c.text) + 2, c.text);
  // Rebuild the word from the chunks' pieces (no overlap is possible: each piece alone exceeds the overlap).
  const blobPieces = chunks.flatMap((c) => words(c.text)).filter((w) => /^[a-z]{4,}$/.test(w) && w.length > 10);
  assert.equal(blobPieces.join(""), giant);
  assert.match(chunks[0].text, /^Before the blob\./);
  assert.match(chunks[chunks.length - 1].text, /After the blob\.$/);
});

test("transcript chunks keep speakers, start and end; segments join with newlines", () => {
  const doc = transcriptDoc([
    { speaker: "Ann", start: 0, end: 2, text: "Hello everyone." },
    { speaker: "Bob", start: 2.5, end: 4, text: "Hi Ann." },
    { speaker: "Ann", start: 4.2, end: 9, text: "Let us start with the budget review today." },
    { speaker: "Cleo", text: "No timestamps on this one." },
    { speaker: "Bob", start: 12, end: 13, text: "Agreed." },
  ]);
  // Budget 10 words: 2 + 2 fit, adding the 8-word turn would not.
  const chunks = chunkDocument(doc, { targetTokens: 12, overlapTokens: 0, countTokens: wordCounter });
  assert.deepEqual(
    chunks.map((c) => [c.text, c.metadata]),
    [
      ["Hello everyone.\nHi Ann.", { speakers: ["Ann", "Bob"], start: 0, end: 4, chars: 23 }],
      ["Let us start with the budget review today.", { speakers: ["Ann"], start: 4.2, end: 9, chars: 42 }],
      ["No timestamps on this one.\nAgreed.", { speakers: ["Cleo", "Bob"], start: 12, end: 13, chars: 34 }],
    ],
  );
  assert.deepEqual(
    chunks.map((c) => c.tokens),
    [6, 10, 8],
  );
});

// ---------------------------------------------------------------- real tokenizer (optional)

function loadXlmr(): ((text: string) => number) | undefined {
  if (!existsSync(TOKENIZER_DIR)) return undefined;
  const file = readdirSync(TOKENIZER_DIR).find((f) => f.endsWith(".json.gz"));
  if (!file) return undefined;
  const tokenizer = new Tokenizer(JSON.parse(gunzipSync(readFileSync(join(TOKENIZER_DIR, file))).toString("utf8")), {});
  return (text) => tokenizer.encode(text, { add_special_tokens: false }).ids.length;
}

async function readAll(file: string): Promise<SourceDocument[]> {
  const docs: SourceDocument[] = [];
  for await (const ev of readDocuments(file)) if (ev.kind === "document") docs.push(ev.doc);
  return docs;
}

test("real XLM-R tokenizer: budget holds and no words are lost on samples and real transcripts", async (t) => {
  const count = loadXlmr();
  if (!count) {
    t.skip(`XLM-R tokenizer not found in ${TOKENIZER_DIR} (sibling "shared" reference folder)`);
    return;
  }
  const files = [
    join(ROOT, "samples", "articles.jsonl"),
    join(ROOT, "samples", "standup-meeting.json"),
    join(ROOT, "samples", "webinar.vtt"),
  ];
  if (existsSync(TRANSCRIPTS)) {
    files.push(
      join(TRANSCRIPTS, "en_qmsum_meetings", "Bed002.json"),
      join(TRANSCRIPTS, "en_us_inaugural_addresses", "1789-Washington.txt"),
    );
    const gl = readdirSync(join(TRANSCRIPTS, "gl_galician_parliament"))
      .filter((f) => f.endsWith(".txt"))
      .sort()[0];
    files.push(join(TRANSCRIPTS, "gl_galician_parliament", gl));
  }
  for (const file of files) {
    for (const doc of await readAll(file)) {
      for (const [target, overlap] of [
        [128, 16],
        [512, 64],
        [64, 0],
      ] as const) {
        const chunks = chunkDocument(doc, { targetTokens: target, overlapTokens: overlap, countTokens: count });
        for (const c of chunks) {
          assert.ok(c.tokens <= target, `${doc.id} chunk ${c.index}: ${c.tokens} > ${target}`);
          assert.equal(c.tokens, count(c.text) + 2);
        }
        if (overlap === 0) {
          // Without overlap, the chunks' non-whitespace characters are exactly the document's, in order.
          const squash = (t: string) => t.replace(/\s+/g, "");
          const expected = doc.segments.map((s) => squash(s.text)).join("");
          assert.ok(chunks.map((c) => squash(c.text)).join("") === expected, `${doc.id}: text lost or reordered`);
        }
      }
    }
  }
});

test("real XLM-R tokenizer: giant word and long unbroken CJK-like text are split within budget", (t) => {
  const count = loadXlmr();
  if (!count) {
    t.skip(`XLM-R tokenizer not found in ${TOKENIZER_DIR}`);
    return;
  }
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const giant = Array.from(
    { length: 3000 },
    () => "abcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(rand() * 36)],
  ).join("");
  const cjk = "東京都は日本の首都であり世界有数の大都市です".repeat(60);
  const doc = textDoc([`Intro sentence. ${giant} Outro sentence.`, cjk]);
  const chunks = chunkDocument(doc, { targetTokens: 64, overlapTokens: 8, countTokens: count });
  assert.ok(chunks.length > 10);
  for (const c of chunks) assert.ok(c.tokens <= 64 && c.text.length > 0, `${c.tokens} tokens`);
  const joined = chunks.map((c) => c.text).join("");
  assert.ok(joined.includes(giant.slice(0, 20)) && chunks.some((c) => c.text.endsWith("Outro sentence.")));
  assert.deepEqual(chunkDocument(doc, { targetTokens: 64, overlapTokens: 8, countTokens: count }), chunks);
});
