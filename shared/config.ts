/** The one configuration schema for every process (worker, producer, demo), read from the
 *  environment once at start-up. Every variable carries its unit and default in `.describe()`
 *  so docs/configuration.md and `--help` output come from the same place. Parsing reports every
 *  problem at once; cross-field rules name both keys and values. Performs no I/O. */
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { parseShardIds } from "./queue-shards.js";

const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const flag = (def: boolean) => z.stringbool().default(def);

export const OUTPUT_KINDS = ["dense", "sparse", "colbert"] as const;
export type OutputKind = (typeof OUTPUT_KINDS)[number];

const outputsSchema = z
  .string()
  .default("dense,sparse")
  .transform((s, ctx) => {
    const parts = s
      .split(",")
      .map((p) => p.trim().toLowerCase())
      .filter(Boolean);
    const bad = parts.filter((p) => !(OUTPUT_KINDS as readonly string[]).includes(p));
    if (bad.length > 0 || parts.length === 0) {
      ctx.addIssue({
        code: "custom",
        message: `unknown output(s) "${bad.join(",")}"; use a comma list of ${OUTPUT_KINDS.join(", ")}`,
      });
      return z.NEVER;
    }
    return [...new Set(parts)] as OutputKind[];
  });

/** `dense=foo,sparse=bar,colbert=baz`: which ONNX output feeds each kind (issue 12). */
const outputNamesSchema = z
  .string()
  .optional()
  .transform((s, ctx) => {
    if (s === undefined) return undefined;
    const map: Partial<Record<OutputKind, string>> = {};
    for (const part of s
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean)) {
      const [kind, name, ...rest] = part.split("=").map((x) => x.trim());
      if (!(OUTPUT_KINDS as readonly string[]).includes(kind) || !name || rest.length > 0 || map[kind as OutputKind]) {
        const kinds = OUTPUT_KINDS.join(", ");
        ctx.addIssue({ code: "custom", message: `"${part}" is not <kind>=<output name>, each kind once, of ${kinds}` });
        return z.NEVER;
      }
      map[kind as OutputKind] = name;
    }
    return map;
  });

/** `0,2` → [0, 2] (range checked against QUEUE_SHARDS below); unset stays undefined = every shard. */
const shardIdsSchema = z
  .string()
  .optional()
  .transform((s, ctx) => {
    if (s === undefined) return undefined;
    const ids = parseShardIds(s, Number.MAX_SAFE_INTEGER);
    if (typeof ids === "string") {
      ctx.addIssue({ code: "custom", message: ids });
      return z.NEVER;
    }
    return ids;
  });

const HASH_TAG_RULE = "letters, digits, _ . - only, with at most one {hash tag} such as {bull}";

