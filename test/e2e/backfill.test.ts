/** The backfill producer against a real Redis: lazy, ordered input walking; JSONL resumed from
 *  a byte offset; checkpoints that resume exactly where a run stopped; the backlog gate's
 *  high- and low-water marks (drained here by a plain BullMQ worker: this file is about the
 *  producer; the embedding worker runs in backfill-big and reingest); the priority that puts
 *  live jobs first; the CLI's dry run, summary, non-TTY progress lines and bad input. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { Queue, Worker, type Job } from "bullmq";
import { redisConnection } from "../../shared/redis.js";
import { runBackfill, type BackfillOptions } from "../../producer/backfill.js";
import { BacklogAccount } from "../../producer/backfill/backlog.js";
import {
  checkpointKey,
  FileCheckpointStore,
  newCheckpoint,
  resumeConflict,
  type Checkpoint,
  type CheckpointStore,
} from "../../producer/backfill/checkpoint.js";
import { compareWalkPositions, walkInputs } from "../../producer/backfill/input-walk.js";
import { estimateEta } from "../../producer/backfill/progress.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../../producer/enqueue.js";
import { packBoundsFrom } from "../../producer/packer.js";
import { isPackData, jobDocIds } from "../../shared/pack.js";
import { readDocuments } from "../../producer/readers/index.js";
import { docText, writeJsonlCorpus, writeTextDocs } from "../../kit/corpus.js";
import { repoRoot, testConfig, uniqueQueue, waitFor } from "../../kit/harness.js";
import { suiteFixture } from "../support/suite-fixture.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const cli = path.join(repoRoot, "dist", "producer", "cli.js");
const fx = suiteFixture({ redis: REDIS_URL, tmpPrefix: "backfill-test-" });

const ENV = { CHUNK_TOKENS: "16", CHUNK_OVERLAP_TOKENS: "0", MAX_CHUNKS_PER_JOB: "8" };

function setup(prefix: string) {
  const name = uniqueQueue(prefix);
  const cfg = testConfig({ MODEL_DIR: fx.modelDir, QUEUE_NAME: name, REDIS_URL, ...ENV });
  const queue = new Queue(name, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
  fx.onCleanup(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    const keys = await fx.connection.keys(checkpointKey(cfg.QUEUE_PREFIX, name, "*"));
    if (keys.length > 0) await fx.connection.del(...keys);
  });
  const opts = (o: Partial<BackfillOptions>): BackfillOptions => ({
    inputs: [],
    countTokens: fx.countTokens,
    progress: "none",
    pollMs: 20,
    ...o,
  });
  return { name, cfg, queue, opts };
}

/** A BullMQ worker standing in for the embedding worker: completes each job after `ms`. */
function drainer(name: string, ms: number, concurrency = 4, seen?: string[]) {
  const w = new Worker(
    name,
    async (job: Job) => {
      seen?.push(job.data.docId);
      await new Promise((r) => setTimeout(r, ms));
      return { chunks: job.data.chunks.length, unchanged: 0 };
    },
    { connection: redisConnection(REDIS_URL), concurrency },
  );
  fx.onCleanup(async () => {
    await w.close();
    await (w.opts.connection as { quit(): Promise<unknown> }).quit();
  });
  return w;
}

const cliEnv = (extra: Record<string, string>) => {
  const { QDRANT_URL: _u, QDRANT_API_KEY: _k, ...rest } = process.env;
  return { ...rest, MODEL_DIR: fx.modelDir, LOG_LEVEL: "warn", ...ENV, ...extra };
};
const runCli = (args: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, [cli, ...args], { env: cliEnv(extra), encoding: "utf8", timeout: 120_000 });

