/** Backfill at volume, as a user runs it: the CLI in a child process over a generated corpus
 *  of 200,000+ chunks, a real worker (ONNX on the generated model, tokenizer threads) in this
 *  process writing to the strict Qdrant test server, and a real Redis. The first backfill is
 *  killed (SIGKILL) partway and restarted. Checked: the final point ids are exactly the
 *  expected ones; no point was written twice; the backlog, sampled throughout, never exceeds
 *  a high-water mark by more than one bulk; live jobs enqueued meanwhile complete quickly;
 *  peak memory of the backfill process stays bounded. A second test reads a ~490 MiB archive
 *  in a dry run to show memory does not grow with the corpus. Figures go to the test's
 *  diagnostics (`node --test` prints them). */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { once } from "node:events";
import { peakRssBytes } from "../../shared/process-memory.js";
import path from "node:path";
import { test } from "node:test";
import { Queue, QueueEvents } from "bullmq";
import { pointId } from "../../shared/ids.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics } from "../../worker/metrics.js";
import { redisConnection } from "../../shared/redis.js";
import { checkpointKey, type Checkpoint } from "../../producer/backfill/checkpoint.js";
import { chunkDocument } from "../../producer/chunker.js";
import type { SourceDocument } from "../../producer/document.js";
import { chunksForQueue, enqueueOptionsFrom, jobsForDocument } from "../../producer/enqueue.js";
import { jobChunkCount } from "../../shared/pack.js";
import { startWorker, type RunningWorker } from "../../worker/app.js";
import { docText, writeJsonlCorpus } from "../../kit/corpus.js";
import { repoRoot, testConfig, uniqueQueue, waitFor } from "../../kit/harness.js";
import { suiteFixture } from "../support/suite-fixture.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const cli = path.join(repoRoot, "dist", "producer", "cli.js");
const fx = suiteFixture({ redis: REDIS_URL, qdrant: "target", tmpPrefix: "backfill-big-" });

const CHUNKING = { CHUNK_TOKENS: "10", CHUNK_OVERLAP_TOKENS: "0" };
const MARKS = { highJobs: 300, lowJobs: 150, highChunks: 12_000, lowChunks: 6_000, bulk: 50 };

function childEnv(extra: Record<string, string>) {
  const { QDRANT_URL: _u, QDRANT_API_KEY: _k, ...rest } = process.env;
  return { ...rest, MODEL_DIR: fx.modelDir, LOG_LEVEL: "warn", ...CHUNKING, ...extra };
}

/** Peak resident memory of a running process (Linux), in bytes; 0 where /proc is missing. */
async function vmHwm(pid: number): Promise<number> {
  return peakRssBytes(pid) ?? 0;
}