export const configShape = {
  REDIS_URL: z
    .string()
    .url()
    .default("redis://127.0.0.1:6379")
    .describe("Redis connection URL (redis:// or rediss:// for TLS; a password in the URL is never logged)"),
  REDIS_TLS_CA_FILE: z
    .string()
    .min(1)
    .optional()
    .describe("PEM file of the CA that signed Redis's TLS certificate (rediss:// URLs); unset = the system CAs"),
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^\s*[^\s:,/]+:\d{1,5}\s*(?:,\s*[^\s:,/]+:\d{1,5}\s*)*$/, "a comma list of host:port")
    .optional()
    .describe(
      "Redis Cluster seed nodes, comma list of host:port; unset = one Redis at REDIS_URL. When set, REDIS_URL's " +
        "host is not used: its scheme (rediss:// = TLS) and password apply to every node, and QUEUE_PREFIX needs a {hash tag}",
    ),
  QUEUE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, _ . - only")
    .default("embed")
    .describe("BullMQ queue name"),
  QUEUE_PREFIX: z
    .string()
    .regex(/^(?:[A-Za-z0-9_.-]+|[A-Za-z0-9_.-]*\{[A-Za-z0-9_.-]+\}[A-Za-z0-9_.-]*)$/, HASH_TAG_RULE)
    .default("bull")
    .describe(
      "BullMQ key prefix (keys are <prefix>:<queue>:...); on a Redis Cluster it must hold a hash tag such as " +
        "{bull}, which keeps all of a queue's keys on one master",
    ),
  QUEUE_SHARDS: int(1, 1, 128).describe(
    "Shards of the queue: BullMQ queues under one hash tag each (QUEUE_PREFIX's tag + -<shard>), spread over the " +
      "cluster's slots; producers place each document by a hash of its id; 1 = one queue under QUEUE_PREFIX as it " +
      "is. Producers and workers must agree, and it changes only on an empty queue (docs/operations.md)",
  ),
  QUEUE_SHARD_IDS: shardIdsSchema.describe(
    "Shards this worker consumes, comma list of ids from 0 (e.g. 0,2); unset = every shard. Producers ignore it",
  ),
  QDRANT_URL: z
    .string()
    .url()
    .optional()
    .describe("Qdrant REST URL; unset = write vectors to SINK_FILE (JSONL) instead, with a warning"),
  QDRANT_API_KEY: z.string().min(1).optional().describe("Qdrant API key (never logged)"),
  QDRANT_TIMEOUT_MS: int(30_000, 100).describe("Qdrant request timeout, milliseconds"),
  QDRANT_UPSERT_BODY: z
    .enum(["prebuilt", "client"])
    .default("prebuilt")
    .describe(
      "How upsert requests are built: prebuilt = vectors written as JSON in the model thread, the body " +
        "assembled as bytes and sent with node:http; client = the official Qdrant client serialises each request " +
        "on the main thread (slower; the fallback)",
    ),
  COLLECTION: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default("transcripts")
    .describe("Qdrant collection name"),
  SINK_FILE: z.string().default("out/vectors.jsonl").describe("JSONL file the vectors go to when QDRANT_URL is unset"),
  STORE_TEXT: flag(true).describe("Store the chunk text in the point payload (true/false)"),
  UPSERT_MAX_BYTES: int(8 * 1024 * 1024, 16 * 1024).describe(
    "Largest Qdrant upsert request, bytes (estimated JSON size); Qdrant's default limit is 32 MiB",
  ),
  UPSERT_MAX_POINTS: int(256, 1).describe("Most points in one upsert request"),
  UPSERT_LINGER_MS: int(10, 0).describe(
    "How long points wait to be grouped with others before an upsert, milliseconds",
  ),
  STALE_DELETE_MAX_DOCS: int(128, 1, 10_000).describe(
    "Most documents whose stale points one delete request removes (grouped filter); 1 = one request per document",
  ),
  STALE_DELETE_LINGER_MS: int(10, 0).describe(
    "How long a document's stale-point removal waits to be grouped with others' in one delete, milliseconds (0: only removals that complete together or while a delete is in flight)",
  ),
  SINK_RETRIES: int(5, 0, 50).describe(
    "Retries of a failed upsert or stale-point delete before its jobs fail (and BullMQ retries them)",
  ),
  SINK_RETRY_BASE_MS: int(200, 1).describe(
    "First retry delay of a failed upsert or delete, milliseconds (doubles each retry)",
  ),
  MODEL_DIR: z
    .string()
    .default("models/bge-m3")
    .describe("Folder with the ONNX export (found as MODEL_FILE says), tokenizer.json and config.json"),
  MODEL_FILE: z
    .string()
    .optional()
    .describe(
      "ONNX file inside MODEL_DIR; unset = the one of model.onnx, model_fp16.onnx, model_quantized.onnx, " +
        "bge_m3_model.onnx (in MODEL_DIR or its onnx/ folder) that exists; several exist = refused, set this",
    ),
  MODEL_OUTPUT_NAMES: outputNamesSchema.describe(
    "Which ONNX output feeds each vector kind, as `dense=<output>,sparse=<output>,colbert=<output>` (any subset), " +
      "for exports whose output names the worker does not know; unset = recognised by name (dense_vecs, dense, " +
      "dense_embeddings, sentence_embedding, last_hidden_state and their sparse/ColBERT companions)",
  ),
  MODEL_NAME: z.string().default("BAAI/bge-m3").describe("Model name written into each point's payload and metrics"),
  EXECUTION_PROVIDER: z
    .enum(["cpu", "cuda"])
    .default("cpu")
    .describe("ONNX Runtime execution provider: cpu or cuda (never falls back silently)"),
  CUDA_DEVICE_ID: int(0, 0, 63).describe("CUDA device index when EXECUTION_PROVIDER=cuda"),
  INTRA_OP_THREADS: int(0, 0, 256).describe("ONNX Runtime intra-op threads; 0 = ONNX Runtime's default (all cores)"),
  MAX_BATCH_TOKENS: z.coerce
    .number()
    .int()
    .min(8)
    .optional()
    .describe(
      "Padded-token budget of one model batch (batch size x padded length), tokens; unset = 16384 on cuda, on cpu " +
        "4096 or one padded MAX_SEQ_LENGTH row if longer (a CPU gains little from larger batches; issue 15)",
    ),
  MAX_BATCH_SIZE: int(64, 1, 4096).describe("Most chunks in one model batch"),
  MAX_BATCH_ATTENTION: z.coerce
    .number()
    .int()
    .min(64)
    .optional()
    .describe(
      "Attention budget of one model batch, cells: rows x padded length², per head and layer (unfused attention " +
        "memory is heads x bytes x this per score tensor; see docs/models.md); must hold one row of MAX_SEQ_LENGTH; " +
        "unset = on cpu one row of MAX_SEQ_LENGTH (padded, squared: 4194304 at 2048), on cuda derived at start-up " +
        "from the device's memory when nvidia-smi reports it, else 67108864 (one 8,192-token row)",
    ),
  MAX_SEQ_LENGTH: z.coerce
    .number()
    .int()
    .min(8)
    .max(1_000_000)
    .optional()
    .describe(
      "Longest sequence fed to the model, tokens including <s> and </s>; longer chunks are truncated (counted) or " +
        "fail with TRUNCATE=false. Unset = 8192 on cuda (BGE-M3's limit), 2048 on cpu (4x the producer's " +
        "CHUNK_TOKENS default; one 8,192-token row alone needs GBs of attention memory on a CPU; issue 15)",
    ),
  PAD_MULTIPLE: z.coerce
    .number()
    .int()
    .min(1)
    .max(512)
    .optional()
    .describe(
      "Batches are padded to a multiple of this many tokens (fp16 tensor cores prefer 8; on a CPU padding only costs)",
    ),
  BATCH_OVERHEAD_TOKENS: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      "Fixed cost of one model call in token-equivalents, used to decide when splitting a batch to save padding pays; a GPU call costs more tokens' worth than a CPU call",
    ),
  BATCH_STRATEGY: z
    .enum(["sorted", "fifo"])
    .default("sorted")
    .describe(
      "sorted: length-sorted, token-budgeted batches (use this); fifo: fixed-size batches of MAX_BATCH_SIZE in arrival order with no token budget (for benchmarks)",
    ),
  BATCH_LINGER_MS: int(5, 0).describe("How long a partly filled batch may wait for more chunks, milliseconds"),
  TRUNCATE: flag(true).describe(
    "true: truncate chunks longer than MAX_SEQ_LENGTH (counted); false: fail their job with reason too_long",
  ),
  OUTPUTS: outputsSchema.describe(
    "Vectors to produce: comma list of dense, sparse, colbert (colbert is ~2 MB per 512-token chunk)",
  ),
  WORKER_CONCURRENCY: int(64, 1, 10_000).describe(
    "Jobs in flight per worker (BullMQ concurrency): the pool the batcher sorts",
  ),
  TOKENIZER_THREADS: int(1, 1, 64).describe("Tokenizer worker threads"),
  TOKENIZER_BACKEND: z
    .enum(["auto", "native", "js"])
    .default("auto")
    .describe(
      "Tokenizer library of the worker's and the query API's tokenizer threads: native (the `tokenizers` package, " +
        "Rust; ~4x the tokens per CPU-second), js (@huggingface/tokenizers, pure JS), auto = native where its " +
        "binary loads, else js (logged with the reason); native that cannot load fails at start-up",
    ),
  // 15 s / 5 s: a SIGKILLed worker's jobs are back in the queue at most LOCK + STALLED = 20 s later, while the
  // lock, renewed every 7.5 s, keeps a ~30x margin over the worst main-thread stall measured under a
  // saturating backlog (test/e2e/lock-margin.test.ts, docs/reliability-and-security.md; issue 16).
  LOCK_DURATION_MS: int(15_000, 1000).describe(
    "BullMQ job lock, milliseconds, renewed every half of it: a crashed worker's jobs are retried at most this " +
      "plus STALLED_INTERVAL_MS later; a main-thread stall or Redis outage longer than half of it lets another " +
      "worker redo the job",
  ),
  STALLED_INTERVAL_MS: int(5_000, 1000).describe(
    "How often BullMQ looks for jobs whose lock expired (stalled), milliseconds; one check per queue per " +
      "interval, fleet-wide",
  ),
  JOB_ATTEMPTS: int(5, 1, 100).describe("Attempts per job before it lands in the failed set"),
  JOB_BACKOFF_MS: int(2000, 0).describe("First retry delay of a failed job, milliseconds (exponential)"),
  REMOVE_ON_COMPLETE: int(1000, 0).describe("Completed jobs kept in Redis (count)"),
  REMOVE_ON_FAIL: int(50_000, 0).describe("Failed jobs kept in Redis (count)"),
  CHUNK_TOKENS: int(512, 8).describe("Target chunk size, tokens including <s> and </s>"),
  CHUNK_OVERLAP_TOKENS: int(64, 0).describe("Overlap between consecutive chunks of a document, tokens"),
  MAX_CHUNKS_PER_JOB: int(64, 1, 10_000).describe("Most chunks in one job; longer documents span several jobs"),
  MAX_CHUNK_CHARS: int(200_000, 1).describe(
    "Largest chunk text accepted by the worker, characters (checked before tokenizing)",
  ),
  MAX_JOB_BYTES: int(32 * 1024 * 1024, 1024).describe(
    "Largest total of a job's chunk texts, bytes (UTF-8), checked on the raw job before the schema parse; the producer's jobs (MAX_CHUNKS_PER_JOB chunks of CHUNK_TOKENS) are far below it",
  ),
  MAX_METADATA_DEPTH: int(64, 1, 1000).describe(
    "Deepest nesting of a job's metadata (the metadata object itself is level 1), checked on the raw job before the schema parse; the producer refuses metadata deeper than 32",
  ),
  MAX_METADATA_BYTES: int(1024 * 1024, 1024).describe(
    "Largest metadata of one job (its own plus all its chunks'), bytes as JSON (estimated), checked on the raw job before the schema parse",
  ),
  DRAIN_TIMEOUT_MS: int(60_000, 0).describe(
    "On SIGTERM: how long in-flight jobs may run to completion before they are handed back to the queue for another worker, milliseconds; the process exits at the latest 5 s after it, whatever Redis and Qdrant do (keep below the pod's terminationGracePeriodSeconds)",
  ),
  WARMUP: flag(true).describe(
    "Run the largest batch the planner can form (most estimated activation memory under MAX_BATCH_TOKENS, " +
      "MAX_BATCH_SIZE and MAX_BATCH_ATTENTION) before reporting ready, so a budget the device cannot hold fails " +
      "at start-up, not on the first job",
  ),
  REDIS_START_TIMEOUT_MS: int(30_000, 100).describe(
    "At start-up the worker waits this long for Redis to answer, then exits with the reason (wrong password, unreachable), milliseconds",
  ),
  HEALTH_CHECK_TIMEOUT_MS: int(1000, 50).describe(
    "Readiness checks of Redis and the sink time out after this long, milliseconds",
  ),
  METRICS_REDIS_TIMEOUT_MS: int(500, 10).describe(
    "A /metrics scrape waits at most this long for the queue gauges from Redis, milliseconds; past it they keep their last values",
  ),
  HTTP_PORT: int(9464, 0, 65535).describe("Worker HTTP port for /metrics and /health (0 = disabled)"),
  HTTP_HOST: z
    .string()
    .default("")
    .describe(
      "Address HTTP_PORT listens on, e.g. 127.0.0.1 to keep /metrics and /health local; empty = every interface",
    ),
  QUERY_API: flag(false).describe(
    "Serve query-time embeddings from this worker's model: POST /v1/embeddings (OpenAI-compatible), POST /embed/batch, GET /v1/models (true/false)",
  ),
  QUERY_API_PORT: int(0, 0, 65535).describe("Port of the query API; 0 = on HTTP_PORT beside /metrics and /health"),
  QUERY_API_HOST: z
    .string()
    .optional()
    .describe("Address QUERY_API_PORT listens on; empty = every interface; unset = HTTP_HOST"),
  QUERY_MAX_INPUTS: int(32, 1, 4096).describe("Most texts in one query request"),
  QUERY_MAX_BODY_BYTES: int(2 * 1024 * 1024, 1024).describe(
    "Largest query request body, bytes; larger requests get 413",
  ),
  QUERY_TIMEOUT_MS: int(10_000, 10).describe(
    "A query request that has not been answered within this long gets 408, milliseconds",
  ),
  QUERY_FILL_TOKENS: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      "Padded-token budget of a batch that carries interactive (query) chunks: queued chunks fill it up to this; it bounds how long a query's own batch runs; 0 = query-only batches",
    ),
  QUERY_TOKENIZER_THREADS: int(1, 1, 64).describe(
    "Tokenizer threads reserved for query requests, so queries never wait behind a large job's tokenization",
  ),
  QUERY_API_KEYS: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Comma list of API keys the query API accepts as `Authorization: Bearer <key>` (never logged); " +
        "unset with QUERY_API_KEYS_FILE unset = no authentication; set but holding no key = refused at start-up",
    ),
  QUERY_API_KEYS_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      "File of API keys, one per line, added to QUERY_API_KEYS; " +
        "# starts a comment at the start of a line or after whitespace",
    ),
  QUERY_RATE_LIMIT: z.coerce
    .number()
    .min(0)
    .default(0)
    .describe(
      "Texts per second each API key (or, without keys, each client address) may embed; token bucket; 0 = unlimited",
    ),
  QUERY_RATE_BURST: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe("Token-bucket size of the rate limit, texts: the burst a key may send at once"),
  QUERY_AUTH_FAILURES_PER_MINUTE: int(10, 0).describe(
    "With API keys: failed authentications (401) a client address may make per minute before it gets 429; " +
      "0 = unlimited",
  ),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info")
    .describe("pino log level"),
};