test("inputs: folders walk depth first in code-unit order, globs are sorted, missing inputs are reported, a position resumes the walk", async () => {
  const w = path.join(fx.tmp, "walk");
  for (const d of ["a/y", "c"]) await mkdir(path.join(w, d), { recursive: true });
  for (const f of ["B.jsonl", "a.jsonl", "a/x.txt", "a/y/z.md", "b.srt", "c/q.vtt", "notes.csv"])
    await writeFile(path.join(w, f), "x");
  const inputs = [w, path.join(w, "**", "*.md"), path.join(fx.tmp, "nope"), path.join(w, "*.zzz")];
  const all = [];
  for await (const e of walkInputs(inputs))
    all.push(`${e.input}:${e.kind === "missing" ? `missing(${e.reason})` : path.relative(w, e.file)}`);
  assert.deepEqual(all, [
    "0:B.jsonl",
    "0:a/x.txt",
    "0:a/y/z.md",
    "0:a.jsonl",
    "0:b.srt",
    "0:c/q.vtt",
    "1:a/y/z.md",
    "2:missing(no such file or folder)",
    "3:missing(glob matched no files)",
  ]);
  const from = async (file: string, inclusive: boolean) => {
    const out = [];
    for await (const e of walkInputs([w], { from: { position: { input: 0, file: path.join(w, file) }, inclusive } }))
      out.push(path.relative(w, e.file));
    return out;
  };
  assert.deepEqual(await from("a/x.txt", false), ["a/y/z.md", "a.jsonl", "b.srt", "c/q.vtt"]);
  assert.deepEqual(await from("a/x.txt", true), ["a/x.txt", "a/y/z.md", "a.jsonl", "b.srt", "c/q.vtt"]);
  assert.deepEqual(await from("a.jsonl", false), ["b.srt", "c/q.vtt"]);
  assert.ok(
    compareWalkPositions({ input: 0, file: "a/z" }, { input: 0, file: "a.jsonl" }) < 0,
    "a folder's files sort before a sibling file that extends its name",
  );
  assert.ok(compareWalkPositions({ input: 1, file: "a" }, { input: 0, file: "z" }) > 0);
});

test("JSONL events carry byte offsets; reading from one yields exactly the remaining records", async () => {
  const file = path.join(fx.tmp, "offsets.jsonl");
  const lines = [
    '{"id":"a","text":"one ä"}',
    "",
    "{broken",
    '{"id":"b","text":"two"}',
    '{"id":"c","text":"three"}',
    '{"id":"d","text":"four"}',
  ];
  await writeFile(file, lines.join("\n"));
  const all = [];
  for await (const ev of readDocuments(file)) all.push(ev);
  assert.equal(all.length, 5);
  assert.equal(all[all.length - 1].offset, Buffer.byteLength(lines.join("\n")));
  const cut = all[2]; // the record with id "b", on line 4
  assert.equal(cut.kind === "document" && cut.doc.source.line, 4);
  const rest = [];
  for await (const ev of readDocuments(file, { start: { offset: cut.offset!, line: 4 } })) rest.push(ev);
  assert.deepEqual(
    rest.map((e) => (e.kind === "document" ? [e.doc.id, e.doc.source.line] : e.line)),
    [
      ["c", 5],
      ["d", 6],
    ],
  );
});

test("checkpoints: a file store round-trips atomically; other inputs, other settings or a corrupt file refuse to resume", async () => {
  const file = path.join(fx.tmp, "cp", "run.json");
  const store = new FileCheckpointStore(file);
  assert.equal(await store.load(), null);
  const settings = { format: "auto", idPrefix: "", chunkTokens: 16, overlapTokens: 0, maxChunksPerJob: 8 };
  const cp = newCheckpoint("r1", ["corpus"], settings);
  cp.position = { input: 0, file: "/x/a.jsonl", records: 7, offset: 1234, line: 9, complete: false };
  await store.save(cp);
  assert.deepEqual(await store.load(), cp);
  assert.equal(resumeConflict(cp, ["corpus"], settings), null);
  assert.match(resumeConflict(cp, ["other"], settings)!, /other inputs/);
  assert.match(
    resumeConflict(cp, ["corpus"], { ...settings, chunkTokens: 32 })!,
    /chunkTokens=16, this run has chunkTokens=32/,
  );
  await writeFile(file, "{not json");
  await assert.rejects(store.load(), /not JSON.*--restart/);
});

