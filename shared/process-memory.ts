/** Peak resident memory of a process. On Linux this is VmHWM from /proc, the high-water mark of
 *  the process's own address space. getrusage's maxrss is not used there: it survives exec, so
 *  a child spawned by a large parent reports the parent's size. Elsewhere, for this process,
 *  falls back to getrusage. */
import { readFileSync } from "node:fs";

export function peakRssBytes(pid: number | "self" = "self"): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // no /proc (not Linux) or the process is gone
  }
  return pid === "self" || pid === process.pid ? process.resourceUsage().maxRSS * 1024 : undefined;
}
