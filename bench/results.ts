/** The results file written by `npm run bench`: everything needed to reproduce and judge a
 *  run (machine, commit, settings, model, corpus), every raw measurement, and the targets
 *  evaluated from them. The Markdown summary and the README table are rendered from this
 *  file alone (report-format.ts), so they never disagree with it. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ModelDescription } from "./bench-model.js";
import type { Granularity } from "./corpus.js";
import type { GitInfo, MachineInfo } from "./machine.js";
import type { E2eResult, LatencyResult } from "./measure-e2e.js";
import type { CpuWindow, QuietWait } from "./cpu.js";
import type { ThreadProfile } from "./profile-summary.js";
import type { LengthSummary } from "./stats.js";

export const RESULTS_SCHEMA = 1;

export type MeasurementKind = "model" | "e2e" | "e2e-pad1" | "fifo" | "peer";

export interface ThroughputRun {
  kind: MeasurementKind;
  /** 1-based round; with --repeat N every measurement runs N times, interleaved. */
  round: number;
  seconds: number;
  chunks: number;
  /** Real tokens (special tokens included, padding excluded). */
  tokens: number;
  /** Tokens the model computed, padding included. */
  paddedTokens: number;
  batches: number;
  tokensPerSecond: number;
  chunksPerSecond: number;
  paddingEfficiency: number;
  peakRssBytes?: number;
  /** CPU during the timed part: the measured process, the harness, and other processes on the machine. */
  cpu?: CpuWindow;
  /** How long the run waited for a quiet moment before starting, and how quiet it was. */
  quietWait?: QuietWait;
  e2e?: Omit<E2eResult, "seconds" | "chunks" | "tokens" | "paddedTokens" | "batches" | "peakRssBytes" | "cpu" | "quietWait">;
  /** Peer only: largest |1 - cosine| between its CLS vectors and the worker model's dense vectors. */
  peerDenseMaxCosineGap?: number;
}

export interface PlannerRow {
  padMultiple: number;
  batchOverheadTokens: number;
  batches: number;
  paddingEfficiency: number;
}

export interface GranularityResult {
  granularity: Granularity;
  how: string;
  documents: number;
  jobs: number;
  lengths: LengthSummary;
  /** How each measurement was run, in words. */
  methods: Partial<Record<MeasurementKind, string>>;
  runs: ThroughputRun[];
  /** planBatches over the whole set at once (no timing): the batcher's best case per setting. */
  planner: PlannerRow[];
}

export interface TokenizerResult {
  method: string;
  texts: number;
  js: { tokens: number; seconds: number; tokensPerSecond: number };
  native: { tokens: number; seconds: number; tokensPerSecond: number };
  identicalIdsRate: number;
  quietWait?: QuietWait;
}

export interface TargetResult {
  id: string;
  description: string;
  value: number;
  comparator: ">=";
  threshold: number;
  met: boolean;
}

/** Where, when, from what and with which settings a bench ran: how every results file starts
 *  (this bench's and `npm run bench:priority`'s). */
export interface RunHeader {
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  git: GitInfo;
  machine: MachineInfo;
  /** The command-line arguments after `npm run bench --` (or `bench:priority --`). */
  args: string[];
  options: Record<string, unknown>;
  /** Worker configuration used for every worker-side measurement (no URLs, paths or secrets). */
  workerConfig: Record<string, unknown>;
  model: ModelDescription;
  corpus: { kind: string; label: string; documents: number; skippedRecords: number };
}

export interface BenchResults extends RunHeader {
  schema: typeof RESULTS_SCHEMA;
  granularities: GranularityResult[];
  tokenizers?: TokenizerResult;
  latency?: LatencyResult & { method: string; loadRatio: number };
  /** With --cpu-prof: per-thread summary of the end-to-end worker's CPU profile (turns, round 1). */
  profile?: ThreadProfile[];
  targets: TargetResult[];
  notes: string[];
}

export function resultsBaseName(r: Pick<BenchResults, "startedAt" | "git">): string {
  const ts = r.startedAt.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  return `${ts}-${r.git.commit}`;
}

/** Writes `<dir>/<timestamp>-<commit>.json` and the Markdown beside it (any results shape with a start time and commit). */
export function writeResults(dir: string, r: Pick<BenchResults, "startedAt" | "git">, markdown: string): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const base = path.join(dir, resultsBaseName(r));
  writeFileSync(`${base}.json`, JSON.stringify(r, null, 2) + "\n");
  writeFileSync(`${base}.md`, markdown);
  return { json: `${base}.json`, md: `${base}.md` };
}
