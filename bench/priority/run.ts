/** `npm run bench:priority -- [options]` (`--help` lists them): measures the query API's
 *  priority lane against its goals. First the model alone times one batch at the token budget
 *  (the yardstick) and the lane's own batch; then one worker embeds a saturating backfill of the
 *  corpus's window chunks while phases alternate without and with single-text queries
 *  (measure-priority.ts). Prints how it ran and the figures, and writes
 *  bench/results/priority/<timestamp>-<commit>.json with a Markdown summary beside it. Exits
 *  non-zero if the run itself went wrong (failed jobs, a backlog that ran dry); a missed goal
 *  is a result, not an error. */
import path from "node:path";
import { parseConfig } from "../../shared/config.js";
import { redisConnection } from "../../shared/redis.js";
import { enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import { BatchPool, planBatches } from "../../worker/core/batcher.js";
import { startQdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { ensureBenchModel } from "../lib/bench-model.js";
import { killAllChildren } from "../lib/child-process.js";
import { readCorpus, resolveCorpus, windowChunks } from "../lib/corpus.js";
import { benchTokenizer, quietGate, redisPid, runHeader, standInNotes, startRun, workerEnv } from "../lib/harness.js";
import { measureBatchTimes, type TimedBatch } from "../lib/measure-children.js";
import { measurePriority } from "./measure-priority.js";
import { displayPath, repoRoot } from "../lib/paths.js";
import { parsePriorityArgs } from "./options.js";
import { renderPriorityReport, renderPrioritySummary } from "./report-format.js";
import { PRIORITY_SCHEMA, type PriorityResults } from "../lib/results-schema.js";
import { phaseQueries, summarize, timing } from "./summarize.js";
import { querySentences } from "./query-load.js";
import { resultsBaseName, writeResults } from "../lib/results-file.js";

const args = process.argv.slice(2);
const o = parsePriorityArgs(args);
const log = console.log;

/** The yardstick batch (the planner's fullest batch of real windows) and the priority lane's
 *  batch (one query with the fill BatchPool.takeQuery picks from those windows). */
function yardsticks(
  windows: Int32Array[],
  query: Int32Array,
  limits: ConstructorParameters<typeof BatchPool>[0],
  fillTokens: number,
): TimedBatch[] {
  const items = windows.map((ids) => ({ ids, length: ids.length, pooledAt: 0 }));
  const full = planBatches(items, limits).reduce((a, b) => (b.paddedTokens > a.paddedTokens ? b : a));
  const pool = new BatchPool<(typeof items)[number] & { queryLane?: boolean }>(limits);
  pool.add(items);
  pool.add([{ ids: query, length: query.length, pooledAt: 1, queryLane: true }]);
  const lane = pool.takeQuery(fillTokens)!;
  const toIds = (b: { items: Array<{ ids: Int32Array }> }) => b.items.map((it) => Array.from(it.ids));
  return [
    { name: "full", ids: toIds(full), paddedLength: full.paddedLength },
    { name: "query", ids: toIds(lane), paddedLength: lane.paddedLength },
  ];
}

async function main(): Promise<{ results: PriorityResults; problems: string[] }> {
  const run = startRun(log);
  const source = resolveCorpus(o.corpus);
  const model = await ensureBenchModel(o, false);
  const extraEnv: Record<string, string> =
    o.queryFillTokens === undefined ? {} : { QUERY_FILL_TOKENS: String(o.queryFillTokens) };
  const env = { ...workerEnv(o, model.files.dir), ...extraEnv };
  const cfg = parseConfig({ ...env, QUERY_API: "true", DRAIN_TIMEOUT_MS: "1000" });
  const limits = {
    maxBatchTokens: cfg.MAX_BATCH_TOKENS,
    maxBatchSize: cfg.MAX_BATCH_SIZE,
    maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
    padMultiple: cfg.PAD_MULTIPLE,
    batchOverheadTokens: cfg.BATCH_OVERHEAD_TOKENS,
  };

  const enqueue = {
    ...enqueueOptionsFrom(cfg, loadTokenCounter(model.files.tokenizerPath)),
    maxChunksPerJob: o.perJob,
    removeOnComplete: 100,
  };
  const { docs, skipped } = await readCorpus(source);
  if (docs.length === 0) throw new Error(`no documents in ${source.label}`);
  const all = windowChunks(docs, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, enqueue);
  const backfill = {
    ...all,
    how: `all ${all.texts.length} windows of up to ${cfg.CHUNK_TOKENS} tokens (overlap ${cfg.CHUNK_OVERLAP_TOKENS}) of the ${all.documents} documents`,
  };
  const queryTexts = querySentences(docs, 1000);
  log(
    `corpus: ${source.label}; backfill pass: ${backfill.how} in ${backfill.jobs.length} jobs; ${queryTexts.length} query sentences`,
  );

  const tokenizer = await benchTokenizer(model, cfg);
  const [windowIds, queryIds] = await Promise.all([
    tokenizer.encode(backfill.texts.slice(0, 256)),
    tokenizer.encode(queryTexts),
  ]);
  await tokenizer.close();
  const meanQueryTokens = queryIds.reduce((a, q) => a + q.ids.length, 0) / queryIds.length;

  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const redis = await redisPid(connection);
  const gate = quietGate(o, redis);

  const [full, query] = yardsticks(
    windowIds.map((e) => e.ids),
    queryIds[0].ids,
    limits,
    cfg.QUERY_FILL_TOKENS,
  );
  const timed = await measureBatchTimes(env, [full, query], o.batchReps, gate);
  const batchTimes = {
    full: timing("full", full.ids, full.paddedLength, timed.seconds[0]),
    query: timing("query", query.ids, query.paddedLength, timed.seconds[1]),
    quietWait: timed.quietWait,
  };
  log(
    `one batch at the budget (${full.ids.length} x ${full.paddedLength}), model alone: median ${batchTimes.full.medianMs.toFixed(0)} ms, p95 ${batchTimes.full.p95Ms.toFixed(0)} ms; ` +
      `the lane's batch (${query.ids.length} x ${query.paddedLength}): median ${batchTimes.query.medianMs.toFixed(0)} ms`,
  );

  const server = await startQdrantTestServer();
  let measured;
  try {
    measured = await measurePriority({
      ctx: { connection, server, env, redisPid: redis, gate },
      extraEnv: {},
      backfill: backfill.jobs,
      queryTexts,
      modelName: cfg.MODEL_NAME,
      queryRate: o.queryRate,
      phaseSeconds: o.phaseSeconds,
      rounds: o.rounds,
      settleSeconds: o.settleSeconds,
      backlogJobs: o.backlogJobs,
      queryTimeoutMs: o.queryTimeoutMs,
      log,
    });
  } finally {
    await server.close();
    await connection.quit();
  }
  const phases = measured.phases.map((p) => ({ ...p, queries: p.queries && phaseQueries(p.queries) }));
  const { summary, goals } = summarize(phases, batchTimes);
  const notes = standInNotes(source, model);
  if (measured.shutdownError)
    notes.push(
      `The worker process did not shut down cleanly after the measurement (${measured.shutdownError}); every figure had been taken before.`,
    );
  if (summary.othersCpuShareMax > 0.1)
    notes.push(
      `The machine was not quiet: other processes took up to ${Math.round(summary.othersCpuShareMax * 100)}% of the CPU in a phase (see the phase table).`,
    );
  const results: PriorityResults = {
    schema: PRIORITY_SCHEMA,
    bench: "priority-lane",
    ...runHeader(run, args, o, cfg, model, { source, documents: docs.length, skipped }),
    method: [
      `Yardstick: the worker's model thread alone in its own process (no worker, no queue) runs the batch planner's fullest batch of the corpus's first windows (${full.ids.length} x ${full.paddedLength} padded tokens), and the priority lane's batch that BatchPool.takeQuery cuts for one query among those windows; once untimed, then ${o.batchReps} timed runs each, alternating.`,
      `Worker: one process assembled as \`npm run worker\` does (QUERY_API=true), on the real Redis, writing to the strict Qdrant-compatible test server in the bench process; its first job and the queries of its first second (2 per second) warm it up.`,
      `Backfill: every window of the corpus (${backfill.how}; ${backfill.jobs.length} jobs of up to ${o.perJob} chunks), added pass after pass under new document ids; every second the bench samples the queue and tops it up to ${o.backlogJobs} waiting jobs beyond the ${o.concurrency} the worker holds.`,
      `Phases: after ${o.settleSeconds} s of backfill alone (unmeasured), ${o.rounds} rounds of A (backfill only) then B (backfill + queries), ${o.phaseSeconds} s each. Queued and interactive tokens per phase are deltas of the worker's embed_tokens_total{lane} read from its /metrics over HTTP at each phase's start and end; a B phase ends when its last query is answered.`,
      `Queries: open loop, ${o.queryRate} per second at fixed intervals, each one sentence of the corpus (${queryTexts.length} distinct, 4-25 words, mean ${meanQueryTokens.toFixed(1)} tokens with <s> and </s>) as {"input": text, "model": MODEL_NAME} to POST /v1/embeddings with fetch from the bench process; latency from just before fetch to the parsed answer; an answer other than 200 or without an embedding counts as failed; client timeout ${o.queryTimeoutMs} ms.`,
      "Batch service time: a wrapper around the worker's model port logs when each batch is handed to the model thread and when it returns; the thread runs one batch at a time, so a batch's service time is its return minus the later of its hand-over and the previous return.",
      "Drop: 1 - (median queued tokens/s of the B phases) / (median of the A phases). Query token share: interactive tokens / (interactive + queued tokens) over the B phases; the queued chunks that ride in a query's batch count as queued.",
    ],
    backfill: {
      how: backfill.how,
      jobsPerPass: backfill.jobs.length,
      chunksPerPass: backfill.texts.length,
      jobsAdded: measured.backfill.jobsAdded,
      passes: measured.backfill.passes,
      failedJobs: measured.backfill.failedJobs,
    },
    queryTexts: {
      how: `${queryTexts.length} distinct sentences of 4-25 words spread evenly over the corpus, sent in turn`,
      distinct: queryTexts.length,
      meanTokens: meanQueryTokens,
    },
    batchTimes,
    quietWait: measured.quietWait,
    phases,
    summary,
    goals,
    notes,
  };
  const problems: string[] = [];
  if (measured.backfill.failedJobs > 0) problems.push(`${measured.backfill.failedJobs} backfill jobs failed`);
  if (!(summary.minWaitingJobs > 0))
    problems.push(`the backlog ran dry: at one sample ${summary.minWaitingJobs} jobs were waiting`);
  return { results, problems };
}

try {
  const { results, problems } = await main();
  const dir = path.resolve(repoRoot, o.out);
  const file = displayPath(path.join(dir, `${resultsBaseName(results)}.json`));
  log("\nHow it ran:\n" + results.method.map((m) => `- ${m}`).join("\n"));
  log("\n" + renderPriorityReport(results, file));
  if (o.write) {
    const written = writeResults(dir, results, renderPrioritySummary(results, file));
    log(`wrote ${displayPath(written.json)} and ${displayPath(written.md)}`);
  }
  for (const p of problems) console.error(`problem: ${p}`);
  process.exit(problems.length ? 1 : 0);
} catch (err) {
  killAllChildren();
  console.error(`bench:priority failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
