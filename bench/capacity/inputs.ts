/** Where `npm run capacity` takes its constants from, each with its source: the newest (or the
 *  named) bench:queue results file, the newest (or named) `npm run bench:ceiling` results
 *  file (read defensively), the GPU estimates in e2e/gpu-figures.ts, the
 *  backfill's marks and the worker's defaults from the code. Reads files; no arithmetic beyond
 *  choosing rows. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { GPU_ESTIMATES, type GpuEstimate } from "../e2e/gpu-figures.js";
import type { QueueBenchResults, QueueDerived } from "../lib/results-schema.js";
import { displayPath } from "../lib/paths.js";
import type { CeilingConstants, QueueConstants } from "./model.js";

/** A constant and where it came from (a results file and field, or a code constant). */
export interface Sourced {
  name: string;
  value: number;
  source: string;
}

/** The newest `*.json` directly in `dir` (results files are named by start time), or undefined. */
export function newestResults(dir: string, accept: (json: unknown) => boolean = () => true): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .reverse();
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      if (accept(JSON.parse(readFileSync(file, "utf8")))) return file;
    } catch {
      // not a results file: skip it
    }
  }
  return undefined;
}

export class CapacityInputError extends Error {
  override name = "CapacityInputError";
}

/** The queue constants from a bench:queue results file: the cell with the job size nearest `jobChunks`
 *  and, among those, the most workers (per-job Redis cost grows with workers). */
export function queueConstants(file: string, jobChunks: number): { constants: QueueConstants; sourced: Sourced[] } {
  const r = JSON.parse(readFileSync(file, "utf8")) as QueueBenchResults;
  if (r.bench !== "queue" || !Array.isArray(r.derived) || r.derived.length === 0 || !r.corpusFigures || !r.memoryFit)
    throw new CapacityInputError(`${displayPath(file)} is not a bench:queue results file with cells`);
  const dist = (d: QueueDerived) => Math.abs(Math.log(d.jobChunks / jobChunks));
  const best = Math.min(...r.derived.map(dist));
  const near = r.derived.filter((d) => dist(d) === best);
  const cell = near.reduce((a, b) => (b.workers > a.workers ? b : a));
  const i = r.derived.indexOf(cell);
  const at = `${displayPath(file)}`;
  const cellName = `derived[${i}] (jobs of ${cell.jobChunks} chunks, ${cell.workers} workers)`;
  const f = r.corpusFigures;
  const sourced: Sourced[] = [
    {
      name: "Redis bytes per waiting job, fixed part",
      value: r.memoryFit.bytesPerJob,
      source: `${at} memoryFit.bytesPerJob`,
    },
    {
      name: "Redis bytes per job data byte",
      value: r.memoryFit.bytesPerDataByte,
      source: `${at} memoryFit.bytesPerDataByte`,
    },
    { name: "text bytes per token", value: f.textBytesPerToken, source: `${at} corpusFigures.textBytesPerToken` },
    {
      name: "job JSON bytes per chunk beyond its text",
      value: f.chunkJsonOverheadBytes,
      source: `${at} corpusFigures.chunkJsonOverheadBytes`,
    },
    {
      name: "job JSON bytes per job beyond its chunks",
      value: f.jobJsonOverheadBytes,
      source: `${at} corpusFigures.jobJsonOverheadBytes`,
    },
    {
      name: "Redis CPU ms per job (net of idle)",
      value: cell.redisCpuMsPerJobNet,
      source: `${at} ${cellName}.redisCpuMsPerJobNet`,
    },
    {
      name: "sparse entries per content token (distinct ids)",
      value: f.distinctTokenRatio,
      source: `${at} corpusFigures.distinctTokenRatio (at ${f.chunkTokens}-token chunks)`,
    },
    {
      name: "payload JSON bytes per point beyond its text",
      value: f.payloadOverheadBytes,
      source: `${at} corpusFigures.payloadOverheadBytes`,
    },
  ];
  for (const s of sourced)
    if (!Number.isFinite(s.value)) throw new CapacityInputError(`${s.source} is missing or not a number`);
  if (!(cell.redisCpuMsPerJobNet > 0))
    throw new CapacityInputError(`${at} ${cellName}.redisCpuMsPerJobNet is not positive: that cell measured nothing`);
  return {
    constants: {
      bytesPerJob: r.memoryFit.bytesPerJob,
      bytesPerDataByte: r.memoryFit.bytesPerDataByte,
      textBytesPerToken: f.textBytesPerToken,
      chunkJsonOverheadBytes: f.chunkJsonOverheadBytes,
      jobJsonOverheadBytes: f.jobJsonOverheadBytes,
      redisCpuSecondsPerJob: cell.redisCpuMsPerJobNet / 1000,
      distinctTokenRatio: f.distinctTokenRatio,
      payloadOverheadBytes: f.payloadOverheadBytes,
    },
    sourced,
  };
}