test("backlog accounting: this run's jobs by their chunks, unknown jobs at the mean, missed events reconciled", () => {
  const a = new BacklogAccount(64, 1000);
  assert.deepEqual(
    a.observe(3, 0),
    { jobs: 3, chunks: 192 },
    "before any job of ours, unknown jobs count at the fallback",
  );
  a.track("j1", 10, 0);
  a.track("j2", 2, 0);
  a.track("j3", 6, 500);
  assert.deepEqual(a.observe(5, 600), { jobs: 5, chunks: 18 + 2 * 6 }, "two unknown jobs at the mean of 6");
  assert.equal(a.finished("j2"), 2);
  assert.deepEqual(a.observe(2, 700), { jobs: 2, chunks: 16 });
  assert.deepEqual(
    a.observe(1, 800),
    { jobs: 1, chunks: 6 },
    "the queue holds fewer jobs than remembered: only the newest counts",
  );
  assert.equal(a.size, 2, "within the grace period nothing is forgotten (the completion event may still come)");
  assert.deepEqual(a.observe(1, 1200), { jobs: 1, chunks: 6 });
  assert.equal(a.size, 1, "past the grace period the oldest (j1) is forgotten");
  assert.equal(a.drainedChunks, 12);
  assert.equal(estimateEta({ chunks: 100, bytesDone: 50, bytesTotal: 200, backlogChunks: 20, drainPerSecond: 10 }), 32);
  assert.equal(
    estimateEta({ chunks: 100, bytesDone: 50, bytesTotal: null, backlogChunks: 20, drainPerSecond: 10 }),
    null,
  );
});

for (const packed of [false, true]) {
  test(`an interrupted run resumes where it stopped: across both runs every record is enqueued once${packed ? " (packed)" : ""}`, async () => {
    const s = setup("bf-resume");
    const dir = path.join(fx.tmp, packed ? "resume-packed" : "resume");
    const { ids } = await writeJsonlCorpus(path.join(dir, "jsonl"), {
      files: 3,
      docsPerFile: 40,
      sentencesPerDoc: 3,
      badEvery: 13,
    });
    await writeTextDocs(path.join(dir, "txt"), 6, 5);
    const file = new FileCheckpointStore(path.join(fx.tmp, packed ? "resume-packed.json" : "resume-checkpoint.json"));
    const ac = new AbortController();
    let saves = 0;
    const stopping: CheckpointStore = {
      describe: () => file.describe(),
      load: () => file.load(),
      clear: () => file.clear(),
      save: async (c: Checkpoint) => {
        await file.save(c);
        if (++saves === 4) ac.abort();
      },
    };
    const o = s.opts({
      inputs: [dir],
      bulkSize: 4,
      checkpointEveryMs: 0,
      marks: { highJobs: 10_000, lowJobs: 1, highChunks: 100_000, lowChunks: 1 },
      // Packs of 3 documents: the open pack closes at every bulk, so the checkpoint never passes a document not in Redis.
      pack: packed ? packBoundsFrom(s.cfg, { maxDocs: 3 }) : undefined,
    });
    const first = await runBackfill(s.cfg, { ...o, checkpointStore: stopping, signal: ac.signal });
    assert.equal(first.interrupted, true);
    assert.equal(first.complete, false);
    const saved = (await file.load())!;
    assert.equal(saved.position?.complete, false, "stopped inside a file");
    assert.ok(first.run.documents > 0 && first.run.documents < ids.length + 6);
    const second = await runBackfill(s.cfg, { ...o, checkpointStore: file });
    assert.equal(second.resumed, true);
    assert.equal(second.complete, true);
    assert.equal(first.run.documents + second.run.documents, ids.length + 6, "a record was read twice or never");
    assert.equal(first.run.skipped + second.run.skipped, 9, "bad lines reported once each");
    assert.deepEqual(second.total, { ...second.total, documents: ids.length + 6, skipped: 9, files: 9 });
    const jobs = await s.queue.getJobs(["prioritized"]);
    assert.equal(jobs.length, second.total.jobs, "jobs in Redis differ from the jobs counted");
    const parts = jobs.flatMap((j) =>
      isPackData(j.data) ? jobDocIds(j.data).map((id) => `${id}/0`) : [`${j.data.docId}/${j.data.part}`],
    );
    assert.equal(new Set(parts).size, parts.length, "a document (part) was enqueued twice");
    assert.equal(
      jobs.some((j) => isPackData(j.data)),
      packed,
      packed ? "nothing was packed" : "a job was packed",
    );
    const docs = new Set(parts.map((p) => p.slice(0, p.lastIndexOf("/"))));
    for (const id of ids) assert.ok(docs.has(id), `${id} never enqueued`);
    assert.ok(docs.has("note-0") && docs.has("note-5"));
    const third = await runBackfill(s.cfg, { ...o, checkpointStore: file });
    assert.equal(third.alreadyComplete, true);
    assert.equal(third.run.documents, 0);
  });
}