/** Defaults that depend on EXECUTION_PROVIDER (`npm run bench` measured both on a CPU: padding
 *  efficiency 0.88 with 8/128, 0.97 with 1/32, at equal throughput). */
export const PROVIDER_DEFAULTS = {
  PAD_MULTIPLE: { cpu: 1, cuda: 8 },
  BATCH_OVERHEAD_TOKENS: { cpu: 32, cuda: 128 },
  // A CPU worker at these defaults peaks under 1.5 GB on the reference transcripts with the bench model
  // (bench/memory/peak-rss.ts, docs/performance.md#memory) and keeps its throughput (issue 15).
  MAX_SEQ_LENGTH: { cpu: 2048, cuda: 8192 },
  /** On cpu, at least one padded MAX_SEQ_LENGTH row (resolveBatchDefaults). */
  MAX_BATCH_TOKENS: { cpu: 4096, cuda: 16_384 },
} as const;

/** Default MAX_BATCH_ATTENTION on cuda when the device's memory is unknown: one row of BGE-M3's longest
 *  sequence (8,192² cells). On cpu the default is one row of MAX_SEQ_LENGTH: the least the worker can run
 *  with, so the warm-up batch is one such row instead of MAX_BATCH_TOKENS / MAX_SEQ_LENGTH of them (issue 15). */