interface CeilingRow {
  targetTokens?: unknown;
  mode?: unknown;
  median?: { meanTokens?: unknown; ceilingTokensPerSecond?: unknown; tokenizerTokensPerCpuSecond?: unknown };
}

/** The cases of a `npm run bench:ceiling` results file (bench/lib/results-schema.ts `CeilingResults`). */
const rowsOf = (json: unknown): CeilingRow[] | undefined => {
  const j = json as { bench?: unknown; cases?: unknown } | null;
  return j?.bench === "ceiling" && Array.isArray(j.cases) ? (j.cases as CeilingRow[]) : undefined;
};

/** The ceiling row nearest `tokensPerChunk` (same ColBERT setting when the file has one), or why there is none. */
export function ceilingConstants(
  file: string | undefined,
  tokensPerChunk: number,
  colbert: boolean,
): { constants?: CeilingConstants; sourced: Sourced[]; missing?: string } {
  const notMeasured = "not measured: run npm run bench:ceiling";
  if (!file) return { sourced: [], missing: notMeasured };
  const rows = (rowsOf(JSON.parse(readFileSync(file, "utf8"))) ?? [])
    .map((row, i) => ({ row, i }))
    .filter(
      ({ row }) =>
        Number(row.median?.ceilingTokensPerSecond) > 0 &&
        Number(row.median?.tokenizerTokensPerCpuSecond) > 0 &&
        Number.isFinite(Number(row.median?.meanTokens ?? row.targetTokens)),
    );
  const same = rows.filter(({ row }) => (row.mode === "colbert") === colbert);
  const pool = same.length ? same : rows;
  if (pool.length === 0)
    return { sourced: [], missing: `${notMeasured} (${displayPath(file)} has no usable ceiling rows)` };
  const len = (row: CeilingRow) => Number(row.median?.meanTokens ?? row.targetTokens);
  const { row, i } = pool.reduce((a, b) =>
    Math.abs(len(b.row) - tokensPerChunk) < Math.abs(len(a.row) - tokensPerChunk) ? b : a,
  );
  const at = `${displayPath(file)} cases[${i}] (${len(row).toFixed(0)}-token chunks, ColBERT ${row.mode === "colbert" ? "on" : "off"}${same.length ? "" : `; no row with ColBERT ${colbert ? "on" : "off"}`})`;
  return {
    constants: {
      mainCeilingTokensPerSec: Number(row.median!.ceilingTokensPerSecond),
      tokenizerTokensPerCpuSec: Number(row.median!.tokenizerTokensPerCpuSecond),
    },
    sourced: [
      {
        name: "main-thread ceiling, tokens/s per worker process",
        value: Number(row.median!.ceilingTokensPerSecond),
        source: `${at}.median.ceilingTokensPerSecond`,
      },
      {
        name: "tokenizer tokens per CPU-second",
        value: Number(row.median!.tokenizerTokensPerCpuSecond),
        source: `${at}.median.tokenizerTokensPerCpuSecond`,
      },
    ],
  };
}

export const hasCeiling = (json: unknown) => rowsOf(json) !== undefined;

/** The GPU estimate whose name starts with (or contains) `name`, case and spaces ignored. */
export function gpuEstimate(name: string): GpuEstimate {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");
  const n = norm(name);
  const hit =
    GPU_ESTIMATES.find((g) => norm(g.gpu).startsWith(n)) ?? GPU_ESTIMATES.find((g) => norm(g.gpu).includes(n));
  if (!hit)
    throw new CapacityInputError(
      `--gpu ${name}: not one of ${GPU_ESTIMATES.map((g) => g.gpu).join(", ")} (or give --gpu-tokens-per-second)`,
    );
  return hit;
}