test("backpressure: the backlog stays within one bulk of the high-water marks (jobs, then chunks) and resumes under the low ones", async () => {
  for (const marks of [
    { highJobs: 30, lowJobs: 10, highChunks: 100_000, lowChunks: 50_000 },
    { highJobs: 10_000, lowJobs: 5_000, highChunks: 120, lowChunks: 40 },
  ]) {
    const s = setup("bf-gate");
    const dir = path.join(fx.tmp, `gate-${marks.highJobs}`);
    await writeJsonlCorpus(dir, { files: 2, docsPerFile: 150, sentencesPerDoc: 6 });
    let maxJobs = 0;
    let maxChunks = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const jobs = await s.queue.getJobs(["waiting", "prioritized", "active", "delayed"]);
        maxJobs = Math.max(maxJobs, jobs.length);
        maxChunks = Math.max(
          maxChunks,
          jobs.reduce((n, j) => n + (j?.data?.chunks?.length ?? 0), 0),
        );
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    drainer(s.name, 3, 2);
    const bulk = 5;
    const sum = await runBackfill(s.cfg, s.opts({ inputs: [dir], bulkSize: bulk, marks, wait: true }));
    sampling = false;
    await sampler;
    assert.equal(sum.complete, true);
    assert.equal(sum.worker?.drained, true);
    assert.equal(sum.worker?.completedJobs, sum.run.jobs);
    assert.ok(sum.backlog!.pauses > 0, "never paused: the test does not exercise the gate");
    const maxJobsPerBulk = bulk;
    const maxChunksPerBulk = bulk * 8;
    assert.ok(
      maxJobs <= marks.highJobs + maxJobsPerBulk,
      `backlog reached ${maxJobs} jobs, high-water ${marks.highJobs} + bulk ${bulk}`,
    );
    assert.ok(
      maxChunks <= marks.highChunks + maxChunksPerBulk,
      `backlog reached ${maxChunks} chunks, high-water ${marks.highChunks} + one bulk`,
    );
    assert.ok(
      sum.backlog!.peakJobs <= marks.highJobs + bulk && sum.backlog!.peakChunks <= marks.highChunks + maxChunksPerBulk,
    );
  }
});

test("priority: live jobs without a priority are served before a backfill's queued jobs", async () => {
  const s = setup("bf-prio");
  const dir = path.join(fx.tmp, "prio");
  await writeJsonlCorpus(dir, { files: 1, docsPerFile: 30, sentencesPerDoc: 2, idPrefix: "archive-" });
  const sum = await runBackfill(s.cfg, s.opts({ inputs: [dir] }));
  assert.equal((await s.queue.getJobCounts("prioritized")).prioritized, sum.run.jobs);
  const live = Array.from({ length: 3 }, (_, i) => ({
    id: `live-${i}`,
    kind: "text" as const,
    segments: [{ text: docText(i, 2) }],
    metadata: {},
    source: { file: "live" },
  }));
  await enqueueDocuments(s.queue, live, enqueueOptionsFrom(s.cfg, fx.countTokens));
  const order: string[] = [];
  drainer(s.name, 1, 1, order);
  await waitFor(() => order.length === sum.run.jobs + 3, 20_000, "all jobs processed");
  assert.deepEqual(
    order.slice(0, 3).sort(),
    ["live-0", "live-1", "live-2"],
    `processing order: ${order.slice(0, 6).join(", ")}`,
  );
});

test("dry run: reads, chunks and counts without Redis, matches ingest's totals, and sizes the run", () => {
  const r = runCli(["backfill", path.join(repoRoot, "samples"), "--dry-run", "--json", "--tokens-per-second", "1000"], {
    REDIS_URL: "redis://127.0.0.1:1",
  });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  const ingest = JSON.parse(
    runCli(["ingest", path.join(repoRoot, "samples"), "--dry-run", "--json"], { REDIS_URL: "redis://127.0.0.1:1" })
      .stdout,
  );
  assert.equal(s.dryRun, true);
  assert.equal(s.checkpoint, null);
  for (const k of ["documents", "jobs", "chunks", "tokens"])
    assert.equal(s.run[k], ingest[k], `${k} differs from ingest --dry-run`);
  assert.equal(s.run.files, 5);
  assert.ok(s.estimate.meanJobDataBytes > 0 && s.estimate.peakRedisBytes > 0);
  assert.equal(s.estimate.embedSeconds, Math.round(s.run.tokens / 1000));
  assert.ok(s.estimate.assumptions.some((a: string) => /1000 tokens\/s/.test(a)));
  assert.ok(s.maxRssBytes > 0);
});

