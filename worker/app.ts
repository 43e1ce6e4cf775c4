/** Wires the worker: HTTP probes → model files → attention budget → ONNX model thread (warmed
 *  up with the largest batch the planner can form) → tokenizer threads → sink → pipeline → BullMQ consumer, and with
 *  QUERY_API=true the query API on the same pipeline (its own tokenizer threads). Used by `main.ts`,
 *  the demo and the tests, so all of them run exactly the same assembly. Start-up fails fast
 *  (bad model, missing CUDA provider, incompatible collection) before any job is taken; the
 *  HTTP port comes up first so liveness answers while the model loads. */
import type { Logger } from "pino";
import type { Config } from "../shared/config.js";
import { ConfigError } from "./errors.js";
import { redactUrl } from "../shared/logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { closeRedis, redisConnection, type RedisClient } from "../shared/redis.js";
import { BGE_M3_DIMS, largestBatch, type ActivationDims } from "./core/activation-memory.js";
import { EmbeddingPipeline } from "./core/pipeline.js";
import { PROBE_TEXT } from "./core/layout-heads.js";
import type { EmbeddingModel, VectorSink } from "./core/ports.js";
import { describeLargestBatch, resolveAttentionBudget } from "./adapters/activation-plan.js";
import { readGpuMemory } from "./adapters/gpu-memory.js";
import { HealthState } from "./adapters/health.js";
import { startHttpServer, startRouteServer, type HttpServer, type ListenOptions } from "./adapters/http-server.js";
import { QueryApi } from "./adapters/query-api.js";
import { loadApiKeys, QueryAuth } from "./adapters/query-auth.js";
import { JsonlSink } from "./adapters/jsonl-sink.js";
import { locateModelFiles, type ModelFiles } from "./adapters/model-files.js";
import { modelMaxSeqLength, OnnxModel } from "./adapters/onnx-model.js";
import { QdrantSink } from "./adapters/qdrant-sink.js";
import { createShardConsumers, type ShardConsumers } from "./adapters/shard-consumers.js";
import { QueueMetrics } from "./adapters/queue-metrics.js";
import { resolveTokenizerBackend } from "./adapters/tokenizer-backend.js";
import { TokenizerPool } from "./adapters/tokenizer-pool.js";
import { shutdown, type ShutdownResult } from "./shutdown.js";

export interface RunningWorker {
  /** One BullMQ consumer per shard served (one for an unsharded queue). */
  worker: ShardConsumers;
  pipeline: EmbeddingPipeline;
  model: EmbeddingModel;
  sink: VectorSink;
  metrics: Metrics;
  health: HealthState;
  connection: RedisClient;
  /** The HTTP port actually bound (0 = no HTTP server). */
  httpPort: number;
  /** The port the query API answers on (0 = QUERY_API is off). */
  queryPort: number;
  /** Stops taking jobs and lets in-flight jobs finish; jobs still running after DRAIN_TIMEOUT_MS
   *  go back to the queue for another worker. Then releases every resource. Resolves within
   *  DRAIN_TIMEOUT_MS + SHUTDOWN_MARGIN_MS whatever Redis and Qdrant do (see `shutdown.ts`),
   *  with how many jobs were handed back and what was abandoned. */
  close(): Promise<ShutdownResult>;
}

export interface StartOptions {
  log: Logger;
  metrics?: Metrics;
  sink?: VectorSink;
  onFatal?: (err: Error) => void;
  /** Overrides HTTP_PORT (0 = any free port). */
  httpPort?: number;
  /** Overrides QUERY_API_PORT (0 = any free port of its own). */
  queryPort?: number;
  /** Wraps the loaded model, e.g. to inject faults in tests. */
  wrapModel?: (model: EmbeddingModel) => EmbeddingModel;
  /** A module URL whose `createSession(modelPath)` stands in for ONNX Runtime's session inside the
   *  model thread, everything after `session.run` unchanged: the bench's ceiling measurement
   *  (bench/ceiling/instant-session.ts) and nothing else. */
  sessionModule?: string;
}

export function createSink(cfg: Config, log: Logger): VectorSink {
  if (cfg.QDRANT_URL) return new QdrantSink(cfg, log);
  log.warn({ file: cfg.SINK_FILE }, "QDRANT_URL is not set: vectors go to a local JSONL file, not to Qdrant");
  return new JsonlSink(cfg.SINK_FILE);
}

