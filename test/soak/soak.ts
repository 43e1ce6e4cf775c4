/** `npm run soak`: pushes a large synthetic corpus (50,000 chunks by default) through the
 *  real processes — the producer CLI and the worker, each a child process, with Redis and
 *  the in-process Qdrant test server — and SIGKILLs the worker once `--kill-at` of the points
 *  are stored, then starts a second one. Checks exactly-once storage (stored ids equal the
 *  expected ids; ids written twice belong only to jobs in flight at the kill), no failed
 *  jobs, and reports elapsed time, chunks/s, peak RSS of each process and the recovery time.
 *  Prints one JSON summary (also written to `--out`); exits 1 if a check fails. Not part of
 *  `npm test`: it takes minutes. */
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { intInRange } from "../../shared/cli-options.js";
import { Queue } from "bullmq";
import { pointId } from "../../shared/ids.js";
import { redisConnection } from "../../shared/redis.js";
import { chunkDocument } from "../../producer/chunker.js";
import { readDocuments } from "../../producer/readers/index.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { repoRoot, testModel, uniqueQueue } from "../../kit/harness.js";
import { startQdrantTestServer, type QdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { spawnWorker, type ChildWorker } from "../../kit/processes.js";
import {
  jobPointIds,
  peakRssBytes,
  sleep,
  startChild,
  syntheticText,
  trackPeakRss,
  type Child,
} from "../../kit/reliability.js";

interface SoakOptions {
  chunks: number;
  killAt: number;
  chunkTokens: number;
  maxSeqLength: number;
  sentencesPerDoc: number;
  lockMs: number;
  stalledMs: number;
  timeoutS: number;
  out?: string;
}

const fraction = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError("expected a fraction between 0 and 1");
  return n;
};

/** Writes documents until their chunks reach `o.chunks`; returns the ids read back through
 *  the producer's own reader and chunker, so they are exactly what the producer enqueues. */
