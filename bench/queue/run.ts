/** `npm run bench:queue -- [options]` (`--help` lists them): what the queue costs Redis per job
 *  and per chunk. Starts a private redis-server (so its INFO and CPU are this bench's alone),
 *  cuts the corpus with the producer's chunker, and for each worker count starts that many real
 *  worker processes on one queue, then for each job size adds a backlog with the producer's job
 *  builder and drains it (measure-queue.ts). Prints how it ran and the figures, and writes
 *  bench/results/queue/<timestamp>-<commit>.json with a Markdown summary beside it. Exits
 *  non-zero if jobs failed or points were lost or written twice. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Redis } from "ioredis";
import { parseConfig } from "../../shared/config.js";
import { enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { startQdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { startTestRedis } from "../../kit/redis-server.js";
import { ensureBenchModel } from "../lib/bench-model.js";
import { killAllChildren } from "../lib/child-process.js";
import { readCorpus, resolveCorpus } from "../lib/corpus.js";
import { redisPid, runHeader, standInNotes, startRun, workerEnv } from "../lib/harness.js";
import { displayPath, repoRoot } from "../lib/paths.js";
import { resultsBaseName, writeResults } from "../lib/results-file.js";
import { QUEUE_SCHEMA, type QueueBenchResults, type QueueCell } from "../lib/results-schema.js";
import { measureCell, monitorDrain, startRig, stopRig, warmUp } from "./measure-queue.js";
import { parseQueueArgs } from "./options.js";
import { cellJobs, chunkStream, jsonOverheads, type ChunkStream } from "./queue-jobs.js";
import { renderQueueReport } from "./report-format.js";
import { derive, fitMemory } from "./summarize.js";

const args = process.argv.slice(2);
const o = parseQueueArgs(args);
const log = console.log;

const jobsFor = (k: number) => Math.max(o.minJobs, Math.ceil(o.chunks / k));

/** Distinct non-special ids per chunk over its content tokens, mean over up to 500 chunks. */
function distinctRatio(tokenizerPath: string, stream: ChunkStream): number {
  const tok = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, "utf8")), {});
  const sample = stream.chunks.slice(0, 500);
  let sum = 0;
  for (const c of sample) {
    const ids = tok.encode(c.text, { add_special_tokens: false }).ids.filter((id: number) => id > 3);
    if (ids.length) sum += new Set(ids).size / ids.length;
  }
  return sum / sample.length;
}