export const DEFAULT_BATCH_ATTENTION = 8192 * 8192;

type Provider = keyof typeof PROVIDER_DEFAULTS.PAD_MULTIPLE;

/** MAX_SEQ_LENGTH, MAX_BATCH_TOKENS and MAX_BATCH_ATTENTION with the provider's defaults for the unset
 *  ones; an explicit value always wins (the cross-field checks then name it). */
export function resolveBatchDefaults(
  c: { EXECUTION_PROVIDER: Provider; PAD_MULTIPLE: number } & Partial<
    Record<"MAX_SEQ_LENGTH" | "MAX_BATCH_TOKENS" | "MAX_BATCH_ATTENTION", number>
  >,
): { MAX_SEQ_LENGTH: number; MAX_BATCH_TOKENS: number; MAX_BATCH_ATTENTION: number } {
  const p = c.EXECUTION_PROVIDER;
  const seq = c.MAX_SEQ_LENGTH ?? PROVIDER_DEFAULTS.MAX_SEQ_LENGTH[p];
  const longest = Math.ceil(seq / c.PAD_MULTIPLE) * c.PAD_MULTIPLE;
  const tokens = PROVIDER_DEFAULTS.MAX_BATCH_TOKENS[p];
  return {
    MAX_SEQ_LENGTH: seq,
    MAX_BATCH_TOKENS: c.MAX_BATCH_TOKENS ?? (p === "cpu" ? Math.max(tokens, longest) : tokens),
    MAX_BATCH_ATTENTION: c.MAX_BATCH_ATTENTION ?? (p === "cpu" ? longest * longest : DEFAULT_BATCH_ATTENTION),
  };
}

