/** The shape of every results file the benches write: `npm run bench` (BenchResults) and
 *  `npm run bench:priority` (PriorityResults), both starting with a RunHeader. Everything needed
 *  to reproduce and judge a run (machine, commit, settings, model, corpus), every raw
 *  measurement, and the targets or goals evaluated from them. Types only: measurers fill these
 *  shapes and reporters (e2e/report-format.ts, priority/report-format.ts) render them, so both
 *  import from here and neither imports the other. Never acts. */
import type { ModelDescription } from "./bench-model.js";
import type { Granularity } from "./corpus.js";
import type { GitInfo, MachineInfo } from "./machine.js";
import type { CpuWindow, QuietWait } from "./cpu.js";
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
  e2e?: Omit<
    E2eResult,
    "seconds" | "chunks" | "tokens" | "paddedTokens" | "batches" | "peakRssBytes" | "cpu" | "quietWait"
  >;
  /** Peer only: largest |1 - cosine| between its CLS vectors and the worker model's dense vectors. */
  peerDenseMaxCosineGap?: number;
}

/** One end-to-end run through the worker process (e2e/measure-e2e.ts). */
export interface E2eResult {
  seconds: number;
  chunks: number;
  tokens: number;
  paddedTokens: number;
  batches: number;
  jobs: number;
  failedJobs: number;
  expectedPoints: number;
  pointsWritten: number;
  peakRssBytes: number;
  /** CPU used between the first add and the end (worker = measured; this process and Redis = harness). */
  cpu: CpuWindow;
  quietWait: QuietWait;
  /** Where the wall time went, from the model-port log and the worker's metrics. */
  analysis: {
    modelBusySeconds: number;
    /** First add -> first batch handed to the model thread. */
    headSeconds: number;
    /** Last batch back from the model thread -> last job finished. */
    tailSeconds: number;
    /** Mean seconds per observation of each pipeline stage (per job for queue_wait and tokenize, per chunk for batch_wait, per batch for infer, per request for sink_write). */
    stageMeanSeconds: Record<string, number>;
    /** CPU seconds of this process (producer, Qdrant stand-in) and Redis during the run. */
    harnessCpuSeconds: number;
    cpuSeconds: number;
    mainThreadCpuSeconds: number;
    otherThreadsCpuSeconds: number[];
    meanBatchSize: number;
  };
}

/** Job latency under a steady offered load (e2e/measure-e2e.ts). */
export interface LatencyResult {
  offeredTokensPerSecond: number;
  achievedTokensPerSecond: number;
  enqueueSeconds: number;
  jobs: number;
  chunksPerJob: number;
  meanTokensPerJob: number;
  failedJobs: number;
  quietWait: QuietWait;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  peakRssBytes: number;
}

