/** GPU memory of the worker's CUDA device, read with `nvidia-smi` (present wherever the NVIDIA
 *  container toolkit mounts the driver). ONNX Runtime's Node binding exposes no allocator
 *  statistics, so the device-wide figure is the one available. Bounded in time; never throws. */
import { execFile } from "node:child_process";

export interface GpuMemory {
  usedBytes: number;
  totalBytes: number;
}

const MIB = 1024 * 1024;

/** Parses `nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits` (MiB). */
export function parseNvidiaSmi(out: string): GpuMemory | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/m.exec(out);
  if (!m) return undefined;
  return { usedBytes: Number(m[1]) * MIB, totalBytes: Number(m[2]) * MIB };
}

export function readGpuMemory(
  deviceId: number,
  timeoutMs: number,
  command = "nvidia-smi",
): Promise<GpuMemory | undefined> {
  return new Promise((resolve) => {
    execFile(
      command,
      ["--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits", `--id=${deviceId}`],
      { timeout: timeoutMs, windowsHide: true },
      (err, stdout) => resolve(err ? undefined : parseNvidiaSmi(stdout)),
    );
  });
}
