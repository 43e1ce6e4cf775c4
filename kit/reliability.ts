/** Helpers for the reliability tests and the soak run: a deterministic synthetic corpus, the
 *  exact point ids it must end up as, the point ids one job writes, free TCP ports, and
 *  child processes that are always reaped. */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import type { Job } from "bullmq";
import { pointId } from "../shared/ids.js";
import { chunkDocument } from "../producer/chunker.js";
import type { SourceDocument } from "../producer/document.js";

export { freePort } from "./harness.js";
import { peakRssBytes as peakOf } from "../shared/process-memory.js";

const WORDS = (
  "river bridge market morning council library station garden report meeting budget school " +
  "harbour weather summer winter notice street museum concert planning traffic ferry county"
).split(" ");

/** Deterministic sentences: document `i` of a corpus is the same on every run. */
export function syntheticText(i: number, sentences: number): string {
  let x = ((i + 1) * 2654435761) >>> 0;
  const next = () => (x = (Math.imul(x ^ (x >>> 15), 2246822519) + 0x9e3779b9) >>> 0);
  const out: string[] = [];
  for (let s = 0; s < sentences; s++) {
    const n = 5 + (next() % 8);
    const words = Array.from({ length: n }, () => WORDS[next() % WORDS.length]);
    out.push(`${words[0][0].toUpperCase()}${words.join(" ").slice(1)} ${i}-${s}.`);
  }
  return out.join(" ");
}

export function syntheticDocs(
  count: number,
  opts: { prefix?: string; sentences?: (i: number) => number } = {},
): SourceDocument[] {
  const sentences = opts.sentences ?? ((i) => 1 + (i % 4));
  return Array.from({ length: count }, (_, i) => ({
    id: `${opts.prefix ?? "doc"}-${i}`,
    kind: "text" as const,
    segments: [{ text: syntheticText(i, sentences(i)) }],
    metadata: {},
    source: { file: "synthetic" },
  }));
}

/** Point ids the worker must write for these documents, computed with the producer's chunker. */
export function expectedPointIds(
  docs: Iterable<SourceDocument>,
  o: { chunkTokens: number; overlapTokens: number; countTokens: (t: string) => number },
): Set<string> {
  const ids = new Set<string>();
  for (const d of docs) {
    for (const c of chunkDocument(d, {
      targetTokens: o.chunkTokens,
      overlapTokens: o.overlapTokens,
      countTokens: o.countTokens,
    }))
      ids.add(pointId(d.id, c.index));
  }
  return ids;
}

/** The point ids one embed job writes. */
export function jobPointIds(job: Pick<Job, "data">): string[] {
  const d = job.data as { docId: string; chunks: Array<{ index: number }> };
  return d.chunks.map((c) => pointId(d.docId, c.index));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Peak resident set size of a live process, bytes (Linux VmHWM); undefined once it is gone. */
export const peakRssBytes = (pid: number): number | undefined => peakOf(pid);

/** Polls VmHWM while the process lives; the last value read is its peak. */
export function trackPeakRss(child: Pick<Child, "proc" | "exited">): { peak: () => number } {
  let peak = 0;
  const read = () => (peak = Math.max(peak, peakRssBytes(child.proc.pid!) ?? 0));
  const timer = setInterval(read, 200);
  void child.exited.then(() => clearInterval(timer));
  return { peak: () => (child.proc.exitCode === null && child.proc.signalCode === null ? read() : peak) };
}

export interface Child {
  proc: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** A child process that is killed when this process exits, however it exits. */
export function startChild(command: string, args: string[], opts: SpawnOptions & { keepOutput?: number } = {}): Child {
  const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  live.add(proc);
  const keep = opts.keepOutput ?? 200_000;
  let out = "";
  const add = (d: Buffer) => {
    out += d.toString();
    if (out.length > keep) out = out.slice(-keep);
  };
  proc.stdout?.on("data", add);
  proc.stderr?.on("data", add);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once("exit", (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { proc, output: () => out, exited, stop };
}
