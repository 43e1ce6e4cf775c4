/** Wires the worker: model files → ONNX model thread → tokenizer threads → sink → pipeline →
 *  BullMQ consumer. Used by `main.ts`, the demo and the integration tests, so all three run
 *  exactly the same assembly. Start-up fails fast (bad model, missing CUDA provider,
 *  incompatible collection) before any job is taken. */
import type { Redis } from "ioredis";
import { redisConnection } from "../shared/redis.js";
import type { Worker } from "bullmq";
import type { Logger } from "pino";
import type { Config } from "../shared/config.js";
import { redactUrl } from "../shared/logger.js";
import { createMetrics, type Metrics } from "../shared/metrics.js";
import { EmbeddingPipeline } from "./core/pipeline.js";
import type { EmbeddingModel, VectorSink } from "./core/ports.js";
import { JsonlSink } from "./adapters/jsonl-sink.js";
import { locateModelFiles } from "./adapters/model-files.js";
import { OnnxModel } from "./adapters/onnx-model.js";
import { QdrantSink } from "./adapters/qdrant-sink.js";
import { createQueueConsumer } from "./adapters/queue-consumer.js";
import { TokenizerPool } from "./adapters/tokenizer-pool.js";
import { startHttpServer } from "./adapters/http-server.js";

export interface RunningWorker {
  worker: Worker;
  pipeline: EmbeddingPipeline;
  model: EmbeddingModel;
  sink: VectorSink;
  metrics: Metrics;
  connection: Redis;
  /** The HTTP port actually bound (0 = no HTTP server). */
  httpPort: number;
  /** Stops taking jobs, lets in-flight jobs finish, then releases every resource. */
  close(): Promise<void>;
}

export function createSink(cfg: Config, log: Logger): VectorSink {
  if (cfg.QDRANT_URL) return new QdrantSink(cfg, log);
  log.warn({ file: cfg.SINK_FILE }, "QDRANT_URL is not set: vectors go to a local JSONL file, not to Qdrant");
  return new JsonlSink(cfg.SINK_FILE);
}


export async function startWorker(
  cfg: Config,
  opts: { log: Logger; metrics?: Metrics; sink?: VectorSink; onFatal?: (err: Error) => void; httpPort?: number },
): Promise<RunningWorker> {
  const { log } = opts;
  const metrics = opts.metrics ?? createMetrics();
  const files = locateModelFiles(cfg.MODEL_DIR, cfg.MODEL_FILE);
  const model = await OnnxModel.load(cfg, files);
  model.onFatal = (err) => {
    log.fatal({ err: err.message }, "model thread died");
    opts.onFatal?.(err);
  };
  const info = model.info;
  if (info.maxSeqLength < cfg.MAX_SEQ_LENGTH) {
    log.warn({ MAX_SEQ_LENGTH: cfg.MAX_SEQ_LENGTH, modelLimit: info.maxSeqLength }, "the model's position table is shorter than MAX_SEQ_LENGTH; truncating to the model's limit");
  }
  log.info({ model: info.name, provider: info.provider, device: info.device, onnxOutputs: info.onnxOutputs, available: info.available, outputs: info.outputs, denseDim: info.denseDim, colbertDim: info.colbertDim, maxSeqLength: info.maxSeqLength }, "model loaded");
  metrics.modelInfo.set({ model: info.name, provider: info.provider, outputs: info.outputs.join(","), device: info.device }, 1);
  const tokenizer = new TokenizerPool({ tokenizerPath: files.tokenizerPath, maxLength: info.maxSeqLength, eosId: files.eosId, threads: cfg.TOKENIZER_THREADS });
  const sink = opts.sink ?? createSink(cfg, log);
  try {
    await sink.init(info);
  } catch (err) {
    await Promise.allSettled([tokenizer.close(), model.close()]);
    throw err;
  }
  const pipeline = new EmbeddingPipeline({ ...cfg, MAX_SEQ_LENGTH: info.maxSeqLength }, { tokenizer, model, sink }, metrics, log);
  const connection = redisConnection(cfg.REDIS_URL);
  connection.on("error", (err) => log.warn({ err: err.message }, "Redis connection error"));
  const worker = createQueueConsumer(cfg, pipeline, { connection, log, metrics });
  let closingStarted = false;
  const http = cfg.HTTP_PORT > 0 || opts.httpPort !== undefined
    ? await startHttpServer(opts.httpPort ?? cfg.HTTP_PORT, metrics.registry, {
        ready: () => !closingStarted && worker.isRunning(),
        details: () => ({ model: info.name, provider: info.provider, device: info.device, outputs: info.outputs, queue: cfg.QUEUE_NAME, inFlightJobs: pipeline.inFlightJobs }),
      })
    : undefined;
  log.info({ queue: cfg.QUEUE_NAME, redis: redactUrl(cfg.REDIS_URL), sink: sink.describe(), concurrency: cfg.WORKER_CONCURRENCY, httpPort: http?.port }, "worker started");
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      closingStarted = true;
      await worker.close();
      await pipeline.drain();
      await Promise.allSettled([tokenizer.close(), model.close(), sink.close()]);
      await connection.quit().catch(() => connection.disconnect());
      await http?.close();
    })());
  return { worker, pipeline, model, sink, metrics, connection, httpPort: http?.port ?? 0, close };
}
