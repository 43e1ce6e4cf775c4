/** Runs the benchmark: builds (or reuses) the model, reads and chunks the corpus, tokenizes it
 *  once for lengths and ids, then for each granularity runs, interleaved per round: model
 *  alone, the worker end to end, the worker end to end with PAD_MULTIPLE=1 (turns), the FIFO
 *  ablation and transformers.js; then job latency at a steady load below the measured
 *  end-to-end capacity, and tokenizer throughput. Every measured pipeline runs in its own child
 *  process; Redis is the real one and the sink is the strict Qdrant-compatible test server
 *  (HTTP) in this process. Returns the results; writing them is the caller's choice. */
import { existsSync } from "node:fs";
import type { Redis } from "ioredis";
import os from "node:os";
import path from "node:path";
import { configShape, parseConfig, type Config } from "../shared/config.js";
import { redisConnection } from "../shared/redis.js";
import { enqueueOptionsFrom } from "../producer/enqueue.js";
import { loadTokenCounter } from "../producer/token-counter.js";
import { locateModelFiles } from "../worker/adapters/model-files.js";
import { TokenizerPool } from "../worker/adapters/tokenizer-pool.js";
import { startQdrantTestServer } from "../kit/qdrant-server/qdrant-test-server.js";
import { ensureBenchModel } from "./bench-model.js";
import type { SourceDocument } from "../producer/document.js";
import { readCorpus, resolveCorpus, turnChunks, windowChunks, type ChunkSet } from "./corpus.js";
import { gitInfo, machineInfo } from "./machine.js";
import { killAllChildren } from "./child-process.js";
import { waitForQuiet } from "./cpu.js";
import { measureTokenizers } from "./measure-children.js";
import type { E2eContext } from "./measure-e2e.js";
import { measureGranularity } from "./measure-granularity.js";
import type { BenchOptions } from "./options.js";
import { displayPath, repoRoot } from "./paths.js";
import type { ThreadProfile } from "./profile-summary.js";
import { RESULTS_SCHEMA, type BenchResults, type GranularityResult } from "./results.js";
import { evaluateTargets } from "./targets.js";

/** Settings the harness owns per run; everything else may come from the environment. */
const HARNESS_KEYS = new Set(["QUEUE_NAME", "COLLECTION", "QDRANT_URL", "QDRANT_API_KEY", "MODEL_DIR", "MODEL_FILE", "SINK_FILE", "HTTP_PORT"]);
const PRIVATE_KEYS = new Set([...HARNESS_KEYS, "REDIS_URL", "QUEUE_PREFIX", "MODEL_NAME"]);

/** The worker settings of every measured worker: the project's variables from the environment
 *  (except those the harness owns), then the bench's options. The priority-lane bench uses it too,
 *  so its workers match the main bench's. */
export function workerEnv(
  o: Pick<BenchOptions, "maxBatchTokens" | "maxBatchSize" | "padMultiple" | "perJob" | "concurrency" | "tokenizerThreads">, modelDir: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(configShape)) {
    const v = process.env[key];
    if (v !== undefined && v !== "" && !HARNESS_KEYS.has(key)) env[key] = v;
  }
  const longest = Math.floor(o.maxBatchTokens / o.padMultiple) * o.padMultiple;
  return {
    LOG_LEVEL: "warn", MAX_SEQ_LENGTH: String(Math.min(8192, longest)), ...env,
    MODEL_DIR: modelDir, MODEL_NAME: "bench-generated",
    MAX_BATCH_TOKENS: String(o.maxBatchTokens), MAX_BATCH_SIZE: String(o.maxBatchSize), PAD_MULTIPLE: String(o.padMultiple),
    MAX_CHUNKS_PER_JOB: String(o.perJob), WORKER_CONCURRENCY: String(o.concurrency), TOKENIZER_THREADS: String(o.tokenizerThreads),
  };
}

export function publicConfig(cfg: Config): Record<string, unknown> {
  return Object.fromEntries(Object.entries(cfg).filter(([k]) => !PRIVATE_KEYS.has(k)));
}

export async function redisPid(connection: Redis): Promise<number | undefined> {
  const m = /process_id:(\d+)/.exec(await connection.info("server"));
  return m && existsSync(`/proc/${m[1]}`) ? Number(m[1]) : undefined;
}

/** Text for the tokenizer measurement: one pass must last long enough to time (a pass over the
 *  chunks alone can take a tenth of a second), and repeating texts would flatter tokenizers that
 *  cache words, so further distinct segments of the corpus are added. */
const TOKENIZER_CHARS = 1_200_000;

function tokenizerTexts(sets: ChunkSet[], docs: SourceDocument[]): string[] {
  const out = [...new Set(sets.flatMap((s) => s.texts))];
  const seen = new Set(out);
  let chars = out.reduce((a, t) => a + t.length, 0);
  for (const d of docs) {
    for (const seg of d.segments) {
      if (chars >= TOKENIZER_CHARS) return out;
      if (seen.has(seg.text)) continue;
      seen.add(seg.text);
      out.push(seg.text);
      chars += seg.text.length;
    }
  }
  return out;
}

