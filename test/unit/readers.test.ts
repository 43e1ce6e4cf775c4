/**
 * Tests for the producer's input readers (`readDocuments`): every format on
 * the sample files, the malformed-input paths (bad JSONL lines, broken cues,
 * invalid UTF-8, control characters, missing files, size caps), and, when
 * the shared reference corpus is present next to the repo, real transcripts.
 * Temporary inputs are written to a fresh OS temp directory per run.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReadEvent, SourceDocument } from "../../producer/document.js";
import { readDocuments, type ReadOptions } from "../../producer/readers/index.js";
import { cleanText, decodeUtf8 } from "../../producer/readers/text-hygiene.js";
import { referenceRoot, repoRoot } from "../../kit/harness.js";

const ROOT = repoRoot;
const SAMPLES = join(ROOT, "samples");
const TRANSCRIPTS = join(referenceRoot, "data", "transcripts");
let tmp = "";

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "readers-test-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function collect(
  file: string,
  opts?: ReadOptions,
): Promise<{ docs: SourceDocument[]; skipped: Extract<ReadEvent, { kind: "skipped" }>[] }> {
  const docs: SourceDocument[] = [];
  const skipped: Extract<ReadEvent, { kind: "skipped" }>[] = [];
  for await (const ev of readDocuments(file, opts)) {
    if (ev.kind === "document") docs.push(ev.doc);
    else skipped.push(ev);
  }
  return { docs, skipped };
}

async function tmpFile(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(tmp, name);
  await writeFile(path, content);
  return path;
}

// ---------------------------------------------------------------- samples

test("transcript JSON sample: 40 segments, 4 speakers, exact timestamps", async () => {
  const { docs, skipped } = await collect(join(SAMPLES, "standup-meeting.json"));
  assert.deepEqual(skipped, []);
  assert.equal(docs.length, 1);
  const doc = docs[0];
  assert.equal(doc.id, "standup-2024-05-14");
  assert.equal(doc.kind, "transcript");
  assert.equal(doc.segments.length, 40);
  assert.deepEqual([...new Set(doc.segments.map((s) => s.speaker))], ["Priya", "Marcus", "Lena", "Tomas"]);
  assert.deepEqual(doc.segments[0], {
    text: "Morning, everyone. Let's keep this to fifteen minutes, we have the release review right after.",
    speaker: "Priya",
    start: 3,
    end: 9.6,
  });
  assert.equal(doc.segments[39].end, 260.2);
  assert.equal(doc.metadata.team, "platform");
  assert.equal(doc.metadata.format, "transcript-json");
  assert.equal(doc.metadata.invalid_utf8, undefined);
});

test("SRT sample: 30 cues, multi-line text joined, tags stripped, timestamps exact", async () => {
  const { docs, skipped } = await collect(join(SAMPLES, "keynote.srt"), { idPrefix: "demo:" });
  assert.deepEqual(skipped, []);
  const [doc] = docs;
  assert.equal(doc.id, "demo:keynote");
  assert.equal(doc.kind, "transcript");
  assert.equal(doc.segments.length, 30);
  assert.deepEqual(doc.segments[0], { text: "Good morning, and thank you all for coming.", start: 1.5, end: 5.86 });
  assert.deepEqual(doc.segments[1], {
    text: "I know the coffee line was long, so I'll try to earn your attention.",
    start: 6.11,
    end: 12.99,
  });
  assert.equal(doc.segments[6].text, "Trust is the word I want to talk about today.");
  assert.equal(doc.metadata.cues, 30);
  assert.equal(doc.metadata.skipped_cues, 0);
});

test("VTT sample: header/NOTE/STYLE ignored, identifiers and settings handled, voices become speakers", async () => {
  const { docs, skipped } = await collect(join(SAMPLES, "webinar.vtt"));
  assert.deepEqual(skipped, []);
  const [doc] = docs;
  assert.equal(doc.id, "webinar");
  assert.equal(doc.segments.length, 30);
  assert.deepEqual(doc.segments[0], {
    text: "Hi everyone, welcome to today's webinar on planning a kitchen garden.",
    speaker: "Dana",
    start: 4,
    end: 9.4,
  });
  assert.deepEqual(doc.segments[3], {
    text: "Let's start with the question we get most often: where do I even begin?",
    speaker: "Dana",
    start: 19.5,
    end: 26.1,
  });
  assert.equal(doc.segments[9].text, "For containers, buy a good potting mix. Garden soil gets compacted in pots.");
  assert.equal(doc.segments[9].speaker, "Felix");
  assert.equal(doc.segments[29].end, 181.1);
  assert.deepEqual([...new Set(doc.segments.map((s) => s.speaker))], ["Dana", "Felix"]);
  assert.ok(doc.segments.every((s) => !s.text.includes("<") && !s.text.includes("Captions edited")));
});

test("JSONL sample: 8 documents with ids, line numbers and metadata", async () => {
  const { docs, skipped } = await collect(join(SAMPLES, "articles.jsonl"));
  assert.deepEqual(skipped, []);
  assert.deepEqual(
    docs.map((d) => d.id),
    ["notice-0001", "news-0002", "3", "essay-0004", "nature-0005", "eng-0006", "travel-0007", "history-0008"],
  );
  assert.deepEqual(
    docs.map((d) => d.source.line),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.ok(docs.every((d) => d.kind === "text" && d.segments.length === 1));
  assert.deepEqual(docs[3].metadata.author, { name: "R. Okafor" });
  assert.equal(docs[0].metadata.title, "Longer library hours on Thursdays");
  const words = docs.map((d) => d.segments[0].text.split(/\s+/).length);
  assert.equal(words[0], 13);
  assert.ok(words[7] > 1200, `longest article has ${words[7]} words`);
});

test("plain text sample: one document, one segment per paragraph", async () => {
  const { docs, skipped } = await collect(join(SAMPLES, "notes.txt"), { idPrefix: "x/" });
  assert.deepEqual(skipped, []);
  assert.equal(docs.length, 1);
  assert.equal(docs[0].id, "x/notes");
  assert.equal(docs[0].kind, "text");
  assert.equal(docs[0].segments.length, 6);
  assert.equal(docs[0].segments[0].text, "Notes from the allotment committee, spring planning session");
  assert.ok(docs[0].segments[5].text.startsWith("Next meeting:"));
});

// ---------------------------------------------------------------- JSONL failures

test("malformed JSONL: every bad line is reported with its 1-based line number; good lines survive", async () => {
  const lines = [
    `{"id": "a", "text": "First good record."}`, // 1
    ``, // 2 blank: ignored
    `{"id": "b", "text": "unterminated}`, // 3 invalid JSON
    `{"text": "no id here"}`, // 4
    `{"id": true, "text": "bool id"}`, // 5
    `{"id": "c"}`, // 6
    `{"id": "d", "text": "x", "metadata": [1, 2]}`, // 7
    `{"id": "e", "text": "   \\n\\t "}`, // 8 empty text
    `{"id": "a", "text": "Duplicate of line 1."}`, // 9
    `[1, 2, 3]`, // 10
    `{"id": 42, "text": "Numeric id, CRLF line ending."}\r`, // 11
    `   `, // 12 whitespace only: ignored
    `{"id": "f", "text": 7}`, // 13
  ];
  const file = await tmpFile("bad.jsonl", lines.join("\n"));
  const { docs, skipped } = await collect(file);
  assert.deepEqual(
    docs.map((d) => [d.id, d.source.line]),
    [
      ["a", 1],
      ["42", 11],
    ],
  );
  assert.equal(docs[1].segments[0].text, "Numeric id, CRLF line ending.");
  assert.deepEqual(
    skipped.map((s) => s.line),
    [3, 4, 5, 6, 7, 8, 9, 10, 13],
  );
  const reasons = skipped.map((s) => s.reason);
  assert.match(reasons[0], /^line 3: invalid JSON: /);
  assert.equal(reasons[1], `line 4: missing "id"`);
  assert.equal(reasons[2], `line 5: "id" must be a string or a number, got boolean`);
  assert.equal(reasons[3], `line 6: missing "text"`);
  assert.equal(reasons[4], `line 7: "metadata" must be an object, got array`);
  assert.match(reasons[5], /^line 8: empty text/);
  assert.equal(reasons[6], `line 9: duplicate id "a" (first seen on line 1)`);
  assert.match(reasons[7], /^line 10: expected a JSON object/);
  assert.equal(reasons[8], `line 13: "text" must be a string, got number`);
  assert.ok(skipped.every((s) => s.file === file));
});

test("JSONL: a line over the line-size cap is skipped, the next line still read", async () => {
  const big = `{"id": "big", "text": "${"a ".repeat(200)}"}`;
  const file = await tmpFile("long.jsonl", `${big}\n{"id": "small", "text": "fine"}\n`);
  const { docs, skipped } = await collect(file, { maxLineBytes: 100 });
  assert.deepEqual(
    docs.map((d) => d.id),
    ["small"],
  );
  assert.equal(skipped.length, 1);
  assert.equal(skipped[0].line, 1);
  assert.match(skipped[0].reason, /^line 1: line is .* above the 100 B line limit/);
});

// ---------------------------------------------------------------- hygiene

test("invalid UTF-8 bytes are replaced, flagged in metadata, and never thrown (text file)", async () => {
  const bytes = Buffer.concat([
    Buffer.from("Caf"),
    Buffer.from([0xc3]),
    Buffer.from(" ok\n\nsecond "),
    Buffer.from([0xff, 0xfe]),
    Buffer.from(" para"),
  ]);
  const file = await tmpFile("bad-utf8.txt", bytes);
  const { docs, skipped } = await collect(file);
  assert.deepEqual(skipped, []);
  assert.equal(docs[0].metadata.invalid_utf8, true);
  assert.equal(docs[0].segments[0].text, "Caf\uFFFD ok");
  assert.equal(docs[0].segments[1].text, "second \uFFFD\uFFFD para");
});

test("invalid UTF-8 in one JSONL line flags only that document", async () => {
  const bytes = Buffer.concat([
    Buffer.from(`{"id": "clean", "text": "all good"}\n{"id": "dirty", "text": "bad `),
    Buffer.from([0xe2, 0x28, 0xa1]),
    Buffer.from(` byte"}\n`),
  ]);
  const file = await tmpFile("bad-utf8.jsonl", bytes);
  const { docs, skipped } = await collect(file);
  assert.deepEqual(skipped, []);
  assert.equal(docs[0].metadata.invalid_utf8, undefined);
  assert.equal(docs[1].metadata.invalid_utf8, true);
  assert.ok(docs[1].segments[0].text.includes("\uFFFD"));
});

test("NUL, other C0 controls and lone surrogates are cleaned in text and metadata", async () => {
  const line = JSON.stringify({
    id: "ctl",
    text: "a\u0000b\u0007c\td\u001Be \uD800 f \uDC00g 😀",
    metadata: { note: "x\u0000y\uDBFF" },
  });
  const file = await tmpFile("ctl.jsonl", `${line}\n`);
  const { docs } = await collect(file);
  assert.equal(docs[0].segments[0].text, "abc\tde \uFFFD f \uFFFDg 😀");
  assert.equal(docs[0].metadata.note, "xy\uFFFD");
  // Raw control bytes directly in a text file too (\r\n normalised, form feed removed).
  const txt = await tmpFile("ctl.txt", "one\u0000 two\r\n\r\nthree\u000Cfour\rfive");
  const { docs: tdocs } = await collect(txt);
  assert.deepEqual(
    tdocs[0].segments.map((s) => s.text),
    ["one two", "threefour\nfive"],
  );
});

test("cleanText/decodeUtf8 units: BOM dropped, surrogate pairs kept, invalid flagged", () => {
  assert.equal(cleanText("\uFEFFhi\r\nthere\u007F"), "hi\nthere");
  assert.equal(cleanText("\uD83D\uDE00 ok \uDE00\uD83D"), "\uD83D\uDE00 ok \uFFFD\uFFFD");
  assert.deepEqual(decodeUtf8(Buffer.from("\uFEFFplain", "utf8")), { text: "plain", invalidUtf8: false });
  assert.deepEqual(decodeUtf8(Buffer.from([0x61, 0x80])), { text: "a\uFFFD", invalidUtf8: true });
});

test("empty and whitespace-only documents are skipped with reason 'empty text'", async () => {
  const file = await tmpFile("blank.txt", " \n\n\t \n");
  const { docs, skipped } = await collect(file);
  assert.equal(docs.length, 0);
  assert.deepEqual(skipped, [{ kind: "skipped", file, reason: "empty text" }]);
});

// ---------------------------------------------------------------- file-level failures

test("missing file yields exactly one skipped event with the OS error", async () => {
  const file = join(tmp, "does-not-exist.srt");
  const { docs, skipped } = await collect(file);
  assert.equal(docs.length, 0);
  assert.equal(skipped.length, 1);
  assert.match(skipped[0].reason, /ENOENT/);
  const jsonl = await collect(join(tmp, "nope.jsonl"));
  assert.equal(jsonl.skipped.length, 1);
  assert.match(jsonl.skipped[0].reason, /^cannot read file: ENOENT/);
});

test("whole-file formats above the size cap are skipped with the limit in the reason", async () => {
  const file = await tmpFile("big.txt", "word ".repeat(100));
  const { docs, skipped } = await collect(file, { maxFileBytes: 64 });
  assert.equal(docs.length, 0);
  assert.match(skipped[0].reason, /file is 500 B, above the 64 B limit/);
});

test("unsupported extension is skipped unless a format is forced", async () => {
  const file = await tmpFile("doc.pdf", "Some text.");
  const auto = await collect(file);
  assert.match(auto.skipped[0].reason, /unsupported file extension "\.pdf"/);
  const forced = await collect(file, { format: "text" });
  assert.equal(forced.docs[0].segments[0].text, "Some text.");
});

// ---------------------------------------------------------------- subtitles

test("SRT with BOM + CRLF, missing blank line between cues, and a malformed cue", async () => {
  const srt = [
    "1",
    "00:00:01,000 --> 00:00:02,500",
    "<b>Hello</b> there,",
    "general.",
    "",
    "2",
    "00:00:03,000 --> 00:00:0X,000",
    "broken timing",
    "",
    "3",
    "01:02:03,004 --> 01:02:05,678",
    "Second good cue.",
    "4",
    "01:02:06,000 --> 01:02:07,000",
    "{\\an8}Third, after a missing blank line.",
    "",
    "5",
    "00:00:09,000 --> 00:00:08,000",
    "ends before it starts",
    "",
  ].join("\r\n");
  const file = await tmpFile("crlf.srt", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(srt)]));
  const { docs, skipped } = await collect(file);
  assert.deepEqual(docs[0].segments, [
    { text: "Hello there, general.", start: 1, end: 2.5 },
    { text: "Second good cue.", start: 3723.004, end: 3725.678 },
    { text: "Third, after a missing blank line.", start: 3726, end: 3727 },
  ]);
  assert.deepEqual(
    skipped.map((s) => s.line),
    [7, 18],
  );
  assert.match(skipped[0].reason, /^line 7: malformed cue timing/);
  assert.match(skipped[1].reason, /^line 18: cue ends \(8s\) before it starts \(9s\)/);
  assert.equal(docs[0].metadata.skipped_cues, 2);
  assert.equal(docs[0].metadata.cues, 3);
});

test("VTT without hours, with hours, multi-voice cue, entities, inline tags and timestamps", async () => {
  const vtt = [
    "WEBVTT",
    "",
    "00:01.250 --> 00:03.000 line:0 align:end",
    "<v.loud Ann Lee>Hi &amp; welcome</v>",
    "",
    "intro-2",
    "01:00:00.000 --> 01:00:01.500",
    "<v Bob>Hello <00:00:01.000><c.yellow>again</c></v>",
    "<v Ann Lee><i>Bye</i> &lt;3",
    "",
    "NOTE a comment",
    "spanning lines",
    "",
    "00:05.000 --> 00:06.000",
    "No voice here &#x263A;",
    "",
    "00:07.000 --> 00:08.000",
    "<v Carl>",
    "",
  ].join("\n");
  const file = await tmpFile("voices.vtt", vtt);
  const { docs, skipped } = await collect(file);
  assert.deepEqual(docs[0].segments, [
    { text: "Hi & welcome", speaker: "Ann Lee", start: 1.25, end: 3 },
    { text: "Hello again", speaker: "Bob", start: 3600, end: 3601.5 },
    { text: "Bye <3", speaker: "Ann Lee", start: 3600, end: 3601.5 },
    { text: "No voice here \u263A", start: 5, end: 6 },
  ]);
  assert.deepEqual(
    skipped.map((s) => [s.line, s.reason]),
    [[17, "line 17: cue has no text"]],
  );
});

test("a .vtt file without the WEBVTT signature is skipped as a whole", async () => {
  const file = await tmpFile("fake.vtt", "00:01.000 --> 00:02.000\nhello\n");
  const { docs, skipped } = await collect(file);
  assert.equal(docs.length, 0);
  assert.match(skipped[0].reason, /not a WebVTT file/);
});

// ---------------------------------------------------------------- transcript JSON shapes

test("transcript JSON: bad segments skipped with index, id falls back to basename, QMSum shape, other JSON rejected", async () => {
  const generic = await tmpFile(
    "talk-7.json",
    JSON.stringify({
      segments: [
        { speaker: "A", start: 0, end: 1.5, text: "One." },
        { speaker: "B", start: 2, end: 1, text: "Backwards." },
        { speaker: "B", text: "   " },
        { speaker: "A", start: 3, end: 4, text: 12 },
        { speaker: "B", start: 5, end: 6, text: "Two." },
      ],
    }),
  );
  const g = await collect(generic);
  assert.equal(g.docs[0].id, "talk-7");
  assert.deepEqual(
    g.docs[0].segments.map((s) => s.text),
    ["One.", "Two."],
  );
  assert.deepEqual(
    g.skipped.map((s) => s.reason),
    [`segments[1]: "end" (1) is before "start" (2)`, `segments[3]: "text" must be a string, got number`],
  );
  assert.equal(g.docs[0].metadata.empty_segments, 1);

  const qmsum = await tmpFile(
    "Mtg01.json",
    JSON.stringify({
      topic_list: [],
      meeting_transcripts: [
        { speaker: "PhD A", content: "We 're on ." },
        { speaker: "Professor B", content: "OK ." },
      ],
    }),
  );
  const q = await collect(qmsum);
  assert.equal(q.docs[0].id, "Mtg01");
  assert.equal(q.docs[0].metadata.format, "qmsum");
  assert.deepEqual(q.docs[0].segments, [
    { text: "We 're on .", speaker: "PhD A" },
    { text: "OK .", speaker: "Professor B" },
  ]);

  const other = await tmpFile("config.json", JSON.stringify({ name: "x", version: 2 }));
  const o = await collect(other);
  assert.equal(o.docs.length, 0);
  assert.match(o.skipped[0].reason, /^not a transcript: .*found object with keys: name, version/);

  const broken = await tmpFile("broken.json", "{ nope");
  assert.match((await collect(broken)).skipped[0].reason, /^invalid JSON: /);
});

// ---------------------------------------------------------------- real transcripts (optional)

test("real QMSum meeting transcripts read as transcripts with speakers", async (t) => {
  const dir = join(TRANSCRIPTS, "en_qmsum_meetings");
  if (!existsSync(dir)) {
    t.skip(`reference transcripts not found at ${dir} (they live in a sibling "shared" folder of the repo)`);
    return;
  }
  const files = (await readdir(dir))
    .filter((f) => f.endsWith(".json"))
    .sort()
    .slice(0, 5);
  assert.ok(files.length > 0);
  for (const f of files) {
    const { docs, skipped } = await collect(join(dir, f));
    assert.deepEqual(skipped, [], f);
    const doc = docs[0];
    assert.equal(doc.id, f.replace(/\.json$/, ""));
    assert.equal(doc.kind, "transcript");
    assert.equal(doc.metadata.format, "qmsum");
    assert.ok(doc.segments.length > 50, `${f}: ${doc.segments.length} segments`);
    assert.ok(doc.segments.every((s) => s.speaker && s.text.trim() !== "" && s.start === undefined));
    assert.ok(new Set(doc.segments.map((s) => s.speaker)).size >= 2, f);
  }
});

test("real inaugural address and Galician parliament .txt read as text documents", async (t) => {
  if (!existsSync(TRANSCRIPTS)) {
    t.skip(`reference transcripts not found at ${TRANSCRIPTS}`);
    return;
  }
  const { docs, skipped } = await collect(join(TRANSCRIPTS, "en_us_inaugural_addresses", "1789-Washington.txt"));
  assert.deepEqual(skipped, []);
  assert.equal(docs[0].id, "1789-Washington");
  assert.equal(docs[0].kind, "text");
  assert.ok(docs[0].segments.length > 3);
  assert.match(docs[0].segments[0].text, /^Fellow-Citizens of the Senate/);
  const glDir = join(TRANSCRIPTS, "gl_galician_parliament");
  const gl = (await readdir(glDir)).filter((f) => f.endsWith(".txt")).sort()[0];
  const g = await collect(join(glDir, gl));
  assert.equal(g.docs[0].kind, "text");
  assert.ok(g.docs[0].segments.length > 20);
  assert.equal(g.docs[0].metadata.invalid_utf8, undefined);
});
