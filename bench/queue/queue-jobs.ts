/** The queue bench's jobs: one stream of chunks cut by the producer's chunker (CHUNK_TOKENS, no
 *  overlap) from the corpus's documents in round-robin order, then, per job size k, jobs of
 *  exactly k consecutive chunks built by the producer's own `jobsForDocument` (job ids, options,
 *  attempts, removeOnComplete as the producer sets them). Each job is one document of its own so
 *  every job has exactly k chunks whatever the documents' lengths; a small corpus is gone through
 *  again under new document ids (the repeat is counted). Pure apart from the caller's counter. */
import { Buffer } from "node:buffer";
import path from "node:path";
import { chunkDocument } from "../../producer/chunker.js";
import type { Chunk, SourceDocument } from "../../producer/document.js";
import { jobsForDocument, type BulkJob, type EnqueueOptions } from "../../producer/enqueue.js";
import type { EmbedJobData } from "../../shared/job.js";

/** The bench measures one-document jobs (its "document" layout). */
export type DocJob = BulkJob<EmbedJobData>;

export interface ChunkStream {
  chunks: Chunk[];
  /** Documents chunked to fill the stream. */
  documents: number;
}

/** Documents in round-robin order over their subfolders (so every source contributes). */
function roundRobin(docs: SourceDocument[]): SourceDocument[] {
  const groups = new Map<string, SourceDocument[]>();
  for (const d of docs)
    groups.set(path.dirname(d.source.file), [...(groups.get(path.dirname(d.source.file)) ?? []), d]);
  const lists = [...groups.values()];
  const out: SourceDocument[] = [];
  for (let i = 0; out.length < docs.length; i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return out;
}

/** At least `n` chunks (all of the corpus's if it has fewer), in document order. */
export function chunkStream(
  docs: SourceDocument[],
  n: number,
  opts: Pick<EnqueueOptions, "chunkTokens" | "countTokens">,
): ChunkStream {
  const chunks: Chunk[] = [];
  let documents = 0;
  for (const doc of roundRobin(docs)) {
    if (chunks.length >= n) break;
    chunks.push(
      ...chunkDocument(doc, { targetTokens: opts.chunkTokens, overlapTokens: 0, countTokens: opts.countTokens }),
    );
    documents++;
  }
  if (chunks.length === 0) throw new Error("the corpus gave no chunks");
  return { chunks, documents };
}

export interface CellJobs {
  jobs: DocJob[];
  chunks: number;
  tokens: number;
  dataBytes: number;
  /** Times the chunk stream was reused (0 when it held enough chunks). */
  repeats: number;
}

/** `jobs` jobs of exactly `k` chunks each, ids prefixed by `tag` so every cell's jobs are new to the queue. */
export function cellJobs(stream: ChunkStream, k: number, jobs: number, tag: string, opts: EnqueueOptions): CellJobs {
  const out: DocJob[] = [];
  let tokens = 0;
  let dataBytes = 0;
  const all = stream.chunks;
  for (let j = 0; j < jobs; j++) {
    const chunks = Array.from({ length: k }, (_, i) => {
      const c = all[(j * k + i) % all.length];
      tokens += c.tokens;
      return { ...c, index: i };
    });
    const doc: SourceDocument = {
      id: `${tag}:${j}`,
      kind: "transcript",
      segments: [],
      metadata: {},
      source: { file: "bench-queue" },
    };
    const made = jobsForDocument(doc, chunks, { ...opts, maxChunksPerJob: k });
    for (const job of made) dataBytes += Buffer.byteLength(JSON.stringify(job.data));
    out.push(...made);
  }
  return { jobs: out, chunks: jobs * k, tokens, dataBytes, repeats: Math.floor((jobs * k - 1) / all.length) };
}

/** JSON bytes of a job beyond its chunks, and of a chunk beyond its text (for other chunk sizes). */
export function jsonOverheads(jobs: DocJob[]): { perJob: number; perChunk: number; textBytes: number } {
  let job = 0;
  let chunk = 0;
  let text = 0;
  let chunks = 0;
  for (const j of jobs) {
    const arr = Buffer.byteLength(JSON.stringify(j.data.chunks));
    job += Buffer.byteLength(JSON.stringify(j.data)) - arr;
    const t = j.data.chunks.reduce((a, c) => a + Buffer.byteLength(c.text), 0);
    chunk += arr - t;
    text += t;
    chunks += j.data.chunks.length;
  }
  return { perJob: job / jobs.length, perChunk: chunk / chunks, textBytes: text };
}
