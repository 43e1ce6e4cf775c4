/** Per-cell figures of the queue bench from its raw counts, and the memory fit the capacity
 *  model scales with. Pure: same cells, same figures. */
import type { MemoryFit, QueueCell, QueueDerived } from "../lib/results-schema.js";

export function derive(c: QueueCell): QueueDerived {
  const idleRate = c.idle.seconds > 0 ? c.idle.cpuSeconds / c.idle.seconds : 0;
  const net = Math.max(0, c.redisCpuSeconds - idleRate * c.drainSeconds);
  return {
    layout: c.layout,
    jobChunks: c.jobChunks,
    workers: c.workers,
    commandsPerJob: c.commands / c.jobs,
    commandsPerChunk: c.commands / c.chunks,
    clientCommandsPerJob: c.monitor && c.monitor.clientCommands / c.monitor.jobs,
    redisCpuMsPerJob: (c.redisCpuSeconds * 1000) / c.jobs,
    redisCpuMsPerChunk: (c.redisCpuSeconds * 1000) / c.chunks,
    redisCpuMsPerJobNet: (net * 1000) / c.jobs,
    bytesPerWaitingJob: c.usedMemoryDeltaBytes / c.jobs,
    bytesPerWaitingChunk: c.usedMemoryDeltaBytes / c.chunks,
    jobsPerSecond: c.jobs / c.drainSeconds,
    chunksPerSecond: c.chunks / c.drainSeconds,
    jobsPerRedisCoreSecond: c.jobs / c.redisCpuSeconds,
    jobsPerRedisCoreSecondNet: c.jobs / net,
  };
}

/** Least squares of Redis bytes per waiting job against job data bytes, one point per cell. With one
 *  job size only, the line goes through the origin (all bytes proportional to data). */
export function fitMemory(cells: QueueCell[]): MemoryFit {
  const xs = cells.map((c) => c.jobDataBytes / c.jobs);
  const ys = cells.map((c) => c.usedMemoryDeltaBytes / c.jobs);
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  if (!(sxx > 0)) return { bytesPerJob: 0, bytesPerDataByte: my / mx, points: n };
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / sxx;
  return { bytesPerJob: my - slope * mx, bytesPerDataByte: slope, points: n };
}