/** The largest batch the planner can form (`largestBatch`: the most estimated activation memory
 *  under MAX_BATCH_TOKENS, MAX_BATCH_SIZE and MAX_BATCH_ATTENTION), so an allocation the device
 *  cannot hold fails here rather than on the first long job. Returns the shape run. */
export async function warmUp(
  model: EmbeddingModel,
  files: Pick<ModelFiles, "bosId" | "eosId">,
  cfg: Pick<Config, "MAX_BATCH_TOKENS" | "MAX_BATCH_SIZE" | "PAD_MULTIPLE"> &
    Partial<Pick<Config, "MAX_BATCH_ATTENTION">>,
  dims: ActivationDims = { ...BGE_M3_DIMS, bytes: 4 },
) {
  const limits = {
    maxBatchTokens: cfg.MAX_BATCH_TOKENS,
    maxBatchSize: cfg.MAX_BATCH_SIZE,
    padMultiple: cfg.PAD_MULTIPLE,
    maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
    maxSeqLength: Math.max(3, Math.min(model.info.maxSeqLength, cfg.MAX_BATCH_TOKENS)),
  };
  const { rows, paddedLength } = largestBatch(limits, dims);
  const length = Math.max(3, Math.min(limits.maxSeqLength, paddedLength));
  const seq = new Int32Array(length).fill(5);
  seq[0] = files.bosId;
  seq[length - 1] = files.eosId;
  const started = performance.now();
  await model.embed({ sequences: Array.from({ length: rows }, () => seq), paddedLength });
  return { rows, paddedLength, ms: Math.round(performance.now() - started) };
}

/** A port that serves the query API: headers within QUERY_TIMEOUT_MS; Node's own whole-request
 *  timeout only as a backstop behind the API's 408 (which counts from the end of the headers). */
function apiListen(cfg: Config, host: string): ListenOptions {
  return { host, headersTimeoutMs: cfg.QUERY_TIMEOUT_MS, requestTimeoutMs: 2 * cfg.QUERY_TIMEOUT_MS + 1000 };
}

