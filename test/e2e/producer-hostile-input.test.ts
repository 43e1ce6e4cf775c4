/**
 * The producer findings of issue 13, each reproduced as filed: non-regular files named on the command
 * line or found in folders (ingest and backfill), two files that map to one document id, strings that
 * are not well-formed Unicode, and reader regexes that were quadratic on hostile cue text. The CLI runs
 * as a child process with a dry run (no Redis needed); the library parts run in process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { walkInputs } from "../../producer/backfill/input-walk.js";
import type { ReadEvent, SourceDocument } from "../../producer/document.js";
import { enqueueDocuments, reasonKey, type EnqueueOptions } from "../../producer/enqueue.js";
import { inputEntries } from "../../producer/input-files.js";
import { readDocuments } from "../../producer/readers/index.js";
import { repoRoot, testModel } from "../../kit/harness.js";

const cli = path.join(repoRoot, "dist", "producer", "cli.js");
const MIB = 1024 * 1024;
let tmp = "";
let modelDir = "";

before(async () => {
  modelDir = (await testModel()).dir;
  tmp = await mkdtemp(path.join(os.tmpdir(), "hostile-input-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Spawns the producer CLI; a hang fails the test through the timeout instead of hanging the suite. */
function runCli(args: string[]): { status: number | null; stdout: string; stderr: string; signal: string | null } {
  const { QDRANT_URL: _u, QDRANT_API_KEY: _k, ...rest } = process.env;
  const env = { ...rest, MODEL_DIR: modelDir, LOG_LEVEL: "warn", REDIS_URL: "redis://127.0.0.1:1" };
  return spawnSync(process.execPath, [cli, ...args], { env, encoding: "utf8", timeout: 60_000 });
}

function mkfifo(file: string): void {
  const r = spawnSync("mkfifo", [file]);
  assert.equal(r.status, 0, `mkfifo: ${r.stderr}`);
}

async function collect(file: string): Promise<ReadEvent[]> {
  const out: ReadEvent[] = [];
  for await (const ev of readDocuments(file)) out.push(ev);
  return out;
}

/** A folder with a readable file, a FIFO, a symlink to /dev/zero, a symlink loop, a broken link, a link to a file. */
async function hostileTree(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(path.join(dir, "sub"), { recursive: true });
  await writeFile(path.join(dir, "a.txt"), "A plain paragraph.\n");
  mkfifo(path.join(dir, "pipe.txt"));
  await symlink("/dev/zero", path.join(dir, "zero.jsonl"));
  await symlink("..", path.join(dir, "sub", "loop"));
  await symlink("missing.txt", path.join(dir, "broken.txt"));
  await symlink(path.join(dir, "a.txt"), path.join(dir, "sub", "linked.txt"));
  return dir;
}

const EXPECTED_TREE_SKIPS = {
  "broken symbolic link": 1,
  "not a regular file": 2,
  "symbolic link to a folder": 1,
};

test("a FIFO and a symlink to /dev/zero named on the command line are skipped at once, with their type", async () => {
  const fifo = path.join(tmp, "named.txt");
  mkfifo(fifo);
  const zero = path.join(tmp, "zero.vtt");
  await symlink("/dev/zero", zero);
  for (const [file, type] of [
    [fifo, /FIFO/],
    [zero, /character device/],
  ] as const) {
    const events = await collect(file);
    assert.equal(events.length, 1);
    assert.equal(events[0].kind, "skipped");
    assert.match((events[0] as { reason: string }).reason, /^not a regular file: /);
    assert.match((events[0] as { reason: string }).reason, type);
  }
  const r = runCli(["ingest", fifo, zero, "--dry-run", "--json"]);
  assert.equal(r.signal, null, "ingest hung on a FIFO or /dev/zero");
  const s = JSON.parse(r.stdout);
  assert.deepEqual(s.skippedByReason, { "not a regular file": 2 });
});

test("ingest: non-regular folder entries counted; symlink to a file read, to a folder not followed", async () => {
  const dir = await hostileTree("ingest-tree");
  const entries = [];
  for await (const e of inputEntries([dir])) entries.push(e.kind === "file" ? path.relative(dir, e.file) : e.reason);
  assert.ok(entries.includes("a.txt") && entries.includes(path.join("sub", "linked.txt")), entries.join(" | "));
  const r = runCli(["ingest", dir, "--dry-run", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.documents, 2);
  assert.deepEqual(s.skippedByReason, EXPECTED_TREE_SKIPS);
});

test("backfill: the same entries are skips in the walk and in the summary", async () => {
  const dir = await hostileTree("backfill-tree");
  const skips: string[] = [];
  for await (const e of walkInputs([dir])) if (e.kind === "skipped") skips.push(path.relative(dir, e.file));
  assert.deepEqual(skips, ["broken.txt", "pipe.txt", path.join("sub", "loop"), "zero.jsonl"]);
  const r = runCli(["backfill", dir, "--dry-run", "--json", "--no-progress"]);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.run.documents, 2);
  assert.deepEqual(s.skippedByReason, EXPECTED_TREE_SKIPS);
});

