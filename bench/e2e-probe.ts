/** `npm run bench:probe`: a quick side-by-side of the model alone and the worker end to end
 *  on the same chunks, in one run. Model alone = the ONNX session on pre-tokenized batches
 *  planned by the same batcher over the whole set at once (the ceiling); end to end =
 *  BullMQ jobs in the local Redis -> worker (tokenizer thread, batcher, model thread) ->
 *  JSONL sink, timed from the first enqueue to the last completion.
 *  Chunks: one per speaker turn of the QMSum meetings in the reference transcripts when
 *  they are beside the checkout, else the bundled samples' sentences (labelled as such).
 *  Model: generated, XLM-R-shaped, with the real 250k tokenizer when present.
 *  Options via env: PROBE_CHUNKS (default 1500), PROBE_PER_JOB (chunks per job, 64),
 *  PROBE_LAYERS (6), PROBE_HIDDEN (384), plus the worker's own settings. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { parseConfig } from "../shared/config.js";
import { JOB_NAME, JOB_SCHEMA_VERSION } from "../shared/job.js";
import { createLogger } from "../shared/logger.js";
import { createMetrics, metricTotal } from "../shared/metrics.js";
import { redisConnection } from "../shared/redis.js";
import { ensureTestModel } from "../shared/test-model/write-test-model.js";
import { planBatches } from "../worker/core/batcher.js";
import { locateModelFiles } from "../worker/adapters/model-files.js";
import { OnnxModel } from "../worker/adapters/onnx-model.js";
import { TokenizerPool } from "../worker/adapters/tokenizer-pool.js";
import { startWorker } from "../worker/app.js";
import { repoRoot, referenceRoot } from "./paths.js";

function corpus(n: number): { label: string; texts: string[] } {
  const dir = path.join(referenceRoot, "data", "transcripts", "en_qmsum_meetings");
  if (existsSync(dir)) {
    const texts: string[] = [];
    for (const f of readdirSync(dir).sort()) {
      for (const t of JSON.parse(readFileSync(path.join(dir, f), "utf8")).meeting_transcripts as Array<{ content: string }>) {
        if (t.content.trim()) texts.push(t.content.trim());
      }
    }
    return { label: `QMSum meeting turns (reference transcripts), first ${Math.min(n, texts.length)}`, texts: texts.slice(0, n) };
  }
  const text = readFileSync(path.join(repoRoot, "samples", "articles.jsonl"), "utf8");
  const sentences = text.split(/(?<=[.!?])\s+/).filter((s) => s.length > 0);
  return { label: "bundled sample sentences (reference transcripts not present)", texts: sentences.slice(0, n) };
}

async function main(): Promise<void> {
  const n = Number(process.env.PROBE_CHUNKS ?? 1500);
  const perJob = Number(process.env.PROBE_PER_JOB ?? 64);
  const tokDir = path.join(referenceRoot, "reference", "tokenizers", "xlm-roberta-250k");
  const tokenizerSource = existsSync(tokDir) ? path.join(tokDir, readdirSync(tokDir).find((f) => f.endsWith(".json.gz"))!) : undefined;
  const layers = Number(process.env.PROBE_LAYERS ?? 6), hidden = Number(process.env.PROBE_HIDDEN ?? 384);
  const modelDir = path.join(os.tmpdir(), "bge-m3-queue-worker-probe", `${layers}x${hidden}${tokenizerSource ? "-xlmr" : ""}`);
  await ensureTestModel(modelDir, { layers, hidden, heads: hidden / 64, intermediate: hidden * 4, tokenizerSource });
  const cfg = parseConfig({
    QUEUE_NAME: `probe-${Date.now()}`, SINK_FILE: path.join(os.tmpdir(), "bge-m3-probe-vectors.jsonl"), LOG_LEVEL: "warn", HTTP_PORT: "0",
    MAX_BATCH_TOKENS: "8192", MAX_SEQ_LENGTH: "1024", CHUNK_TOKENS: "512", ...process.env, MODEL_DIR: modelDir,
  });
  const { label, texts } = corpus(n);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}`);
  console.log(`model: generated ${layers} layers x ${hidden} hidden, tokenizer ${tokenizerSource ? "XLM-R 250k (reference)" : "generated"}; corpus: ${label}`);
  console.log(`settings: MAX_BATCH_TOKENS=${cfg.MAX_BATCH_TOKENS} MAX_BATCH_SIZE=${cfg.MAX_BATCH_SIZE} BATCH_OVERHEAD_TOKENS=${cfg.BATCH_OVERHEAD_TOKENS} WORKER_CONCURRENCY=${cfg.WORKER_CONCURRENCY} chunks/job=${perJob}`);

  const files = locateModelFiles(modelDir);
  const model = await OnnxModel.load(cfg, files);
  const tok = new TokenizerPool({ tokenizerPath: files.tokenizerPath, maxLength: cfg.MAX_SEQ_LENGTH, eosId: files.eosId, threads: 1 });
  const encoded = await tok.encode(texts);
  await tok.close();
  const real = encoded.reduce((a, e) => a + e.ids.length, 0);
  const plan = planBatches(encoded.map((e) => ({ length: e.ids.length, ids: e.ids })), { maxBatchTokens: cfg.MAX_BATCH_TOKENS, maxBatchSize: cfg.MAX_BATCH_SIZE, padMultiple: cfg.PAD_MULTIPLE, batchOverheadTokens: cfg.BATCH_OVERHEAD_TOKENS });
  let t0 = performance.now();
  for (const b of plan) await model.embed({ sequences: b.items.map((i) => i.ids), paddedLength: b.paddedLength });
  const aloneS = (performance.now() - t0) / 1000;
  await model.close();
  const alonePad = real / plan.reduce((a, b) => a + b.paddedTokens, 0);

  const metrics = createMetrics({ defaultMetrics: false });
  const worker = await startWorker(cfg, { log: createLogger({ level: "warn" }), metrics });
  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const queue = new Queue(cfg.QUEUE_NAME, { connection, prefix: cfg.QUEUE_PREFIX });
  t0 = performance.now();
  const jobs = [];
  for (let i = 0; i < texts.length; i += perJob) {
    const chunks = texts.slice(i, i + perJob).map((text, k) => ({ index: k, text, metadata: {} }));
    jobs.push({ name: JOB_NAME, data: { v: JOB_SCHEMA_VERSION, docId: `probe-${i}`, part: 0, parts: 1, docHash: "probe", enqueuedAt: Date.now(), metadata: {}, chunks }, opts: { jobId: `probe-${i}`, removeOnComplete: true } });
  }
  await queue.addBulk(jobs);
  for (;;) {
    const c = await queue.getJobCounts("waiting", "active", "prioritized", "delayed");
    if (c.waiting + c.active + c.prioritized + c.delayed === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const e2eS = (performance.now() - t0) / 1000;
  const sum = (name: string) => metricTotal(metrics, name);
  const tokens = await sum("embed_tokens_total");
  const padded = await sum("embed_padded_tokens_total");
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
  console.log(`model alone: ${texts.length} chunks, ${real} tokens, ${plan.length} batches, ${aloneS.toFixed(1)} s = ${(real / aloneS).toFixed(0)} tokens/s, padding efficiency ${alonePad.toFixed(3)}`);
  console.log(`end to end:  ${tokens} tokens in ${e2eS.toFixed(1)} s = ${(tokens / e2eS).toFixed(0)} tokens/s, padding efficiency ${(tokens / padded).toFixed(3)}, ratio to model alone ${((tokens / e2eS) / (real / aloneS)).toFixed(2)}`);
}

main().then(() => process.exit(0), (err: Error) => {
  console.error(`probe failed: ${err.message}`);
  process.exit(1);
});
