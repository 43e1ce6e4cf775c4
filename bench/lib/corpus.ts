/** The benchmark's chunk sets, read from one folder with the producer's readers, at two
 *  granularities:
 *  - "turns": one chunk per segment as the readers split documents (a speaker turn in meeting
 *    and parliament transcripts, a cue in subtitles, a paragraph in plain text), stride-sampled
 *    over the whole folder so the sample keeps the folder's length mix;
 *  - "windows": documents cut by the producer's token-window chunker (CHUNK_TOKENS with
 *    CHUNK_OVERLAP_TOKENS), taking at most `windowsPerDoc` windows from each document,
 *    documents taken round-robin across subfolders.
 *  Chunks become BullMQ jobs the way the producer makes them (`jobsForDocument`): one job per
 *  document, split past `perJob` chunks. Chunking happens here, before any timing. */
import { existsSync } from "node:fs";
import path from "node:path";
import type { JobsOptions } from "bullmq";
import { chunkDocument } from "../../producer/chunker.js";
import type { Chunk, SourceDocument } from "../../producer/document.js";
import { jobsForDocument, type EnqueueOptions } from "../../producer/enqueue.js";
import { expandInputs } from "../../producer/input-files.js";
import { readDocuments } from "../../producer/readers/index.js";
import type { EmbedJobData } from "../../shared/job.js";
import { referenceRoot, repoRoot } from "./paths.js";

export type Granularity = "turns" | "windows";

export interface CorpusSource {
  folder: string;
  /** "reference" (real transcripts beside the checkout), "sample" (bundled synthetic), "custom". */
  kind: "reference" | "sample" | "custom";
  /** For humans and the results file; never an absolute path. */
  label: string;
}

export interface BenchJob {
  name: string;
  data: EmbedJobData;
  opts: JobsOptions;
}

export interface ChunkSet {
  granularity: Granularity;
  /** Chunk texts in arrival (enqueue) order; jobs hold the same texts in the same order. */
  texts: string[];
  jobs: BenchJob[];
  documents: number;
  /** How the set was drawn, for the results file. */
  how: string;
}

export const SAMPLE_FOLDER = path.join(repoRoot, "bench", "sample");

export function resolveCorpus(folder?: string): CorpusSource {
  if (folder) {
    const abs = path.resolve(folder);
    if (!existsSync(abs)) throw new Error(`--corpus folder ${folder} does not exist`);
    const rel = path.relative(repoRoot, abs);
    const label = rel.startsWith("..") || path.isAbsolute(rel) ? path.basename(abs) : rel;
    return { folder: abs, kind: abs === SAMPLE_FOLDER ? "sample" : "custom", label: `folder ${label}` };
  }
  const reference = path.join(referenceRoot, "data", "transcripts");
  if (existsSync(reference)) {
    return {
      folder: reference,
      kind: "reference",
      label:
        "reference transcripts (../shared/data/transcripts: QMSum meetings, US inaugural addresses, Galician parliament)",
    };
  }
  return {
    folder: SAMPLE_FOLDER,
    kind: "sample",
    label: "BUNDLED SYNTHETIC SAMPLE (bench/sample; the reference transcripts are not beside this checkout)",
  };
}

/** Every document in the folder, in sorted path order, with paths relative to the folder. */
export async function readCorpus(source: CorpusSource): Promise<{ docs: SourceDocument[]; skipped: number }> {
  const docs: SourceDocument[] = [];
  let skipped = 0;
  for await (const file of expandInputs([source.folder])) {
    for await (const ev of readDocuments(file)) {
      if (ev.kind === "skipped") skipped++;
      else
        docs.push({ ...ev.doc, source: { ...ev.doc.source, file: path.relative(source.folder, ev.doc.source.file) } });
    }
  }
  return { docs, skipped };
}

function toJobs(
  parts: Array<{ doc: SourceDocument; chunks: Chunk[] }>,
  opts: EnqueueOptions,
  prefix: string,
): BenchJob[] {
  const jobs: BenchJob[] = [];
  for (const { doc, chunks } of parts) {
    if (chunks.length === 0) continue;
    jobs.push(...jobsForDocument({ ...doc, id: `${prefix}:${doc.id}` }, chunks, opts));
  }
  return jobs;
}

function textsOf(jobs: BenchJob[]): string[] {
  return jobs.flatMap((j) => j.data.chunks.map((c) => c.text));
}

/** `n` segments spread evenly over all segments of all documents (all of them if fewer). */
export function turnChunks(docs: SourceDocument[], n: number, opts: EnqueueOptions): ChunkSet {
  const all: Array<{ doc: number; seg: number }> = [];
  docs.forEach((d, di) => d.segments.forEach((_, si) => all.push({ doc: di, seg: si })));
  const picked = all.length <= n ? all : Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
  const byDoc = new Map<number, Chunk[]>();
  for (const p of picked) {
    const list = byDoc.get(p.doc) ?? [];
    const text = docs[p.doc].segments[p.seg].text;
    list.push({ index: list.length, text, tokens: 0, metadata: { segment: p.seg } });
    byDoc.set(p.doc, list);
  }
  const parts = [...byDoc.entries()].map(([di, chunks]) => ({ doc: docs[di], chunks }));
  const jobs = toJobs(parts, opts, "turn");
  const how =
    all.length <= n
      ? `all ${all.length} segments of ${docs.length} documents`
      : `${n} of ${all.length} segments of ${docs.length} documents, every ${(all.length / n).toFixed(1)}th`;
  return { granularity: "turns", texts: textsOf(jobs), jobs, documents: parts.length, how };
}

/** Documents in round-robin order over their subfolders (so every source contributes). */
function roundRobin(docs: SourceDocument[]): SourceDocument[] {
  const groups = new Map<string, SourceDocument[]>();
  for (const d of docs) {
    const key = path.dirname(d.source.file);
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const lists = [...groups.values()];
  const out: SourceDocument[] = [];
  for (let i = 0; out.length < docs.length; i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return out;
}

/** A document's leading segments, enough text for about `windows` windows (keeps chunking cheap). */
function leadingPart(doc: SourceDocument, windows: number, chunkTokens: number): SourceDocument {
  const chars = windows * chunkTokens * 8; // generous: real text runs 3-5 characters per token
  let sum = 0;
  let k = 0;
  while (k < doc.segments.length && sum < chars) sum += doc.segments[k++].text.length;
  return { ...doc, segments: doc.segments.slice(0, Math.max(1, k)) };
}

export function windowChunks(docs: SourceDocument[], n: number, windowsPerDoc: number, opts: EnqueueOptions): ChunkSet {
  const parts: Array<{ doc: SourceDocument; chunks: Chunk[] }> = [];
  let total = 0;
  for (const doc of roundRobin(docs)) {
    if (total >= n) break;
    const chunks = chunkDocument(leadingPart(doc, windowsPerDoc + 1, opts.chunkTokens), {
      targetTokens: opts.chunkTokens,
      overlapTokens: opts.overlapTokens,
      countTokens: opts.countTokens,
    }).slice(0, Math.min(windowsPerDoc, n - total));
    parts.push({ doc, chunks });
    total += chunks.length;
  }
  const jobs = toJobs(parts, opts, "window");
  const how = `${total} windows of up to ${opts.chunkTokens} tokens (overlap ${opts.overlapTokens}), at most ${windowsPerDoc} from each of ${parts.length} documents`;
  return { granularity: "windows", texts: textsOf(jobs), jobs, documents: parts.length, how };
}