/** Default QUERY_FILL_TOKENS = MAX_BATCH_TOKENS / 4: a query waits for at most the batch already
 *  running plus its own, which then runs in about a quarter of a full batch's time. */
export const QUERY_FILL_SHARE = 4;

export const configSchema = z
  .object(configShape)
  .transform((c) => {
    const PAD_MULTIPLE = c.PAD_MULTIPLE ?? PROVIDER_DEFAULTS.PAD_MULTIPLE[c.EXECUTION_PROVIDER];
    const batch = resolveBatchDefaults({ ...c, PAD_MULTIPLE });
    return {
      ...c,
      ...batch,
      PAD_MULTIPLE,
      BATCH_OVERHEAD_TOKENS: c.BATCH_OVERHEAD_TOKENS ?? PROVIDER_DEFAULTS.BATCH_OVERHEAD_TOKENS[c.EXECUTION_PROVIDER],
      QUERY_FILL_TOKENS: c.QUERY_FILL_TOKENS ?? Math.floor(batch.MAX_BATCH_TOKENS / QUERY_FILL_SHARE),
      QUERY_RATE_BURST: c.QUERY_RATE_BURST ?? Math.max(c.QUERY_MAX_INPUTS, Math.ceil(c.QUERY_RATE_LIMIT)),
      QUERY_API_HOST: c.QUERY_API_HOST ?? c.HTTP_HOST,
      /** Not an environment variable: MAX_BATCH_ATTENTION is unset on cuda, so start-up may derive it
       *  from the device's memory (worker/adapters/activation-plan.ts). */
      attentionFromDevice: c.MAX_BATCH_ATTENTION === undefined && c.EXECUTION_PROVIDER === "cuda",
      QUEUE_SHARD_IDS: c.QUEUE_SHARD_IDS ?? Array.from({ length: c.QUEUE_SHARDS }, (_, i) => i),
    };
  })
  .superRefine((c, ctx) => {
    const longest = Math.ceil(c.MAX_SEQ_LENGTH / c.PAD_MULTIPLE) * c.PAD_MULTIPLE;
    if (c.MAX_BATCH_TOKENS < longest) {
      ctx.addIssue({
        code: "custom",
        path: ["MAX_BATCH_TOKENS"],
        message: `MAX_BATCH_TOKENS=${c.MAX_BATCH_TOKENS} cannot hold one chunk of MAX_SEQ_LENGTH=${c.MAX_SEQ_LENGTH} padded to PAD_MULTIPLE=${c.PAD_MULTIPLE} (${longest} tokens); raise MAX_BATCH_TOKENS or lower MAX_SEQ_LENGTH`,
      });
    }
    if (longest * longest > c.MAX_BATCH_ATTENTION) {
      ctx.addIssue({
        code: "custom",
        path: ["MAX_BATCH_ATTENTION"],
        message:
          `MAX_BATCH_ATTENTION=${c.MAX_BATCH_ATTENTION} cannot hold one chunk of MAX_SEQ_LENGTH=${c.MAX_SEQ_LENGTH} ` +
          `padded to PAD_MULTIPLE=${c.PAD_MULTIPLE} (${longest}² = ${longest * longest} cells); ` +
          "raise MAX_BATCH_ATTENTION or lower MAX_SEQ_LENGTH",
      });
    }
    if (c.CHUNK_OVERLAP_TOKENS >= c.CHUNK_TOKENS - 2) {
      ctx.addIssue({
        code: "custom",
        path: ["CHUNK_OVERLAP_TOKENS"],
        message: `CHUNK_OVERLAP_TOKENS=${c.CHUNK_OVERLAP_TOKENS} must be smaller than CHUNK_TOKENS=${c.CHUNK_TOKENS} minus 2`,
      });
    }
    if (c.CHUNK_TOKENS > c.MAX_SEQ_LENGTH) {
      ctx.addIssue({
        code: "custom",
        path: ["CHUNK_TOKENS"],
        message: `CHUNK_TOKENS=${c.CHUNK_TOKENS} exceeds MAX_SEQ_LENGTH=${c.MAX_SEQ_LENGTH}: every chunk would be truncated`,
      });
    }
    if (c.QUERY_FILL_TOKENS > c.MAX_BATCH_TOKENS) {
      ctx.addIssue({
        code: "custom",
        path: ["QUERY_FILL_TOKENS"],
        message: `QUERY_FILL_TOKENS=${c.QUERY_FILL_TOKENS} exceeds MAX_BATCH_TOKENS=${c.MAX_BATCH_TOKENS}`,
      });
    }
    if (c.QUERY_API && c.QUERY_API_PORT === 0 && c.HTTP_PORT === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["QUERY_API_PORT"],
        message: "QUERY_API=true needs a port: set QUERY_API_PORT, or HTTP_PORT (it is 0)",
      });
    }
    if (c.QUERY_API_PORT !== 0 && c.QUERY_API_PORT === c.HTTP_PORT) {
      ctx.addIssue({
        code: "custom",
        path: ["QUERY_API_PORT"],
        message: `QUERY_API_PORT=${c.QUERY_API_PORT} equals HTTP_PORT; use 0 to serve the query API on HTTP_PORT`,
      });
    }
    if (c.REDIS_CLUSTER_NODES && !c.QUEUE_PREFIX.includes("{")) {
      ctx.addIssue({
        code: "custom",
        path: ["QUEUE_PREFIX"],
        message: `QUEUE_PREFIX=${c.QUEUE_PREFIX} has no {hash tag} but REDIS_CLUSTER_NODES is set: BullMQ's scripts touch several keys of a queue at once, which a cluster accepts only in one slot; use e.g. QUEUE_PREFIX={${c.QUEUE_PREFIX}}`,
      });
    }
    const outside = c.QUEUE_SHARD_IDS.filter((id) => id >= c.QUEUE_SHARDS);
    if (outside.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["QUEUE_SHARD_IDS"],
        message: `QUEUE_SHARD_IDS=${c.QUEUE_SHARD_IDS.join(",")} names shard ${outside.join(", ")}, which QUEUE_SHARDS=${c.QUEUE_SHARDS} does not have (ids are 0 to ${c.QUEUE_SHARDS - 1})`,
      });
    }
    if (c.QDRANT_API_KEY && !c.QDRANT_URL) {
      ctx.addIssue({
        code: "custom",
        path: ["QDRANT_API_KEY"],
        message: "QDRANT_API_KEY is set but QDRANT_URL is not",
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** Parses the environment; throws one ConfigError listing every problem. Unknown variables are ignored. */
export function parseConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configShape)) {
    const v = env[key];
    if (v !== undefined && v !== "") input[key] = v;
  }
  const res = configSchema.safeParse(input);
  if (res.success) return res.data;
  const problems = res.error.issues.map((i) => {
    const key = i.path.join(".") || "config";
    const given = input[key] !== undefined && !/KEY|PASSWORD|URL/.test(key) ? ` (got "${input[key]}")` : "";
    return `${key}: ${i.message}${given}`;
  });
  throw new ConfigError(problems);
}

