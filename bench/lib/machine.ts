/** What a results file records about where and from what it ran: the machine (cores, CPU
 *  model, memory, Node) and the git commit with a dirty flag. Paths are never recorded. */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { repoRoot } from "./paths.js";

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemoryBytes: number;
  node: string;
  platform: string;
  arch: string;
  /** 1-minute load average when the run started and ended (other work on the machine shows here). */
  loadAverage: { start: number; end?: number };
}

export interface GitInfo {
  commit: string;
  /** Uncommitted changes to tracked files (untracked files do not count). */
  dirty: boolean;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
    loadAverage: { start: os.loadavg()[0] },
  };
}

export function gitInfo(): GitInfo {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    return {
      commit: git("rev-parse", "--short=12", "HEAD"),
      dirty: git("status", "--porcelain", "--untracked-files=no").length > 0,
    };
  } catch {
    return { commit: "unknown", dirty: true };
  }
}