function collect(child: ChildProcess): { out: () => string; err: () => string; exit: Promise<number | null> } {
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  return { out: () => out, err: () => err, exit: once(child, "exit").then(([code]) => code as number | null) };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;

test(
  "200k chunks: killed midway and restarted, the backfill ends with exactly the expected points, within the backlog marks, with live jobs served first",
  { timeout: 600_000 },
  async (t) => {
    if (!fx.target.server) {
      t.skip("needs the in-process Qdrant test server's introspection; QDRANT_URL is set");
      return;
    }
    const name = uniqueQueue("big");
    const collection = `big_${name.replace(/-/g, "_")}`;
    const cfg = testConfig({
      MODEL_DIR: fx.modelDir,
      QUEUE_NAME: name,
      QDRANT_URL: fx.target.url,
      COLLECTION: collection,
      ...CHUNKING,
    });
    const queue = new Queue(name, { connection: fx.connection, prefix: cfg.QUEUE_PREFIX });
    const events = new QueueEvents(name, { connection: redisConnection(REDIS_URL), prefix: cfg.QUEUE_PREFIX });
    const runId = "big-run";
    let worker: RunningWorker | undefined;
    fx.onCleanup(async () => {
      await worker?.close();
      await events.close();
      await (events.opts.connection as { quit(): Promise<unknown> }).quit();
      await queue.obliterate({ force: true });
      await queue.close();
      await fx.connection.del(checkpointKey(cfg.QUEUE_PREFIX, name, runId));
    });

    const dir = path.join(fx.tmp, "corpus");
    const corpus = await writeJsonlCorpus(dir, { files: 40, docsPerFile: 100, sentencesPerDoc: 50, folders: 4 });
    const opts = {
      targetTokens: cfg.CHUNK_TOKENS,
      overlapTokens: cfg.CHUNK_OVERLAP_TOKENS,
      countTokens: fx.countTokens,
    };
    const expected = new Set<string>();
    corpus.ids.forEach((id, i) => {
      const n = chunkDocument(
        { id, kind: "text", segments: [{ text: docText(i, 50) }], metadata: {}, source: { file: "" } },
        opts,
      ).length;
      for (let c = 0; c < n; c++) expected.add(pointId(id, c));
    });
    const corpusChunks = expected.size;
    assert.ok(corpusChunks >= 200_000, `corpus has only ${corpusChunks} chunks`);
    let corpusBytes = 0;
    for (const f of corpus.files) corpusBytes += (await stat(f)).size;

    worker = await startWorker(cfg, {
      log: createLogger({ level: "silent" }),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    await events.waitUntilReady();
    const started = performance.now();

    // The backlog as Redis sees it, sampled throughout: jobs often, chunks (reading job data) every 2 s.
    const backlog = { maxJobs: 0, maxChunks: 0, samples: 0 };
    let sampling = true;
    const sampler = (async () => {
      let lastChunks = 0;
      while (sampling) {
        const c = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
        backlog.maxJobs = Math.max(backlog.maxJobs, c.waiting + c.prioritized + c.active + c.delayed);
        backlog.samples++;
        if (performance.now() - lastChunks > 2000) {
          lastChunks = performance.now();
          const jobs = await queue.getJobs(["waiting", "prioritized", "active", "delayed"]);
          backlog.maxChunks = Math.max(
            backlog.maxChunks,
            jobs.reduce((n, j) => n + jobChunkCount(j?.data), 0),
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const args = [
      cli,
      "backfill",
      dir,
      "--run-id",
      runId,
      "--json",
      "--progress-interval",
      "2",
      "--high-water-jobs",
      String(MARKS.highJobs),
      "--low-water-jobs",
      String(MARKS.lowJobs),
      "--high-water-chunks",
      String(MARKS.highChunks),
      "--low-water-chunks",
      String(MARKS.lowChunks),
      "--bulk",
      String(MARKS.bulk),
    ];
    const env = childEnv({ QUEUE_NAME: name });

    // First attempt: SIGKILL a little after its checkpoint says a third of the chunks are in (not
    // right after a save: checkpoints are saved at most once a second, so bulks added since are re-sent).
    const first = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const firstIo = collect(first);
    let firstRss = 0;
    let killedAt: Checkpoint | undefined;
    await waitFor(
      async () => {
        firstRss = Math.max(firstRss, await vmHwm(first.pid!));
        const raw = await fx.connection.get(checkpointKey(cfg.QUEUE_PREFIX, name, runId));
        const cp = raw ? (JSON.parse(raw) as Checkpoint) : undefined;
        if (cp && cp.totals.chunks >= corpusChunks / 3) killedAt = cp;
        return killedAt !== undefined;
      },
      240_000,
      "a third of the corpus enqueued",
    );
    await new Promise((r) => setTimeout(r, 700));
    firstRss = Math.max(firstRss, await vmHwm(first.pid!));
    first.kill("SIGKILL");
    await firstIo.exit;
    killedAt = JSON.parse((await fx.connection.get(checkpointKey(cfg.QUEUE_PREFIX, name, runId)))!) as Checkpoint;
    assert.ok(killedAt!.position && killedAt!.status === "running", firstIo.err());

    // Second attempt, with live jobs (no priority) arriving every 500 ms meanwhile.
    const second = spawn(process.execPath, [...args, "--wait"], { env, stdio: ["ignore", "pipe", "pipe"] });
    const secondIo = collect(second);
    const liveStart = new Map<string, number>();
    const liveLatency: number[] = [];
    events.on("completed", ({ jobId }) => {
      const t0 = liveStart.get(jobId);
      if (t0 !== undefined) liveLatency.push(Date.now() - t0);
    });
    const liveDocs: SourceDocument[] = [];
    const enqueueOpts = enqueueOptionsFrom(cfg, fx.countTokens);
    let secondDone = false;
    const live = (async () => {
      for (let i = 0; !secondDone; i++) {
        const doc: SourceDocument = {
          id: `live-${i}`,
          kind: "text",
          segments: [{ text: docText(900_000 + i, 8) }],
          metadata: {},
          source: { file: "live" },
        };
        const chunks = chunksForQueue(doc, enqueueOpts);
        assert.ok(Array.isArray(chunks));
        const jobs = jobsForDocument(doc, chunks, enqueueOpts);
        for (const j of jobs) liveStart.set(j.opts.jobId!, Date.now());
        await queue.addBulk(jobs);
        liveDocs.push(doc);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const secondCode = await secondIo.exit;
    secondDone = true;
    await live;
    assert.equal(secondCode, 0, secondIo.err());
    const summary = JSON.parse(secondIo.out());
    await waitFor(
      async () => {
        const c = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
        return c.waiting + c.prioritized + c.active + c.delayed === 0;
      },
      120_000,
      "queue drained",
    );
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    await waitFor(() => liveLatency.length === liveStart.size, 10_000, "every live job's completion event");

    for (const d of liveDocs) {
      const n = chunkDocument(d, opts).length;
      for (let c = 0; c < n; c++) expected.add(pointId(d.id, c));
    }
    const ids = fx.target.server.pointIds(collection);
    const missing = [...expected].filter((id) => !ids.has(id as never)).length;
    const extra = [...ids].filter((id) => !expected.has(String(id))).length;
    const writes = fx.target.server.writeCounts(collection);
    const writtenTwice = [...writes.values()].filter((n) => n > 1).length;
    const failed = (await queue.getJobCounts("failed")).failed;
    // Time from add to finish, from Redis, for the last completed jobs BullMQ keeps: live versus backfill.
    const kept = await queue.getJobs(["completed"]);
    const waited = (live: boolean) =>
      kept.filter((j) => j.data.docId.startsWith("live-") === live).map((j) => j.finishedOn! - j.timestamp);
    const [liveKept, backfillKept] = [waited(true), waited(false)];

    t.diagnostic(
      `corpus: ${corpus.ids.length} documents, ${corpusChunks} chunks, ${mib(corpusBytes)} JSONL in ${corpus.files.length} files`,
    );
    t.diagnostic(
      `killed at ${killedAt!.totals.chunks} chunks checkpointed; restart: ${summary.run.chunks} chunks in ${summary.run.jobs} jobs, ${summary.worker.duplicateJobs} re-sent jobs already in Redis`,
    );
    t.diagnostic(
      `duration: ${seconds.toFixed(1)} s from first start to drained (${(corpusChunks / seconds).toFixed(0)} chunks/s)`,
    );
    t.diagnostic(
      `backlog: max ${backlog.maxJobs} jobs (high-water ${MARKS.highJobs}, bulk ${MARKS.bulk}), max ${backlog.maxChunks} chunks (high-water ${MARKS.highChunks}); ${backlog.samples} samples; gate paused ${summary.backlog.pauses} times`,
    );
    t.diagnostic(`peak RSS of the backfill process: first ${mib(firstRss)}, second ${mib(summary.maxRssBytes)}`);
    t.diagnostic(
      `live jobs: ${liveLatency.length}, latency p50 ${pct(liveLatency, 50)} ms, p95 ${pct(liveLatency, 95)} ms, max ${Math.max(...liveLatency)} ms`,
    );
    t.diagnostic(
      `last ${kept.length} completed jobs, add to finish: live p50 ${pct(liveKept, 50)} ms (n=${liveKept.length}), backfill p50 ${pct(backfillKept, 50)} ms (n=${backfillKept.length})`,
    );
    t.diagnostic(
      `points: ${ids.size}; missing ${missing}, unexpected ${extra}, written more than once ${writtenTwice}; failed jobs ${failed}`,
    );

    assert.equal(summary.complete, true);
    assert.equal(summary.resumed, true);
    assert.equal(summary.total.documents, corpus.ids.length);
    assert.equal(summary.total.chunks, corpusChunks);
    assert.equal(failed, 0);
    assert.equal(missing, 0, "expected points are missing");
    assert.equal(extra, 0, "points nobody expected exist");
    // Re-sent jobs (added after the last checkpoint) are the newest; BullMQ keeps them (waiting or
    // among the REMOVE_ON_COMPLETE completed) while the restarted run re-adds them, so they dedupe.
    assert.equal(writtenTwice, 0, "a point was embedded and written twice");
    assert.ok(backlog.maxJobs <= MARKS.highJobs + MARKS.bulk, `backlog reached ${backlog.maxJobs} jobs`);
    assert.ok(backlog.maxChunks <= MARKS.highChunks + MARKS.bulk * 64, `backlog reached ${backlog.maxChunks} chunks`);
    assert.ok(summary.backlog.pauses > 0, "the gate never paused: the test does not exercise backpressure");
    assert.ok(
      firstRss < 300 * 1024 * 1024 && summary.maxRssBytes < 300 * 1024 * 1024,
      "backfill process above 300 MiB",
    );
    assert.ok(
      liveLatency.length >= 5 && liveKept.length >= 5 && backfillKept.length >= 5,
      "too few jobs to compare latencies",
    );
    assert.ok(
      pct(liveKept, 50) * 2 < pct(backfillKept, 50),
      "live jobs waited about as long as backfill jobs: they are not served first",
    );
    assert.ok(pct(liveLatency, 95) < 10_000, `live p95 ${pct(liveLatency, 95)} ms`);
  },
);

test(
  "a dry run over a ~490 MiB JSONL archive peaks at the same memory as over a ~49 MiB one",
  { timeout: 300_000 },
  async (t) => {
    const write = async (file: string, records: number) => {
      const blob = "x".repeat(100 * 1024);
      const out = createWriteStream(file);
      for (let i = 0; i < records; i++) {
        const line = JSON.stringify({ id: `m${i}`, text: docText(i, 3), metadata: { blob } }) + "\n";
        if (!out.write(line)) await once(out, "drain");
      }
      out.end();
      await once(out, "finish");
      return (await stat(file)).size;
    };
    const small = path.join(fx.tmp, "small.jsonl");
    const large = path.join(fx.tmp, "large.jsonl");
    const sizes = [await write(small, 500), await write(large, 5000)];
    const rss: number[] = [];
    for (const f of [small, large]) {
      const r = spawnSync(process.execPath, [cli, "backfill", f, "--dry-run", "--json", "--no-progress"], {
        env: childEnv({ REDIS_URL: "redis://127.0.0.1:1" }),
        encoding: "utf8",
        timeout: 240_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.run.bytes, (await stat(f)).size);
      rss.push(s.maxRssBytes);
    }
    await Promise.all([rm(small), rm(large)]);
    t.diagnostic(`dry run peak RSS: ${mib(rss[0])} for ${mib(sizes[0])}, ${mib(rss[1])} for ${mib(sizes[1])}`);
    assert.ok(
      rss[1] - rss[0] < 64 * 1024 * 1024,
      `peak RSS grew by ${mib(rss[1] - rss[0])} for ${mib(sizes[1] - sizes[0])} more input`,
    );
  },
);