/** For CLIs: parse or print every problem and exit 2. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `Invalid configuration (${err.problems.length} problem${err.problems.length > 1 ? "s" : ""}):\n`,
      );
      for (const p of err.problems) process.stderr.write(`  - ${p}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const DERIVED_DEFAULTS: Record<string, string> = {
  QUERY_FILL_TOKENS: `MAX_BATCH_TOKENS / ${QUERY_FILL_SHARE}`,
  QUERY_RATE_BURST: "max(QUERY_MAX_INPUTS, QUERY_RATE_LIMIT)",
  QUERY_API_HOST: "HTTP_HOST",
  QUEUE_SHARD_IDS: "every shard (0 to QUEUE_SHARDS-1)",
  MAX_BATCH_ATTENTION: `cpu: padded MAX_SEQ_LENGTH²; cuda: from the device's memory, else ${DEFAULT_BATCH_ATTENTION}`,
  MAX_BATCH_TOKENS: `cpu: max(${PROVIDER_DEFAULTS.MAX_BATCH_TOKENS.cpu}, padded MAX_SEQ_LENGTH); cuda: ${PROVIDER_DEFAULTS.MAX_BATCH_TOKENS.cuda}`,
};

/** Rows for documentation: name, description, default. */
export function describeConfig(): Array<{ name: string; description: string; default: string }> {
  return Object.entries(configShape).map(([name, schema]) => {
    const s = schema as z.ZodType;
    const parsed = s.safeParse(undefined);
    const byProvider = PROVIDER_DEFAULTS[name as keyof typeof PROVIDER_DEFAULTS];
    const def =
      DERIVED_DEFAULTS[name] ??
      (byProvider
        ? `${byProvider.cpu} (cpu), ${byProvider.cuda} (cuda)`
        : parsed.success && parsed.data !== undefined
          ? String(parsed.data) || "(empty)"
          : "(unset)");
    return { name, description: s.description ?? "", default: def };
  });
}