export async function startWorker(settings: Config, opts: StartOptions): Promise<RunningWorker> {
  let cfg = settings;
  const { log } = opts;
  const metrics = opts.metrics ?? createMetrics();
  // Before anything is opened: a bad key file fails start-up with nothing to clean up.
  const auth = cfg.QUERY_API ? new QueryAuth(loadApiKeys(cfg), cfg) : undefined;
  const connection = redisConnection(cfg.REDIS_URL, cfg);
  connection.on("error", (err) => log.warn({ err: err.message }, "Redis connection error"));
  let sink: VectorSink | undefined;
  let consumer: ShardConsumers | undefined;
  const health = new HealthState(
    [
      { name: "redis", check: async () => void (await connection.ping()) },
      { name: "sink", check: async () => sink?.ping?.() },
      { name: "queue", check: async () => queueCheck(consumer) },
    ],
    { timeoutMs: cfg.HEALTH_CHECK_TIMEOUT_MS },
  );
  let details: Record<string, unknown> = { queue: cfg.QUEUE_NAME };
  const cleanups: Array<() => Promise<unknown>> = [];
  const wantHttp = opts.httpPort !== undefined || cfg.HTTP_PORT > 0;
  let http: HttpServer | undefined;
  let queryServer: HttpServer | undefined;
  const api = auth ? new QueryApi(cfg, auth, { metrics, log, health }) : undefined;
  const ownQueryPort = opts.queryPort ?? (cfg.QUERY_API_PORT > 0 ? cfg.QUERY_API_PORT : undefined);
  const apiHandler = api?.handle.bind(api);
  const httpListen = api && ownQueryPort === undefined ? apiListen(cfg, cfg.HTTP_HOST) : { host: cfg.HTTP_HOST };
  try {
    if (wantHttp || (api && ownQueryPort === undefined)) {
      http = await startHttpServer(
        opts.httpPort ?? cfg.HTTP_PORT,
        metrics.registry,
        {
          state: health,
          details: async () =>
            details.provider === "cuda"
              ? {
                  ...details,
                  gpuMemory: (await readGpuMemory(cfg.CUDA_DEVICE_ID, cfg.HEALTH_CHECK_TIMEOUT_MS)) ?? null,
                }
              : details,
        },
        ownQueryPort === undefined ? apiHandler : undefined,
        httpListen,
      );
      cleanups.push(() => http!.close());
    }
    if (apiHandler && ownQueryPort !== undefined) {
      queryServer = await startRouteServer(ownQueryPort, apiHandler, apiListen(cfg, cfg.QUERY_API_HOST));
      cleanups.push(() => queryServer!.close());
    }
    cleanups.push(() => closeRedis(connection));
    const tokenizerBackend = await resolveTokenizerBackend(cfg.TOKENIZER_BACKEND);
    log.info(tokenizerBackend, "tokenizer backend");
    details = { ...details, tokenizerBackend: tokenizerBackend.backend };
    await checkRedis(connection, cfg, cfg.REDIS_START_TIMEOUT_MS);
    const files = locateModelFiles(cfg.MODEL_DIR, cfg.MODEL_FILE);
    const attention = await resolveAttentionBudget(cfg, files, () =>
      readGpuMemory(cfg.CUDA_DEVICE_ID, cfg.HEALTH_CHECK_TIMEOUT_MS),
    );
    cfg = { ...cfg, MAX_BATCH_ATTENTION: attention.maxBatchAttention };
    // The tokenizer threads start first and tokenize the model's start-up probe, so the model thread
    // does not load a second copy of the vocabulary for one sentence (issue 15: peak memory).
    const maxSeqLength = modelMaxSeqLength(cfg, files);
    const tokenizer = new TokenizerPool({
      tokenizerPath: files.tokenizerPath,
      maxLength: maxSeqLength,
      eosId: files.eosId,
      backend: tokenizerBackend.backend,
      threads: cfg.TOKENIZER_THREADS,
    });
    cleanups.push(() => tokenizer.close());
    await tokenizer.ready();
    const [probe] = await tokenizer.encode([PROBE_TEXT]);
    const loaded = await OnnxModel.load(cfg, files, { probeIds: [...probe.ids], sessionModule: opts.sessionModule });
    cleanups.push(() => loaded.close());
    loaded.onFatal = (err) => {
      log.fatal({ err: err.message }, "model thread died");
      opts.onFatal?.(err);
    };
    const model = opts.wrapModel ? opts.wrapModel(loaded) : loaded;
    const info = loaded.info;
    if (info.maxSeqLength < cfg.MAX_SEQ_LENGTH) {
      log.warn(
        { MAX_SEQ_LENGTH: cfg.MAX_SEQ_LENGTH, modelLimit: info.maxSeqLength },
        "the model's position table is shorter than MAX_SEQ_LENGTH; truncating to the model's limit",
      );
    }
    log.info(
      {
        model: info.name,
        provider: info.provider,
        device: info.device,
        modelFile: files.modelPath,
        onnxOutputs: info.onnxOutputs,
        layout: info.layout,
        feeds: info.feeds,
        available: info.available,
        outputs: info.outputs,
        denseDim: info.denseDim,
        colbertDim: info.colbertDim,
        maxSeqLength: info.maxSeqLength,
      },
      "model loaded",
    );
    metrics.modelInfo.set(
      { model: info.name, provider: info.provider, outputs: info.outputs.join(","), device: info.device },
      1,
    );
    details = {
      ...details,
      model: info.name,
      provider: info.provider,
      device: info.device,
      outputs: info.outputs,
      maxSeqLength: info.maxSeqLength,
    };
    if (info.provider === "cuda")
      attachGpuMemory(metrics, cfg.CUDA_DEVICE_ID, info.device, cfg.METRICS_REDIS_TIMEOUT_MS);
    const largest = describeLargestBatch(cfg, attention, info.maxSeqLength);
    log.info(largest.log, "largest batch the planner can form, with its estimated activation memory");
    if (cfg.WARMUP) {
      const w = await warmUp(loaded, files, cfg, attention.dims);
      log.info(w, "warm-up batch (the largest the planner can form) done");
    }
    let queryTokenizer: TokenizerPool | undefined;
    if (api) {
      const qt = new TokenizerPool({
        tokenizerPath: files.tokenizerPath,
        maxLength: maxSeqLength,
        eosId: files.eosId,
        backend: tokenizerBackend.backend,
        threads: cfg.QUERY_TOKENIZER_THREADS,
      });
      cleanups.push(() => qt.close());
      await qt.ready();
      queryTokenizer = qt;
    }
    const s = opts.sink ?? createSink(cfg, log);
    sink = s;
    await s.init(info);
    cleanups.push(() => s.close());
    const pipeline = new EmbeddingPipeline(
      { ...cfg, MAX_SEQ_LENGTH: info.maxSeqLength },
      { tokenizer, model, sink: s, queryTokenizer },
      metrics,
      log,
    );
    const queueMetrics = new QueueMetrics({
      redisUrl: cfg.REDIS_URL,
      redis: cfg,
      queueName: cfg.QUEUE_NAME,
      prefix: cfg.QUEUE_PREFIX,
      shards: cfg.QUEUE_SHARDS,
      timeoutMs: cfg.METRICS_REDIS_TIMEOUT_MS,
      metrics,
      log,
    });
    cleanups.push(() => queueMetrics.close());
    const worker = createShardConsumers(cfg, pipeline, { connection, log, metrics });
    consumer = worker;
    api?.attach(pipeline, info);
    health.phase = "running";
    trackReadiness(metrics, health, worker);
    log.info(
      {
        queue: cfg.QUEUE_NAME,
        redis: redactUrl(cfg.REDIS_URL),
        ...(cfg.REDIS_CLUSTER_NODES ? { redisCluster: cfg.REDIS_CLUSTER_NODES, prefix: cfg.QUEUE_PREFIX } : {}),
        ...(cfg.QUEUE_SHARDS > 1
          ? { shards: worker.consumers.map((c) => ({ id: c.shard.id, prefix: c.shard.prefix, slot: c.shard.slot })) }
          : {}),
        sink: s.describe(),
        concurrency: cfg.WORKER_CONCURRENCY,
        httpPort: http?.port,
      },
      "worker started",
    );
    const queryPort = api ? (queryServer ?? http)!.port : 0;
    if (api) {
      log.info(
        {
          port: queryPort,
          apiKeys: auth!.required,
          rateLimit: cfg.QUERY_RATE_LIMIT || "off",
          fillTokens: cfg.QUERY_FILL_TOKENS,
          maxInputs: cfg.QUERY_MAX_INPUTS,
        },
        "query API answering (POST /v1/embeddings, POST /embed/batch, GET /v1/models)",
      );
    }

    let closing: Promise<ShutdownResult> | undefined;
    const close = () => (closing ??= shutdown({ cfg, worker, pipeline, connection, health, metrics, log, cleanups }));
    return {
      worker,
      pipeline,
      model,
      sink: s,
      metrics,
      health,
      connection,
      httpPort: http?.port ?? 0,
      queryPort,
      close,
    };
  } catch (err) {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    throw err;
  }
}

