/** CPU accounting from /proc (Linux; elsewhere every reading is NaN): machine-wide busy time
 *  and one process's CPU time. The benchmark shares its machine, so each measurement records
 *  how much CPU other processes took during it; a ratio between two runs means little if one
 *  of them had the machine to itself and the other did not. */
import { readFileSync } from "node:fs";

const HZ = 100; // USER_HZ

/** Seconds of CPU time all cores have spent busy since boot (user, nice, system, irq, softirq, steal). */
export function machineBusySeconds(): number {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / HZ;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) process `pid` has used so far. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / HZ;
  } catch {
    return NaN;
  }
}

export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds of the harness so far: this process (producer, Qdrant stand-in) and Redis when its pid is known. */
export function harnessCpuSeconds(redisPid: number | undefined): number {
  return ownCpuSeconds() + (redisPid ? processCpuSeconds(redisPid) : 0);
}

/** CPU used during one measurement window, in seconds. */
export interface CpuWindow {
  /** All cores, all processes. */
  machine: number;
  /** The measured process (child). */
  measured: number;
  /** The benchmark's parent process and the Redis server, when they do work in the window. */
  harness: number;
  /** Everything else running on the machine. */
  others: number;
  /** `others` as a share of the machine's capacity over the window (cores x wall). */
  othersShare: number;
}

export function cpuWindow(
  machine: number,
  measured: number,
  harness: number,
  wallSeconds: number,
  cores: number,
): CpuWindow {
  const others = Math.max(0, machine - measured - harness);
  return { machine, measured, harness, others, othersShare: others / (wallSeconds * cores) };
}

export interface QuietWait {
  /** Seconds spent waiting before the timed part started. */
  waitedSeconds: number;
  /** Share of the machine other processes took in the last sampled second before starting. */
  othersShareBefore: number;
  quiet: boolean;
}

/** Waits, up to `maxSeconds`, for a one-second window in which processes other than `pids`
 *  (this one included) use less than `threshold` of the machine's CPU, then returns. It only
 *  improves the odds of a quiet measurement: what happens during it is recorded separately. */
export async function waitForQuiet(
  pids: number[],
  opts: { threshold: number; maxSeconds: number; cores: number },
): Promise<QuietWait> {
  const started = performance.now();
  const ours = () => pids.reduce((a, p) => a + (p === process.pid ? ownCpuSeconds() : processCpuSeconds(p) || 0), 0);
  let share = NaN;
  for (;;) {
    const m0 = machineBusySeconds();
    const o0 = ours();
    await new Promise((r) => setTimeout(r, 1000));
    share = Math.max(0, machineBusySeconds() - m0 - (ours() - o0)) / opts.cores;
    const waited = (performance.now() - started) / 1000;
    if (!(share >= opts.threshold) || waited >= opts.maxSeconds)
      return { waitedSeconds: waited, othersShareBefore: share, quiet: !(share >= opts.threshold) };
  }
}