/** Where one thread of a profiled worker spent its time (e2e/profile-summary.ts). */
export interface ThreadProfile {
  thread: string;
  sampledSeconds: number;
  idleSeconds: number;
  /** Functions by self time (seconds), largest first; `(program)` is native code outside JS, such as ONNX Runtime's run or the tokenizer's regexes. */
  top: Array<{ fn: string; seconds: number }>;
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

// The priority-lane bench (`npm run bench:priority`).

export const PRIORITY_SCHEMA = 1;

export type PhaseKind = "A" | "B";

export interface LaneFigures {
  /** Real tokens of chunks written (queue) or answered (interactive), from embed_tokens_total. */
  tokens: number;
  chunks: number;
  batches: number;
  /** embed_stage_duration_seconds{stage="infer"} sum and count: time from handing a batch to the
   *  model thread to its vectors, waiting behind the batch ahead included. */
  inferSum: number;
  inferCount: number;
  /** From the model-port log: batches that ended in the phase, their service time on the model
   *  thread (end minus the later of its start and the previous batch's end) and sizes. */
  serviceSeconds: number[];
  paddedTokens: number;
  realTokensInBatches: number;
}

/** A query phase's requests, raw: one latency per request in sending order. */
export interface PhaseQueries {
  sent: number;
  ok: number;
  /** Requests answered other than 200, unanswered, or with an unusable body. */
  failed: number;
  byStatus: Record<string, number>;
  firstError?: string;
  latenciesMs: number[];
  promptTokens: number;
  maxSendLagMs: number;
}

/** One phase of the priority bench as stored (priority/measure-priority.ts measures it). */
export interface StoredPhase {
  kind: PhaseKind;
  round: number;
  seconds: number;
  queue: LaneFigures;
  interactive: LaneFigures;
  /** Smallest waiting and active job counts sampled during the phase (the backlog check). */
  minWaiting: number;
  minActive: number;
  backlogSamples: number;
  cpu: CpuWindow;
  /** B only: the phase's query requests, summarised (priority/summarize.ts). */
  queries?: PhaseQueries;
}

export interface BatchTiming {
  name: string;
  rows: number;
  paddedLength: number;
  paddedTokens: number;
  realTokens: number;
  seconds: number[];
  medianMs: number;
  p95Ms: number;
}

export interface GoalResult {
  id: "query-p95" | "queue-drop";
  description: string;
  value: number;
  comparator: "<=" | "<";
  threshold: number;
  met: boolean;
}

export interface PrioritySummary {
  /** One batch at the token budget, model alone (the goal's yardstick). */
  tBatchMedianMs: number;
  tBatchP95Ms: number;
  /** The priority lane's own batch (one query + its fill), model alone. */
  tQueryBatchMedianMs: number;
  /** Mean embed_stage_duration_seconds{stage="infer",lane="queue"} over all phases (queued behind the batch ahead included). */
  workerQueueInferMeanMs: number;
  /** Mean service time of queued batches on the worker's model thread, all phases. */
  workerQueueServiceMeanMs: number;
  workerInteractiveServiceMeanMs: number;
  queries: { requests: number; ok: number; failed: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
  p95OverTBatch: number;
  p95OverWorkerService: number;
  queueTokensPerSecondA: number;
  queueTokensPerSecondB: number;
  throughputDrop: number;
  perRoundDrop: number[];
  /** Estimate: each phase's queued tokens/s divided by the share of the CPU other processes left it. */
  throughputDropAdjusted: number;
  /** Interactive tokens / all tokens embedded during the B phases. */
  queryTokenShare: number;
  /** Share of the B phases' wall time the model thread spent on interactive batches. */
  interactiveModelShare: number;
  /** Real / padded tokens in the interactive batches (query rows and their fill). */
  interactivePaddingEfficiency: number;
  queuePaddingEfficiency: number;
  minWaitingJobs: number;
  othersCpuShareMax: number;
}

export interface PriorityResults extends RunHeader {
  schema: typeof PRIORITY_SCHEMA;
  bench: "priority-lane";
  /** How the run was done, in words, one item per part. */
  method: string[];
  backfill: {
    how: string;
    jobsPerPass: number;
    chunksPerPass: number;
    jobsAdded: number;
    passes: number;
    failedJobs: number;
  };
  queryTexts: { how: string; distinct: number; meanTokens: number };
  batchTimes: { full: BatchTiming; query: BatchTiming; quietWait: QuietWait };
  quietWait: QuietWait;
  phases: StoredPhase[];
  summary: PrioritySummary;
  goals: GoalResult[];
  notes: string[];
}

// The ceiling bench (`npm run bench:ceiling`): the worker with an instant stand-in model.

export const CEILING_SCHEMA = 1;

/** Printed above every ceiling table and stored in every ceiling results file. */
export const CEILING_LABEL = "instant stand-in model: not a model measurement";

export type CeilingMode = "dense+sparse" | "colbert";

/** One run of one case (ceiling/measure-ceiling.ts): a fresh worker drains the whole backlog. */
export interface CeilingRun {
  round: number;
  /** Resume of the paused queue to the last job finished. */
  windowSeconds: number;
  jobs: number;
  chunksEnqueued: number;
  /** embed_chunks_total in the window: equal to chunksEnqueued, or the run is refused. */
  chunks: number;
  /** Real tokens, special tokens included (embed_tokens_total). */
  tokens: number;
  paddedTokens: number;
  batches: number;
  sinkRequests: number;
  /** Distinct point ids the Qdrant stand-in received for this run's collection. */
  pointsStored: number;
  /** Vector sizes of the collection the worker created, by name (1024 from the stand-in session). */
  vectorSizes: Record<string, number>;
  failedJobs: number;
  /** "schedstat" (nanoseconds) or "stat" (10 ms ticks). */
  cpuSource: string;
  /** The worker's tokenizer backend from its `/health` ("js", "native"); absent in older files. With
   *  "native", encoding runs on libuv's threadpool, counted under `other`. */
  tokenizerBackend?: string;
  /** CPU seconds per thread of the worker process in the window. */
  cpuSeconds: {
    main: number;
    /** One per tokenizer thread, by thread id. */
    tokenizer: number[];
    /** The model thread (the stand-in session plus the worker's own post-processing). */
    model: number;
    /** Every other thread (V8's GC and compiler threads, libuv's pool). */
    other: number;
  };
  quietWait: QuietWait;
}

/** Figures derived from one run; a case's `median` holds the median of each over its runs. */
export interface CeilingFigures {
  meanTokens: number;
  /** CPU seconds per 1,000 chunks. */
  mainPer1k: number;
  /** CPU charged to tokenization: all tokenizer threads together, plus every other thread when the
   *  backend is native (an upper bound: see `tokenizerCpuSeconds` in ceiling/figures.ts). */
  tokenizerPer1k: number;
  modelPer1k: number;
  otherPer1k: number;
  /** 1 / main-thread CPU per chunk. */
  ceilingChunksPerSecond: number;
  ceilingTokensPerSecond: number;
  mainMicrosPerChunk: number;
  mainMicrosPerToken: number;
  /** Tokens per CPU second charged to tokenization (a lower bound with the native backend). */
  tokenizerTokensPerCpuSecond: number;
  /** Ceiling tokens/s over the H100 estimate's high and low ends. */
  ratioToH100High: number;
  ratioToH100Low: number;
  /** Chunks/s an H100 would need fed at this chunk size, low and high estimate. */
  h100ChunksPerSecondLow: number;
  h100ChunksPerSecondHigh: number;
  /** Wall-clock chunks/s of the whole drain on this machine (not the ceiling: threads share 2 cores). */
  drainChunksPerSecond: number;
}

export interface CeilingCase {
  mode: CeilingMode;
  /** The producer's CHUNK_TOKENS for this case. */
  targetTokens: number;
  how: string;
  runs: CeilingRun[];
  perRun: CeilingFigures[];
  median: CeilingFigures;
}

export interface CeilingTarget {
  id: string;
  description: string;
  value: number;
  comparator: ">=" | "<=";
  threshold: number;
  met: boolean;
}

export interface CeilingResults extends RunHeader {
  schema: typeof CEILING_SCHEMA;
  bench: "ceiling";
  label: typeof CEILING_LABEL;
  method: string[];
  /** The H100 BGE-M3 estimate compared against (bench/e2e/gpu-figures.ts). */
  h100: { gpu: string; low: number; high: number; how: string };
  cases: CeilingCase[];
  targets: CeilingTarget[];
  notes: string[];
}

// The queue bench (`npm run bench:queue`).

export const QUEUE_SCHEMA = 1;

/** One point of the grid. Only the document layout (one document's chunks per job, as the
 *  producer cuts them) is measured today; a packed layout (several one-chunk documents per job)
 *  or a sharded queue would be one more field here and one more loop in bench/queue/run.ts. */
export interface QueueCellKey {
  layout: "document";
  jobChunks: number;
  workers: number;
}

/** Counts of one Redis command over a window, from INFO commandstats. */
export interface CommandCount {
  command: string;
  calls: number;
  usec: number;
}

/** One (job size, workers) cell: a backlog enqueued while the queue is paused, then drained. */
export interface QueueCell extends QueueCellKey {
  jobs: number;
  chunks: number;
  tokens: number;
  /** Sum of the job data as BullMQ stores it (JSON, UTF-8 bytes). */
  jobDataBytes: number;
  failedJobs: number;
  /** Points the Qdrant stand-in stored, and the most writes any one id received. */
  pointsWritten: number;
  maxWritesPerPoint: number;
  /** INFO memory used_memory after the backlog was added minus before (the queue paused, nothing consumed). */
  usedMemoryDeltaBytes: number;
  /** From CONFIG RESETSTAT before the first add to the last job finished: the add, the drain, the workers' idle polling. */
  commands: number;
  /** Top-level commands (what clients sent; scripts' inner commands excluded): INFO stats total_commands_processed
   *  minus the commands run inside scripts, counted with MONITOR in a second, smaller drain of the same cell. */
  monitor?: { jobs: number; clientCommands: number; scriptCommands: number };
  /** Commands by name, most called first (the harness's own polls and INFO calls removed). */
  topCommands: CommandCount[];
  /** Microseconds spent inside commands (INFO commandstats usec), all commands. */
  commandUsec: number;
  /** Redis process CPU over the same window: INFO cpu (getrusage, microsecond resolution) and /proc/<pid>/stat (10 ms ticks). */
  redisCpuSeconds: number;
  redisMainThreadCpuSeconds: number;
  redisProcCpuSeconds: number;
  /** Resume -> last job's finishedOn. */
  drainSeconds: number;
  /** Calls the harness made during the window and removed from `commands` and `topCommands`. */
  harnessCalls: number;
  /** Share of the machine's CPU other processes took during the drain. */
  othersCpuShare: number;
  /** Just before the cell, queue paused and empty: Redis CPU and commands of the connected, waiting workers
   *  and the server's own cron and AOF, over `seconds`. A drain slower than production pays more of it per job. */
  idle: { seconds: number; cpuSeconds: number; commands: number };
}

export interface QueueDerived extends QueueCellKey {
  commandsPerJob: number;
  commandsPerChunk: number;
  clientCommandsPerJob?: number;
  redisCpuMsPerJob: number;
  redisCpuMsPerChunk: number;
  /** Redis CPU per job with the idle baseline's rate over the drain taken out: the per-job cost at a busy queue. */
  redisCpuMsPerJobNet: number;
  bytesPerWaitingJob: number;
  bytesPerWaitingChunk: number;
  jobsPerSecond: number;
  chunksPerSecond: number;
  /** 1 / Redis CPU seconds per job: the jobs per second one Redis core could serve at this cell's mix. */
  jobsPerRedisCoreSecond: number;
  /** The same from the net CPU per job (idle baseline taken out). */
  jobsPerRedisCoreSecondNet: number;
}

/** Least-squares fit of Redis bytes per waiting job against the job's data bytes, over the job sizes. */
export interface MemoryFit {
  bytesPerJob: number;
  bytesPerDataByte: number;
  points: number;
}

/** What the chunks and points of the run were made of, for scaling to other chunk sizes. */
export interface QueueCorpusFigures {
  chunkTokens: number;
  meanTokensPerChunk: number;
  /** UTF-8 bytes of chunk text per token (content tokens, the tokenizer the producer uses). */
  textBytesPerToken: number;
  /** Job data JSON bytes per chunk beyond its text, and per job beyond its chunks. */
  chunkJsonOverheadBytes: number;
  jobJsonOverheadBytes: number;
  /** Distinct non-special token ids per chunk over tokens per chunk (an upper bound of sparse entries). */
  distinctTokenRatio: number;
  /** Payload JSON bytes per stored point beyond its text. */
  payloadOverheadBytes: number;
}

export interface QueueBenchResults extends RunHeader {
  schema: typeof QUEUE_SCHEMA;
  bench: "queue";
  method: string[];
  redis: { version: string; persistence: string };
  corpusFigures: QueueCorpusFigures;
  cells: QueueCell[];
  derived: QueueDerived[];
  memoryFit: MemoryFit;
  notes: string[];
}