test("CLI: malformed records are reported by file and line, not fatal; non-TTY progress is JSON lines; folders and globs expand", async () => {
  const s = setup("bf-cli");
  const dir = path.join(fx.tmp, "cli");
  await writeJsonlCorpus(path.join(dir, "jsonl"), { files: 2, docsPerFile: 20, sentencesPerDoc: 3, badEvery: 7 });
  await mkdir(path.join(dir, "subs"), { recursive: true });
  await writeFile(
    path.join(dir, "subs", "talk.srt"),
    await readFile(path.join(repoRoot, "samples", "keynote.srt"), "utf8"),
  );
  const r = runCli(
    [
      "backfill",
      path.join(dir, "jsonl"),
      path.join(dir, "subs", "*.srt"),
      "--json",
      "--progress-interval",
      "0.05",
      "--bulk",
      "2",
    ],
    { QUEUE_NAME: s.name },
  );
  assert.equal(r.status, 0, r.stderr);
  const sum = JSON.parse(r.stdout);
  assert.equal(sum.run.files, 3);
  assert.equal(sum.run.documents, 2 * 20 - 2 * 2 + 1);
  assert.equal(sum.skippedByReason["invalid JSON"], 4);
  assert.match(`${sum.skippedSamples[0].file}:${sum.skippedSamples[0].line}`, /shard-0000\.jsonl:7$/);
  assert.equal(sum.priority, 1_000_000);
  const lines = r.stderr
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const progress = lines.filter((l) => l.msg === "backfill progress");
  assert.ok(progress.length >= 1, r.stderr);
  for (const k of [
    "files",
    "documents",
    "chunks",
    "tokens",
    "enqueueChunksPerSecond",
    "backlogJobs",
    "backlogChunks",
    "etaSeconds",
    "drainChunksPerSecond",
  ]) {
    assert.ok(k in progress[0], `progress line lacks ${k}`);
  }
  const jobs = await s.queue.getJobs(["prioritized"]);
  assert.equal(jobs.length, sum.run.jobs);
  assert.ok(jobs.every((j) => j.opts.priority === 1_000_000));
  assert.ok(jobs.some((j) => j.data.docId === "talk"));
  const again = runCli(["backfill", path.join(dir, "jsonl"), path.join(dir, "subs", "*.srt")], { QUEUE_NAME: s.name });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /already complete/);
  const bad = runCli(["backfill", dir, "--high-water-jobs", "10", "--low-water-jobs", "10"], { QUEUE_NAME: s.name });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /low-water marks must be below high-water marks \(jobs 10 vs 10/);
});

test("the dry run's Redis estimate matches what the jobs take in Redis (MEMORY USAGE)", async (t) => {
  const s = setup("bf-mem");
  const dir = path.join(fx.tmp, "mem");
  await writeJsonlCorpus(dir, { files: 2, docsPerFile: 60, sentencesPerDoc: 12 });
  const dry = await runBackfill(s.cfg, s.opts({ inputs: [dir], dryRun: true }));
  await runBackfill(s.cfg, s.opts({ inputs: [dir] }));
  const jobs = await s.queue.getJobs(["prioritized"]);
  assert.equal(jobs.length, dry.run.jobs);
  let bytes = Number(await fx.connection.call("MEMORY", "USAGE", `${s.cfg.QUEUE_PREFIX}:${s.name}:prioritized`));
  for (const j of jobs)
    bytes += Number(await fx.connection.call("MEMORY", "USAGE", `${s.cfg.QUEUE_PREFIX}:${s.name}:${j.id}`));
  const estimate = dry.estimate!.unboundedRedisBytes;
  t.diagnostic(
    `${jobs.length} jobs: Redis MEMORY USAGE ${bytes} B, estimated ${estimate} B (${(bytes / estimate).toFixed(2)}x)`,
  );
  assert.ok(
    bytes <= estimate * 1.1 && bytes >= estimate * 0.6,
    `Redis holds ${bytes} B for ${jobs.length} jobs; the estimate said ${estimate} B`,
  );
});