async function main(): Promise<QueueBenchResults> {
  const run = startRun(log);
  const source = resolveCorpus(o.corpus);
  const model = await ensureBenchModel(o, false);
  const longest = Math.ceil(o.maxSeqLength / o.padMultiple) * o.padMultiple;
  const env = {
    ...workerEnv(o, model.files.dir),
    MAX_SEQ_LENGTH: String(o.maxSeqLength),
    MAX_BATCH_ATTENTION: String(Math.max(longest * longest, longest * o.maxBatchTokens)),
    CHUNK_TOKENS: String(o.chunkTokens),
    CHUNK_OVERLAP_TOKENS: "0",
  };
  const cfg = parseConfig(env);
  const enqueue = { ...enqueueOptionsFrom(cfg, loadTokenCounter(model.files.tokenizerPath)), overlapTokens: 0 };
  const { docs, skipped } = await readCorpus(source);
  if (docs.length === 0) throw new Error(`no documents in ${source.label}`);
  const stream = chunkStream(docs, Math.max(...o.jobChunks.map((k) => jobsFor(k) * k)), enqueue);
  const sampleJobs = cellJobs(stream, Math.max(...o.jobChunks), 8, "sizing", enqueue).jobs;
  const overheads = jsonOverheads(sampleJobs);
  const contentTokens = sampleJobs.reduce(
    (a, j) => a + j.data.chunks.reduce((b, c) => b + enqueue.countTokens(c.text), 0),
    0,
  );
  log(
    `corpus: ${source.label}; ${stream.chunks.length} chunks of up to ${o.chunkTokens} tokens from ${stream.documents} documents`,
  );

  const redisServer = await startTestRedis({ appendfsync: o.redisAof });
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const poll = new Redis(redisServer.url);
  const server = await startQdrantTestServer();
  const cells: QueueCell[] = [];
  let payloadOverheadBytes = NaN;
  let version = "unknown";
  try {
    const pid = await redisPid(redis);
    if (!pid) throw new Error("cannot read the private redis-server's pid");
    version = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "unknown";
    const base = { url: redisServer.url, redis, poll, prefix: "bull", redisPid: pid, server };
    for (const w of o.workers) {
      const rig = await startRig(base, env, w, `${w}w-${run.started.getTime().toString(36)}`);
      try {
        await warmUp(rig, cellJobs(stream, 1, 2 * w, `w${w}-warm`, enqueue).jobs);
        for (const k of o.jobChunks) {
          const set = cellJobs(stream, k, jobsFor(k), `w${w}k${k}`, enqueue);
          const cell = await measureCell(rig, { layout: "document", jobChunks: k, workers: w }, set);
          if (o.monitorJobs > 0)
            cell.monitor = await monitorDrain(
              rig,
              cellJobs(stream, k, Math.min(o.monitorJobs, set.jobs.length), `w${w}k${k}m`, enqueue).jobs,
            );
          if (!Number.isFinite(payloadOverheadBytes)) {
            const pts = [...rig.server.points(rig.collection).values()].slice(0, 500);
            payloadOverheadBytes =
              pts.reduce(
                (a, p) =>
                  a + Buffer.byteLength(JSON.stringify(p.payload)) - Buffer.byteLength(String(p.payload?.text ?? "")),
                0,
              ) / pts.length;
          }
          cells.push(cell);
          const d = derive(cell);
          log(
            `jobs of ${k} chunks, ${w} worker(s): ${cell.jobs} jobs, ${d.commandsPerJob.toFixed(1)} commands/job` +
              (d.clientCommandsPerJob !== undefined ? ` (${d.clientCommandsPerJob.toFixed(1)} from clients)` : "") +
              `, Redis CPU ${d.redisCpuMsPerJob.toFixed(3)} ms/job, ${Math.round(d.bytesPerWaitingJob)} B/waiting job, ` +
              `${Math.round(d.jobsPerSecond)} jobs/s, failed ${cell.failedJobs}, points ${cell.pointsWritten}/${cell.chunks}`,
          );
        }
      } finally {
        await stopRig(rig);
      }
    }
  } finally {
    await server.close();
    redis.disconnect();
    poll.disconnect();
    await redisServer.close();
  }

  const notes = standInNotes(source, model);
  notes.push(
    "The machine was shared with other work while this ran: jobs/s are wall-clock figures and noisy; Redis commands, command counts and Redis CPU are the private server's own.",
    "Stand-ins: the worker model is the generated test model with random weights and the Qdrant is the in-process test server; neither enters Redis's figures, both set the jobs/s.",
  );
  const repeats = o.jobChunks.map((k) => cellJobs(stream, k, jobsFor(k), "count", enqueue).repeats);
  if (Math.max(...repeats) > 0)
    notes.push(
      `The corpus gave ${stream.chunks.length} chunks; larger cells reuse them under new document ids (same texts, new jobs and points).`,
    );
  const othersMax = Math.max(...cells.map((c) => c.othersCpuShare));
  if (othersMax > 0.1)
    notes.push(`Other processes took up to ${Math.round(othersMax * 100)}% of the machine's CPU during a drain.`);
  const meanTokens = stream.chunks.reduce((a, c) => a + c.tokens, 0) / stream.chunks.length;
  return {
    schema: QUEUE_SCHEMA,
    bench: "queue",
    ...runHeader(run, args, o, cfg, model, { source, documents: docs.length, skipped }),
    method: [
      `Redis: a private redis-server ${version} started for this run (AOF ${o.redisAof === "off" ? "off" : `appendfsync ${o.redisAof}`}, no RDB saves); nothing else connects to it.`,
      `Jobs: the corpus cut by the producer's chunker (CHUNK_TOKENS=${o.chunkTokens}, no overlap) into one chunk stream; each job holds k consecutive chunks as one document, built by the producer's jobsForDocument (its job ids and options: attempts ${cfg.JOB_ATTEMPTS}, removeOnComplete ${cfg.REMOVE_ON_COMPLETE}) and added with Queue.addBulk in bulks of 500. Per cell max(${o.minJobs}, ceil(${o.chunks} / k)) jobs.`,
      `Workers: W processes assembled as \`npm run worker\` does, on one queue (WORKER_CONCURRENCY=${cfg.WORKER_CONCURRENCY}, MAX_BATCH_TOKENS=${cfg.MAX_BATCH_TOKENS}, MAX_SEQ_LENGTH=${cfg.MAX_SEQ_LENGTH}), started once per W and warmed up with ${2} one-chunk jobs per worker.`,
      "Cell: queue paused; INFO; the backlog added; INFO (used_memory delta = memory of the waiting backlog); queue resumed; polled (LLEN wait/active, ZCARD prioritized/delayed, every 25 ms) until empty; INFO. Commands are the INFO commandstats delta over both windows (script-inner commands included, as Redis counts them), minus the harness's INFO calls, polls and its one resume script; CPU is used_cpu_user + used_cpu_sys over the same windows (the /proc figure is kept as a cross-check); jobs/s from resume to the newest finishedOn.",
      o.monitorJobs > 0
        ? `Client commands: a second drain of up to ${o.monitorJobs} jobs (new ids) with MONITOR on, counting commands by source (a client address, or lua for commands run inside scripts), the harness's poll connection left out. Pipelined commands count one each, so round trips are at most this.`
        : "Client commands: not measured (--monitor-jobs 0).",
      "Idle baseline: before each cell, 1 s with the queue paused and empty (workers connected and waiting); net CPU per job = (the cell's Redis CPU - the idle rate x the drain's seconds) / jobs, the cost per job of a queue busy enough that idle time vanishes.",
      "Derived: jobs per second one Redis core could serve = jobs / Redis CPU seconds of the cell (the add, the drain and the workers' polling included), and the same from the net CPU.",
    ],
    redis: { version, persistence: o.redisAof === "off" ? "no persistence" : `AOF appendfsync ${o.redisAof}` },
    corpusFigures: {
      chunkTokens: o.chunkTokens,
      meanTokensPerChunk: meanTokens,
      textBytesPerToken: overheads.textBytes / contentTokens,
      chunkJsonOverheadBytes: overheads.perChunk,
      jobJsonOverheadBytes: overheads.perJob,
      distinctTokenRatio: distinctRatio(model.files.tokenizerPath, stream),
      payloadOverheadBytes,
    },
    cells,
    derived: cells.map(derive),
    memoryFit: fitMemory(cells),
    notes,
  };
}

try {
  const results = await main();
  const dir = path.resolve(repoRoot, o.out);
  const file = displayPath(path.join(dir, `${resultsBaseName(results)}.json`));
  const md = renderQueueReport(results, file);
  log("\n" + md);
  if (o.write) {
    const written = writeResults(dir, results, md);
    log(`wrote ${displayPath(written.json)} and ${displayPath(written.md)}`);
  }
  const problems = results.cells.flatMap((c) =>
    c.failedJobs > 0 || c.pointsWritten !== c.chunks || c.maxWritesPerPoint > 1
      ? [
          `jobs of ${c.jobChunks}, ${c.workers} worker(s): ${c.failedJobs} failed, ${c.pointsWritten} of ${c.chunks} points, up to ${c.maxWritesPerPoint} writes per point`,
        ]
      : [],
  );
  for (const p of problems) console.error(`problem: ${p}`);
  process.exit(problems.length ? 1 : 0);
} catch (err) {
  killAllChildren();
  console.error(`bench:queue failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