export async function runBenchmark(o: BenchOptions, args: string[], log: (s: string) => void = console.log): Promise<BenchResults> {
  const started = new Date();
  const t0 = performance.now();
  const machine = machineInfo();
  const git = gitInfo();
  const source = resolveCorpus(o.corpus);
  const want = (m: BenchOptions["only"][number]) => o.only.includes(m);
  log(`machine: ${machine.cpus} x ${machine.cpuModel}, Node ${machine.node}, load average ${machine.loadAverage.start.toFixed(2)}; commit ${git.commit}${git.dirty ? " (dirty)" : ""}`);

  const model = await ensureBenchModel(
    { layers: o.layers, hidden: o.hidden, heads: o.heads, intermediate: o.intermediate, tokenizer: o.tokenizer, generatedVocab: o.generatedVocab }, want("peer"));
  const d = model.description;
  log(`model: ${d.layers} layers x ${d.hidden} hidden, ${(d.parameters / 1e6).toFixed(1)}M parameters, ${(d.fileBytes / 1e6).toFixed(1)} MB fp32; tokenizer ${d.tokenizer} (${((performance.now() - t0) / 1000).toFixed(1)} s to build or reuse)`);
  const env = workerEnv(o, model.files.dir);
  const cfg = parseConfig(env);

  const enqueue = { ...enqueueOptionsFrom(cfg, loadTokenCounter(model.files.tokenizerPath)), maxChunksPerJob: o.perJob, removeOnComplete: 1_000_000 };
  const { docs, skipped } = await readCorpus(source);
  if (docs.length === 0) throw new Error(`no documents in ${source.label}`);
  const sets: ChunkSet[] = [];
  if (o.granularity.includes("turns")) sets.push(turnChunks(docs, o.turnChunks, enqueue));
  if (o.granularity.includes("windows")) sets.push(windowChunks(docs, o.windowChunks, o.windowsPerDoc, enqueue));
  log(`corpus: ${source.label}; ${docs.length} documents${skipped ? `, ${skipped} records skipped by the readers` : ""}`);

  const tokenizer = new TokenizerPool({ tokenizerPath: model.files.tokenizerPath, maxLength: cfg.MAX_SEQ_LENGTH, eosId: locateModelFiles(model.files.dir).eosId, threads: Math.min(2, os.cpus().length) });
  const encoded = await Promise.all(sets.map((s) => tokenizer.encode(s.texts)));
  await tokenizer.close();

  const server = await startQdrantTestServer();
  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const profileDir = path.join(repoRoot, ".cache", "bench-profile");
  const redis = await redisPid(connection);
  const gate = (pid: number) =>
    o.quietWait > 0
      ? waitForQuiet([process.pid, pid, ...(redis ? [redis] : [])], { threshold: o.quietThreshold, maxSeconds: o.quietWait, cores: os.cpus().length })
      : Promise.resolve({ waitedSeconds: 0, othersShareBefore: NaN, quiet: false });
  const ctx: E2eContext = { connection, server, env, redisPid: redis, gate };
  const granularities: GranularityResult[] = [];
  let latency: BenchResults["latency"];
  let profile: ThreadProfile[] | undefined;
  const notes: string[] = [];
  try {
    for (const [si, set] of sets.entries()) {
      const r = await measureGranularity({ o, env, cfg, ctx, model, log, profileDir, notes }, set, encoded[si].map((e) => Array.from(e.ids)));
      granularities.push(r.result);
      profile ??= r.profile;
      latency ??= r.latency;
    }
  } catch (err) {
    killAllChildren();
    throw err;
  } finally {
    await server.close();
    await connection.quit();
  }

  let tokenizers: BenchResults["tokenizers"];
  if (want("tokenizers")) {
    const texts = tokenizerTexts(sets, docs);
    tokenizers = {
      method: `one pass over ${texts.length} distinct texts (this run's chunks, then further segments of the corpus, up to ${TOKENIZER_CHARS / 1e6}M characters), one thread each, ` +
        `after a ${Math.min(200, texts.length)}-text warm-up: @huggingface/tokenizers encode() in a loop; native tokenizers encodeBatch() in slices of 256 with TOKENIZERS_PARALLELISM=false; ids compared text by text`,
      ...(await measureTokenizers(model.files.tokenizerPath, texts, gate)),
    };
    log(`tokenizers: JS ${Math.round(tokenizers.js.tokensPerSecond)} tokens/s per thread, native ${Math.round(tokenizers.native.tokensPerSecond)} tokens/s per thread, identical ids ${(tokenizers.identicalIdsRate * 100).toFixed(2)}%`);
  }

  if (source.kind === "sample") notes.push("Corpus: the bundled synthetic sample (bench/sample), not real transcripts; figures only show that the harness works.");
  if (model.description.tokenizer.startsWith("generated")) notes.push("Tokenizer: the generated test tokenizer, not BGE-M3's; token counts are not BGE-M3's.");
  if (want("peer")) notes.push("No second peer: fastembed (JS) is not installed here and loads only models from its own list, fetched at run time, so it cannot run this generated model offline.");
  machine.loadAverage.end = os.loadavg()[0];
  const results: BenchResults = {
    schema: RESULTS_SCHEMA, startedAt: started.toISOString(), finishedAt: new Date().toISOString(), durationSeconds: (performance.now() - t0) / 1000,
    git, machine, args: args.map((x) => (path.isAbsolute(x) ? displayPath(x) : x)), options: { ...o, corpus: o.corpus && displayPath(o.corpus), out: displayPath(o.out) }, workerConfig: publicConfig(cfg), model: model.description,
    corpus: { kind: source.kind, label: source.label, documents: docs.length, skippedRecords: skipped },
    granularities, tokenizers, latency, profile, targets: [], notes,
  };
  results.targets = evaluateTargets(results);
  return results;
}