async function buildCorpus(file: string, o: SoakOptions, countTokens: (t: string) => number) {
  const out = createWriteStream(file);
  let chunks = 0;
  for (let i = 0; chunks < o.chunks; i++) {
    const text = syntheticText(i, o.sentencesPerDoc);
    const doc = { id: `soak-${i}`, kind: "text" as const, segments: [{ text }], metadata: {}, source: { file } };
    chunks += chunkDocument(doc, { targetTokens: o.chunkTokens, overlapTokens: 0, countTokens }).length;
    if (!out.write(JSON.stringify({ id: doc.id, text }) + "\n"))
      await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  const expected = new Set<string>();
  let documents = 0;
  for await (const ev of readDocuments(file)) {
    if (ev.kind !== "document") throw new Error(`corpus record skipped: ${ev.reason}`);
    documents++;
    for (const c of chunkDocument(ev.doc, { targetTokens: o.chunkTokens, overlapTokens: 0, countTokens }))
      expected.add(pointId(ev.doc.id, c.index));
  }
  return { documents, expected };
}

async function startWorkerChild(env: NodeJS.ProcessEnv, label: string): Promise<ChildWorker> {
  const w = await spawnWorker(env);
  await w.started.catch((err: Error) => {
    throw new Error(`${label}: ${err.message}`);
  });
  return w;
}

const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;

async function soak(o: SoakOptions, server: QdrantTestServer, tmp: string) {
  const model = await testModel();
  const countTokens = loadTokenCounter(model.tokenizerPath);
  const corpusFile = path.join(tmp, "corpus.jsonl");
  const t0 = performance.now();
  const corpus = await buildCorpus(corpusFile, o, countTokens);
  const corpusS = (performance.now() - t0) / 1000;
  const queueName = uniqueQueue("soak");
  const collection = `soak_${queueName.replace(/-/g, "_")}`;
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const { QDRANT_API_KEY: _k, ...base } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...base,
    REDIS_URL: redisUrl,
    QUEUE_NAME: queueName,
    QDRANT_URL: server.url,
    COLLECTION: collection,
    MODEL_DIR: model.dir,
    HTTP_PORT: "0",
    LOG_LEVEL: "info",
    CHUNK_TOKENS: String(o.chunkTokens),
    CHUNK_OVERLAP_TOKENS: "0",
    MAX_SEQ_LENGTH: String(o.maxSeqLength),
    LOCK_DURATION_MS: String(o.lockMs),
    STALLED_INTERVAL_MS: String(o.stalledMs),
    REMOVE_ON_COMPLETE: "1000000",
  };
  const connection = redisConnection(redisUrl);
  const queue = new Queue(queueName, { connection });
  const children: Child[] = [];
  try {
    const w1 = await startWorkerChild(env, "worker 1");
    children.push(w1);
    const started = performance.now();
    const producer = startChild(
      process.execPath,
      [path.join(repoRoot, "dist", "producer", "cli.js"), "ingest", corpusFile, "--json"],
      { env: { ...env, LOG_LEVEL: "warn" } },
    );
    children.push(producer);
    const rssP = trackPeakRss(producer);
    const stored = () => server.writeCounts(collection).size;
    const deadline = Date.now() + o.timeoutS * 1000;
    const waitUntil = async (cond: () => Promise<boolean> | boolean, what: string) => {
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(200);
      }
    };

    await waitUntil(
      () => stored() >= o.killAt * corpus.expected.size || w1.proc.exitCode !== null,
      `${o.killAt * 100}% of the points`,
    );
    if (w1.proc.exitCode !== null) throw new Error(`worker 1 exited early: ${w1.output().slice(-2000)}`);
    const killS = (performance.now() - started) / 1000;
    const storedAtKill = stored();
    await w1.stop("SIGKILL");
    // Nothing runs between the kill and this read: these are exactly the jobs the dead worker held.
    const inFlight = await queue.getActive();
    const inFlightIds = new Set(inFlight.flatMap((j) => jobPointIds(j)));
    const w2 = await startWorkerChild(env, "worker 2");
    children.push(w2);
    const killedAt = performance.now();
    await waitUntil(
      async () => (await Promise.all(inFlight.map((j) => queue.getJobState(j.id!)))).every((s) => s === "completed"),
      "the killed worker's jobs to complete",
    );
    const recoveryS = (performance.now() - killedAt) / 1000;

    const p = await producer.exited;
    if (p.code !== 0) throw new Error(`producer exited ${p.code}: ${producer.output().slice(-2000)}`);
    const printed = /^\{\n {2}"documents"[\s\S]*?^\}$/m.exec(producer.output());
    if (!printed) throw new Error(`no summary from the producer: ${producer.output().slice(-2000)}`);
    const enqueued = JSON.parse(printed[0]) as { jobs: number; chunks: number; documents: number };
    await waitUntil(
      async () =>
        (await queue.getJobCounts("completed")).completed + (await queue.getJobCounts("failed")).failed >=
        enqueued.jobs,
      "every job to finish",
    );
    const elapsedS = (performance.now() - started) / 1000;
    await w2.stop("SIGTERM", 30_000);
    const w2Exit = await w2.exited;

    const counts = await queue.getJobCounts("completed", "failed", "waiting", "active", "delayed", "prioritized");
    const storedIds = new Set([...server.points(collection).keys()].map(String));
    const writes = server.writeCounts(collection);
    const dup = [...writes].filter(([, n]) => n > 1).map(([id]) => String(id));
    const missing = [...corpus.expected].filter((id) => !storedIds.has(id));
    const unexpected = [...storedIds].filter((id) => !corpus.expected.has(id));
    const dupOutsideInFlight = dup.filter((id) => !inFlightIds.has(id));
    const checks = {
      storedEqualsExpected: missing.length === 0 && unexpected.length === 0,
      duplicatesOnlyFromJobsInFlightAtKill: dupOutsideInFlight.length === 0,
      noFailedJobs: counts.failed === 0,
      allJobsCompleted: counts.completed === enqueued.jobs,
      producerChunksMatch: enqueued.chunks === corpus.expected.size,
      atLeastRequestedChunks: corpus.expected.size >= o.chunks,
      secondWorkerStoppedCleanly: w2Exit.code === 0,
    };
    return {
      ok: Object.values(checks).every(Boolean),
      checks,
      corpus: {
        documents: corpus.documents,
        chunks: corpus.expected.size,
        jobs: enqueued.jobs,
        buildSeconds: Math.round(corpusS * 10) / 10,
      },
      elapsedSeconds: Math.round(elapsedS * 10) / 10,
      chunksPerSecond: Math.round(corpus.expected.size / elapsedS),
      kill: {
        atSeconds: Math.round(killS * 10) / 10,
        storedAtKill,
        jobsInFlight: inFlight.length,
        pointsInFlight: inFlightIds.size,
        recoverySeconds: Math.round(recoveryS * 10) / 10,
      },
      exactlyOnce: {
        expected: corpus.expected.size,
        stored: storedIds.size,
        missing: missing.length,
        unexpected: unexpected.length,
        writtenMoreThanOnce: dup.length,
        writtenMoreThanOnceOutsideKilledJobs: dupOutsideInFlight.length,
      },
      jobs: counts,
      peakRssMB: {
        worker1: mb(w1.peakRss()),
        worker2: mb(w2.peakRss()),
        producer: mb(rssP.peak()),
        soakRunnerWithQdrantTestServer: mb(peakRssBytes(process.pid) ?? 0),
      },
      settings: {
        ...o,
        workerConcurrency: process.env.WORKER_CONCURRENCY ?? "default",
        machine: `${os.cpus().length} x ${os.cpus()[0]?.model}`,
        node: process.version,
      },
    };
  } finally {
    for (const c of children) await c.stop("SIGKILL").catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await connection.quit();
  }
}

