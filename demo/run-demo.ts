/** `npm run demo`: the whole job on one machine with only Redis running. Generates the tiny
 *  test model (unless MODEL_DIR is set), enqueues the bundled sample documents into a demo
 *  queue, runs a worker until the queue is drained, and prints what happened: chunks,
 *  tokens, throughput, padding efficiency and where the vectors went. Exits non-zero if any
 *  job failed. */
import { rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { parseConfig } from "../shared/config.js";
import { ConfigError } from "../worker/errors.js";
import { createLogger } from "../shared/logger.js";
import { createMetrics, metricTotal } from "../worker/metrics.js";
import { redisConnection } from "../shared/redis.js";
import { ensureTestModel } from "../kit/test-model/write-test-model.js";
import { enqueueDocuments, enqueueOptionsFrom } from "../producer/enqueue.js";
import { expandInputs } from "../producer/input-files.js";
import { queueStats } from "../producer/queue-stats.js";
import { readDocuments } from "../producer/readers/index.js";
import { loadTokenCounter } from "../producer/token-counter.js";
import { startWorker } from "../worker/app.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

async function main(): Promise<number> {
  const env = { ...process.env };
  env.QUEUE_NAME ??= "embed-demo";
  env.SINK_FILE ??= path.join(root, "out", "demo-vectors.jsonl");
  env.LOG_LEVEL ??= "warn";
  env.HTTP_PORT ??= "0";
  if (!env.MODEL_DIR) {
    const dir = path.join(root, ".cache", "demo-model");
    const t0 = performance.now();
    await ensureTestModel(dir);
    env.MODEL_DIR = dir;
    env.MODEL_NAME ??= "tiny-bge-m3-test";
    console.log(
      `model: tiny BGE-M3-shaped test model in ${dir}, generated or reused in ${Math.round(performance.now() - t0)} ms (random weights: for demos and tests only)`,
    );
  }
  const cfg = parseConfig(env);
  const log = createLogger({ level: cfg.LOG_LEVEL, name: "demo" });
  if (!cfg.QDRANT_URL) await rm(cfg.SINK_FILE, { force: true });

  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const queue = new Queue(cfg.QUEUE_NAME, { connection, prefix: cfg.QUEUE_PREFIX });
  // A demo queue starts empty: kept completed jobs would make BullMQ skip the re-added ids.
  await queue.obliterate({ force: true });

  const metrics = createMetrics({ defaultMetrics: false });
  const worker = await startWorker(cfg, { log, metrics });
  const samples = path.join(root, "samples");
  const started = performance.now();
  const summary = await enqueueDocuments(
    queue,
    (async function* () {
      for await (const f of expandInputs([samples])) yield* readDocuments(f);
    })(),
    enqueueOptionsFrom(cfg, loadTokenCounter(path.join(cfg.MODEL_DIR, "tokenizer.json"))),
  );
  console.log(
    `enqueued: ${summary.documents} documents from ${samples} as ${summary.jobs} jobs (${summary.chunks} chunks, ${summary.tokens} tokens)` +
      (summary.skipped ? `; skipped ${summary.skipped}: ${JSON.stringify(summary.skippedByReason)}` : ""),
  );

  let stats = await queueStats(queue);
  while (stats.backlog > 0) {
    await new Promise((r) => setTimeout(r, 100));
    stats = await queueStats(queue);
  }
  const seconds = (performance.now() - started) / 1000;
  await worker.close();
  const value = (name: string) => metricTotal(metrics, name);
  const chunks = await value("embed_chunks_total");
  const tokens = await value("embed_tokens_total");
  const padded = await value("embed_padded_tokens_total");
  const batches = await value("embed_batches_total");
  const truncated = await value("embed_truncated_chunks_total");
  console.log(
    `embedded: ${chunks} chunks, ${tokens} tokens in ${batches} batches; ${truncated} truncated; outputs ${worker.model.info.outputs.join("+")} (dense dim ${worker.model.info.denseDim})`,
  );
  console.log(
    `throughput: ${(chunks / seconds).toFixed(1)} chunks/s, ${(tokens / seconds).toFixed(0)} tokens/s over ${seconds.toFixed(2)} s (enqueue to drained, ${cfg.EXECUTION_PROVIDER})`,
  );
  console.log(`padding efficiency: ${padded ? (tokens / padded).toFixed(3) : "n/a"} (real tokens / computed tokens)`);
  console.log(`vectors: ${worker.sink.describe()}`);
  console.log(`queue: ${stats.completed} completed, ${stats.failed} failed`);
  await queue.close();
  await connection.quit();
  return stats.failed > 0 || chunks !== summary.chunks ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`demo failed: ${err.message}`);
    process.exit(1);
  },
);
