/** Runs the end-to-end benchmark (`npm run bench`, `npm run bench:probe`): builds (or reuses)
 *  the model, reads and chunks the corpus, tokenizes it once for lengths and ids, then for each
 *  granularity runs, interleaved per round: model alone, the worker end to end, the worker end
 *  to end with PAD_MULTIPLE=1 (turns), the FIFO ablation and transformers.js; then job latency
 *  at a steady load below the measured end-to-end capacity, and tokenizer throughput. Every
 *  measured pipeline runs in its own child process; Redis is the real one and the sink is the
 *  strict Qdrant-compatible test server (HTTP) in this process. Returns the results; writing
 *  them is the caller's choice. */
import path from "node:path";
import { parseConfig } from "../../shared/config.js";
import { redisConnection } from "../../shared/redis.js";
import { enqueueOptionsFrom } from "../../producer/enqueue.js";
import { loadTokenCounter } from "../../producer/token-counter.js";
import type { SourceDocument } from "../../producer/document.js";
import { startQdrantTestServer } from "../../kit/qdrant-server/qdrant-test-server.js";
import { ensureBenchModel } from "../lib/bench-model.js";
import { killAllChildren } from "../lib/child-process.js";
import { readCorpus, resolveCorpus, turnChunks, windowChunks, type ChunkSet } from "../lib/corpus.js";
import {
  benchTokenizer,
  quietGate,
  redisPid,
  runHeader,
  standInNotes,
  startRun,
  workerEnv,
  type RunStart,
} from "../lib/harness.js";
import { measureTokenizers } from "../lib/measure-children.js";
import { repoRoot } from "../lib/paths.js";
import {
  RESULTS_SCHEMA,
  type BenchResults,
  type GranularityResult,
  type ThreadProfile,
} from "../lib/results-schema.js";
import type { E2eContext } from "../lib/worker-process.js";
import { measureGranularity } from "./measure-granularity.js";
import type { BenchOptions } from "./options.js";
import { evaluateTargets } from "./targets.js";

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

/** The model, its worker settings, the corpus and its chunk sets with their token ids. */
async function prepare(o: BenchOptions, run: RunStart, log: (s: string) => void) {
  const source = resolveCorpus(o.corpus);
  const model = await ensureBenchModel(
    {
      layers: o.layers,
      hidden: o.hidden,
      heads: o.heads,
      intermediate: o.intermediate,
      tokenizer: o.tokenizer,
      generatedVocab: o.generatedVocab,
    },
    o.only.includes("peer"),
  );
  const d = model.description;
  log(
    `model: ${d.layers} layers x ${d.hidden} hidden, ${(d.parameters / 1e6).toFixed(1)}M parameters, ${(d.fileBytes / 1e6).toFixed(1)} MB fp32; tokenizer ${d.tokenizer} (${((performance.now() - run.t0) / 1000).toFixed(1)} s to build or reuse)`,
  );
  const env = workerEnv(o, model.files.dir);
  const cfg = parseConfig(env);

  const enqueue = {
    ...enqueueOptionsFrom(cfg, loadTokenCounter(model.files.tokenizerPath)),
    maxChunksPerJob: o.perJob,
    removeOnComplete: 1_000_000,
  };
  const { docs, skipped } = await readCorpus(source);
  if (docs.length === 0) throw new Error(`no documents in ${source.label}`);
  const sets: ChunkSet[] = [];
  if (o.granularity.includes("turns")) sets.push(turnChunks(docs, o.turnChunks, enqueue));
  if (o.granularity.includes("windows")) sets.push(windowChunks(docs, o.windowChunks, o.windowsPerDoc, enqueue));
  log(
    `corpus: ${source.label}; ${docs.length} documents${skipped ? `, ${skipped} records skipped by the readers` : ""}`,
  );

  const tokenizer = await benchTokenizer(model, cfg);
  const encoded = await Promise.all(sets.map((s) => tokenizer.encode(s.texts)));
  await tokenizer.close();
  return { source, model, env, cfg, docs, skipped, sets, encoded };
}

export async function runBenchmark(
  o: BenchOptions,
  args: string[],
  log: (s: string) => void = console.log,
): Promise<BenchResults> {
  const run = startRun(log);
  const want = (m: BenchOptions["only"][number]) => o.only.includes(m);
  const { source, model, env, cfg, docs, skipped, sets, encoded } = await prepare(o, run, log);

  const server = await startQdrantTestServer();
  const connection = redisConnection(cfg.REDIS_URL, cfg);
  const profileDir = path.join(repoRoot, ".cache", "bench-profile");
  const redis = await redisPid(connection);
  const gate = quietGate(o, redis);
  const ctx: E2eContext = { connection, server, env, redisPid: redis, gate };
  const granularities: GranularityResult[] = [];
  let latency: BenchResults["latency"];
  let profile: ThreadProfile[] | undefined;
  const notes: string[] = [];
  try {
    for (const [si, set] of sets.entries()) {
      const r = await measureGranularity(
        { o, env, cfg, ctx, model, log, profileDir, notes },
        set,
        encoded[si].map((e) => Array.from(e.ids)),
      );
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
      method:
        `one pass over ${texts.length} distinct texts (this run's chunks, then further segments of the corpus, up to ${TOKENIZER_CHARS / 1e6}M characters), one thread each, ` +
        `after a ${Math.min(200, texts.length)}-text warm-up: @huggingface/tokenizers encode() in a loop; native tokenizers encodeBatch() in slices of 256 with TOKENIZERS_PARALLELISM=false; ids compared text by text`,
      ...(await measureTokenizers(model.files.tokenizerPath, texts, gate)),
    };
    log(
      `tokenizers: JS ${Math.round(tokenizers.js.tokensPerSecond)} tokens/s per thread, native ${Math.round(tokenizers.native.tokensPerSecond)} tokens/s per thread, identical ids ${(tokenizers.identicalIdsRate * 100).toFixed(2)}%`,
    );
  }

  notes.push(...standInNotes(source, model));
  if (want("peer"))
    notes.push(
      "No second peer: fastembed (JS) is not installed here and loads only models from its own list, fetched at run time, so it cannot run this generated model offline.",
    );
  const results: BenchResults = {
    schema: RESULTS_SCHEMA,
    ...runHeader(run, args, o, cfg, model, { source, documents: docs.length, skipped }),
    granularities,
    tokenizers,
    latency,
    profile,
    targets: [],
    notes,
  };
  results.targets = evaluateTargets(results);
  return results;
}