test("two files with one document id: the second is refused naming both files, unless allowed", async () => {
  const dir = path.join(tmp, "dup");
  await mkdir(dir);
  await writeFile(path.join(dir, "bad.srt"), "1\n00:00:01,000 --> 00:00:02,000\nA subtitle.\n");
  await writeFile(path.join(dir, "bad.txt"), "A text file.\n");
  for (const command of [["ingest"], ["backfill", "--no-progress"]]) {
    const r = runCli([command[0], dir, "--dry-run", "--json", ...command.slice(1)]);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.documents ?? s.run.documents, 1, command[0]);
    assert.deepEqual(s.skippedByReason, { "duplicate document id": 1 }, command[0]);
    const reason: string = s.skippedSamples[0].reason;
    assert.ok(reason.includes(path.join(dir, "bad.srt")) && reason.includes("bad.txt"), reason);
    assert.match(reason, /--id-prefix/);
    assert.match(reason, /--allow-duplicate-ids/);
  }
  const allowed = JSON.parse(runCli(["ingest", dir, "--dry-run", "--json", "--allow-duplicate-ids"]).stdout);
  assert.equal(allowed.documents, 2);
});

test("JSONL records repeating an id across files are refused too", async () => {
  const a = path.join(tmp, "a.jsonl");
  const b = path.join(tmp, "b.jsonl");
  await writeFile(a, '{"id":"same","text":"First."}\n');
  await writeFile(b, '{"id":"same","text":"Second."}\n{"id":"other","text":"Third."}\n');
  const s = JSON.parse(runCli(["ingest", a, b, "--dry-run", "--json"]).stdout);
  assert.equal(s.documents, 2);
  assert.equal(s.skippedSamples[0].line, 1);
  assert.match(s.skippedSamples[0].reason, /"same" is also the id of a document from .*a\.jsonl/);
});

test("lone surrogates: JSON escapes repaired and counted; a library doc with an ill-formed id refused", async () => {
  const file = path.join(tmp, "surrogates.jsonl");
  await writeFile(file, '{"id":"s1","text":"bad \\ud800 text","metadata":{"k\\udc00":"v\\ud800"}}\n');
  const events = await collect(file);
  assert.equal(events.length, 1);
  const doc = (events[0] as { doc: SourceDocument }).doc;
  assert.equal(doc.segments[0].text, "bad \uFFFD text");
  assert.deepEqual([doc.metadata["k\uFFFD"], doc.metadata.invalid_utf8], ["v\uFFFD", true]);

  const opts: EnqueueOptions = {
    countTokens: (t) => t.split(/\s+/).filter(Boolean).length,
    chunkTokens: 32,
    overlapTokens: 0,
    maxChunksPerJob: 8,
    attempts: 1,
    backoffMs: 1,
    removeOnComplete: 1,
    removeOnFail: 1,
    dryRun: true,
  };
  const lib = (id: string, text: string, speaker?: string): SourceDocument => ({
    id,
    kind: "transcript",
    segments: [{ text, speaker }],
    metadata: { note: "x\uDBFF" },
    source: { file: "mem" },
  });
  const docs = [doc, lib("ok", "fine \uD83D text", "Ann\uDC00"), lib("bad\uD800", "text")];
  const s = await enqueueDocuments(undefined, docs, opts);
  assert.equal(s.documents, 2);
  assert.equal(s.repaired, 2);
  assert.equal(s.skipped, 1);
  assert.match(s.skippedSamples[0].reason, /document id is not well-formed Unicode/);
});

test("skip reasons group by kind: cue timings and segment indexes do not make a category each", () => {
  const reasons = [
    'line 3: malformed cue timing: "00:00:01,5 --> x"',
    'line 9: malformed cue timing: "99:00 --> 1"',
    'segments[0]: "text" must be a string, got object',
    'segments[12]: "text" must be a string, got object',
  ];
  assert.deepEqual(
    [...new Set(reasons.map(reasonKey))],
    ["malformed cue timing", '"text" must be a string, got object'],
  );
});

test("hostile cue text (unclosed tags, whitespace runs) is read in linear time", { timeout: 120_000 }, async () => {
  const cue = (format: "vtt" | "srt") =>
    format === "vtt" ? "WEBVTT\n\n00:00.000 --> 00:01.000\n" : "1\n00:00:00,000 --> 00:00:01,000\n";
  const bodies: Record<string, string> = {
    "unclosed.vtt": cue("vtt") + "<".repeat(2 * MIB) + "\n",
    "unclosed.srt": cue("srt") + "<a".repeat(MIB) + "{\\".repeat(MIB / 2) + "\n",
    "spaces.srt": cue("srt") + " ".repeat(2 * MIB) + "x\n",
  };
  for (const [name, body] of Object.entries(bodies)) {
    const file = path.join(tmp, name);
    await writeFile(file, body);
    const started = performance.now();
    const events = await collect(file);
    const seconds = (performance.now() - started) / 1000;
    // Linear: well under a second here; the quadratic regexes took hours on 2 MiB.
    assert.ok(seconds < 20, `${name}: ${seconds.toFixed(1)} s`);
    assert.ok(
      events.some((e) => e.kind === "document"),
      `${name}: ${JSON.stringify(events).slice(0, 200)}`,
    );
  }
});