/** Fails start-up with a clear reason when Redis rejects the credentials or does not answer. */
async function checkRedis(connection: RedisClient, cfg: Config, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let lastError = "";
  const onError = (err: Error) => (lastError = err.message);
  connection.on("error", onError);
  try {
    await Promise.race([
      connection.ping(),
      new Promise(
        (_, reject) =>
          (timer = setTimeout(
            () =>
              reject(new Error(`no answer within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ""}`)),
            timeoutMs,
          )),
      ),
    ]);
  } catch (err) {
    const where = cfg.REDIS_CLUSTER_NODES
      ? `REDIS_CLUSTER_NODES: cannot use the Redis Cluster at ${cfg.REDIS_CLUSTER_NODES}`
      : `REDIS_URL: cannot use Redis at ${redactUrl(cfg.REDIS_URL)}`;
    throw new ConfigError([`${where}: ${(err as Error).message}`]);
  } finally {
    clearTimeout(timer);
    connection.off("error", onError);
  }
}

/** Fails while BullMQ cannot fetch jobs, naming the Redis error class and the last error. */
function queueCheck(worker: ShardConsumers | undefined): void {
  const n = worker?.notReady();
  const where = n?.shard === undefined ? "" : `shard ${n.shard}: `;
  if (n)
    throw new Error(
      `${where}${n.reason}: ${n.errors} BullMQ errors in ${n.sinceMs} ms with no job fetched: ${n.error}`,
    );
}

/** `embed_ready` follows the phase and whether BullMQ can fetch jobs, read at scrape time. */
function trackReadiness(metrics: Metrics, health: HealthState, worker: ShardConsumers): void {
  const gauge = metrics.ready as unknown as { collect?: () => void };
  gauge.collect = () => metrics.ready.set(health.phase === "running" && !worker.notReady() ? 1 : 0);
  metrics.ready.set(1);
}

function attachGpuMemory(metrics: Metrics, deviceId: number, device: string, timeoutMs: number): void {
  const collect = async () => {
    const mem = await readGpuMemory(deviceId, timeoutMs);
    if (!mem) return;
    metrics.gpuMemoryUsed.set({ device }, mem.usedBytes);
    metrics.gpuMemoryTotal.set({ device }, mem.totalBytes);
  };
  (metrics.gpuMemoryUsed as unknown as { collect?: () => Promise<void> }).collect = collect;
}
