/** `ingest` as one library call: reads files and folders (input-files.ts, readers/), chunks
 *  them with the model's tokenizer and enqueues one job per document, small ones packed (enqueue.ts), then prints
 *  the summary on stdout. Acts at once and returns the exit code: 1 when nothing was enqueued
 *  but records were skipped, or when an expected failure (a ProducerError: strict mode, bad
 *  chunking options) stopped it, whose message goes to stderr; anything else is a bug and is
 *  thrown. While one document takes long to chunk, progress lines go to stderr. */
import path from "node:path";
import type { Config } from "../shared/config.js";
import { QueueSet } from "../shared/queue-set.js";
import { redisConnection } from "../shared/redis.js";
import type { ChunkProgress } from "./chunker.js";
import { skippedEvent, type ReadEvent, type SourceDocument } from "./document.js";
import { enqueueDocuments, enqueueOptionsFrom } from "./enqueue.js";
import { formatIngestSummary } from "./ingest-summary.js";
import { inputEntries } from "./input-files.js";
import { ProducerError } from "./producer-errors.js";
import { readDocuments, type InputFormat } from "./readers/index.js";
import { loadTokenCounter } from "./token-counter.js";
import type { PackBounds } from "./packer.js";

export interface IngestOptions {
  format: "auto" | InputFormat;
  idPrefix?: string;
  chunkTokens: number;
  overlap: number;
  priority?: number;
  dryRun?: boolean;
  strict?: boolean;
  json?: boolean;
  skipUnchanged?: boolean;
  fresh?: boolean;
  allowDuplicateIds?: boolean;
  /** Pack small whole documents several to a job (packer.ts); unset = one job per document. */
  pack?: PackBounds;
}

async function* readAll(paths: string[], format: "auto" | InputFormat, idPrefix?: string): AsyncGenerator<ReadEvent> {
  for await (const e of inputEntries(paths)) {
    if (e.kind === "skipped") yield skippedEvent(e.file, e.reason);
    else yield* readDocuments(e.file, { format, idPrefix });
  }
}

/** Progress lines on stderr while one document takes longer than `everyMs` to chunk (a multi-MiB cue). */
function chunkProgressLog(everyMs = 5000): (doc: SourceDocument, p: ChunkProgress) => void {
  let current: SourceDocument | undefined;
  let started = 0;
  let last = 0;
  return (doc, p) => {
    const now = performance.now();
    if (doc !== current) [current, started, last] = [doc, now, now];
    if (now - last < everyMs) return;
    last = now;
    const pct = p.totalChars === 0 ? 100 : Math.floor((100 * p.chars) / p.totalChars);
    const mchars = (n: number) => (n / 1e6).toFixed(1);
    process.stderr.write(
      `chunking ${doc.source.file}: ${pct}% (${mchars(p.chars)} of ${mchars(p.totalChars)} M characters), ` +
        `${p.chunks} chunks, ${((now - started) / 1000).toFixed(0)} s\n`,
    );
  };
}

export async function runIngest(cfg: Config, paths: string[], o: IngestOptions): Promise<number> {
  const countTokens = loadTokenCounter(path.join(cfg.MODEL_DIR, "tokenizer.json"));
  const connection = o.dryRun ? undefined : redisConnection(cfg.REDIS_URL, cfg);
  const queue = connection ? new QueueSet(cfg, connection) : undefined;
  const started = performance.now();
  try {
    const s = await enqueueDocuments(queue, readAll(paths, o.format, o.idPrefix), {
      ...enqueueOptionsFrom(cfg, countTokens),
      chunkTokens: o.chunkTokens,
      overlapTokens: o.overlap,
      priority: o.priority,
      dryRun: o.dryRun,
      strict: o.strict,
      skipUnchanged: o.skipUnchanged,
      fresh: o.fresh,
      allowDuplicateIds: o.allowDuplicateIds,
      pack: o.pack,
      onChunkProgress: o.json ? undefined : chunkProgressLog(),
    });
    process.stdout.write(formatIngestSummary(s, performance.now() - started, Boolean(o.json), Boolean(o.dryRun)));
    return s.documents === 0 && s.skipped > 0 ? 1 : 0;
  } catch (err) {
    if (!(err instanceof ProducerError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  } finally {
    await queue?.close();
    await connection?.quit();
  }
}
