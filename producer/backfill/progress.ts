/** What a running backfill shows: a cli-progress bar on a terminal, or one pino JSON line per
 *  interval when stderr is not a terminal (logs, CI). Both read the same snapshot. Rates are
 *  measured over a sliding window; the ETA divides the work left (chunks still to enqueue,
 *  extrapolated from bytes read, plus this run's backlog) by the rate at which the workers
 *  drain this run's chunks, so it reflects the slowest stage. Writes to stderr only: stdout
 *  carries the summary. */
import cliProgress from "cli-progress";
import type { Logger } from "pino";

export interface ProgressSnapshot {
  phase: "enqueue" | "wait";
  elapsedSeconds: number;
  files: number;
  documents: number;
  jobs: number;
  chunks: number;
  tokens: number;
  skipped: number;
  bytesDone: number;
  /** Bytes of all inputs, once measured in the background; null until then. */
  bytesTotal: number | null;
  backlogJobs: number;
  backlogChunks: number;
  paused: boolean;
  enqueueChunksPerSecond: number;
  drainChunksPerSecond: number | null;
  etaSeconds: number | null;
}

/** Rate of a growing counter over the last `windowMs`. */
export class RateMeter {
  private samples: Array<[number, number]> = [];
  constructor(private readonly windowMs = 30_000) {}

  add(value: number, now = performance.now()): void {
    this.samples.push([now, value]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  /** Per second; null until two samples at least 1 s apart exist. */
  perSecond(): number | null {
    if (this.samples.length < 2) return null;
    const [t0, v0] = this.samples[0];
    const [t1, v1] = this.samples[this.samples.length - 1];
    return t1 - t0 < 1000 ? null : ((v1 - v0) * 1000) / (t1 - t0);
  }
}

/** Seconds until this run's last chunk is embedded, or null without a total or a drain rate. */
export function estimateEta(o: {
  chunks: number;
  bytesDone: number;
  bytesTotal: number | null;
  backlogChunks: number;
  drainPerSecond: number | null;
}): number | null {
  if (o.bytesTotal === null || o.bytesDone <= 0 || !o.drainPerSecond || o.drainPerSecond <= 0) return null;
  const expected = (o.chunks * o.bytesTotal) / o.bytesDone;
  const toEnqueue = Math.max(0, expected - o.chunks);
  return Math.round((toEnqueue + o.backlogChunks) / o.drainPerSecond);
}

export type ProgressMode = "bar" | "log" | "none";

export interface ProgressReporter {
  stop(): void;
}

const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

export function startProgress(
  mode: ProgressMode,
  snapshot: () => ProgressSnapshot,
  opts: { intervalMs: number; log: Logger },
): ProgressReporter {
  if (mode === "none") return { stop() {} };
  if (mode === "log") {
    const emit = () => {
      const s = snapshot();
      opts.log.info(
        {
          ...s,
          enqueueChunksPerSecond: round(s.enqueueChunksPerSecond),
          drainChunksPerSecond: round(s.drainChunksPerSecond),
          elapsedSeconds: round(s.elapsedSeconds),
        },
        "backfill progress",
      );
    };
    const timer = setInterval(emit, opts.intervalMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        "{phase} |{bar}| {percentage}% | {documents} docs, {chunks} chunks | {rate} chunks/s | backlog {backlog}{paused} | ETA {etaText}",
      hideCursor: true,
      fps: 4,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (s: ProgressSnapshot) => ({
    phase: s.phase === "wait" ? "draining" : "backfill",
    documents: s.documents,
    chunks: s.chunks,
    rate: Math.round(s.phase === "wait" ? (s.drainChunksPerSecond ?? 0) : s.enqueueChunksPerSecond),
    backlog: `${s.backlogJobs} jobs/${s.backlogChunks} chunks`,
    paused: s.paused ? " (paused)" : "",
    etaText: s.etaSeconds === null ? "?" : formatSeconds(s.etaSeconds),
  });
  // The bar shows bytes read out of the inputs' total; 0% until the background measurement has it.
  const position = (s: ProgressSnapshot) =>
    s.bytesTotal === null ? [0, 1] : [Math.min(s.bytesDone, s.bytesTotal), Math.max(1, s.bytesTotal)];
  const first = snapshot();
  bar.start(position(first)[1], position(first)[0], payload(first));
  const timer = setInterval(() => {
    const s = snapshot();
    const [value, total] = position(s);
    bar.setTotal(total);
    bar.update(value, payload(s));
  }, 500);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      bar.stop();
    },
  };
}

export function formatSeconds(sec: number): string {
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = Math.floor(sec % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}