async function main(): Promise<void> {
  const o = new Command("soak")
    .description(
      "push a large corpus through producer and worker processes, kill the worker midway, check exactly-once storage",
    )
    .option("--chunks <n>", "chunks to push through (at least)", intInRange(100), 50_000)
    .option("--kill-at <fraction>", "SIGKILL the first worker once this share of the points is stored", fraction, 0.4)
    .option("--chunk-tokens <n>", "CHUNK_TOKENS for the corpus: short chunks", intInRange(8), 32)
    .option(
      "--sentences-per-doc <n>",
      "sentences per document (about one chunk per sentence at the default chunk size)",
      intInRange(1),
      8,
    )
    .option(
      "--max-seq-length <n>",
      "MAX_SEQ_LENGTH of the workers: their warm-up batch at the full token budget uses sequences this long, which sets their memory floor",
      intInRange(8),
      512,
    )
    .option("--lock-ms <n>", "LOCK_DURATION_MS: a killed worker's jobs return after this", intInRange(1000), 5000)
    .option("--stalled-ms <n>", "STALLED_INTERVAL_MS", intInRange(1000), 2000)
    .option("--timeout-s <n>", "give up after this many seconds", intInRange(10), 3600)
    .option("--out <file>", "also write the JSON summary here")
    .parse(process.argv)
    .opts<SoakOptions>();
  const server = await startQdrantTestServer();
  const tmp = await mkdtemp(path.join(os.tmpdir(), "soak-"));
  let summary: Awaited<ReturnType<typeof soak>> | { ok: false; error: string };
  try {
    summary = await soak(o, server, tmp);
  } catch (err) {
    summary = { ok: false, error: (err as Error).message };
  } finally {
    await server.close();
    await rm(tmp, { recursive: true, force: true });
  }
  const json = JSON.stringify(summary, null, 2);
  process.stdout.write(json + "\n");
  if (o.out) {
    await mkdir(path.dirname(path.resolve(o.out)), { recursive: true });
    await writeFile(o.out, json + "\n");
  }
  process.exit(summary.ok ? 0 : 1);
}

await main();
