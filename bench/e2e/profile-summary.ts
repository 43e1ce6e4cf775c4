/** Summarises the V8 CPU profiles `--cpu-prof` writes (one per thread) into where each thread
 *  spent its time: sampled wall time, idle time, and the functions with the most self time.
 *  Threads are named by the module they run (onnx-thread.js = model thread,
 *  tokenizer-thread.js = tokenizer thread, the process's first thread = main). */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ThreadProfile } from "../lib/results-schema.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (!url) return "";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  return m ? m[1] : path.basename(url);
}

function role(p: CpuProfile, tid: string): string {
  const urls = p.nodes.map((n) => n.callFrame.url);
  if (urls.some((u) => u.endsWith("onnx-thread.js"))) return "model thread";
  if (urls.some((u) => u.endsWith("tokenizer-thread.js"))) return "tokenizer thread";
  return tid === "0" ? "main thread" : `thread ${tid}`;
}

export function summarizeProfiles(dir: string, topN = 8): ThreadProfile[] {
  const out: ThreadProfile[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .sort()) {
    const p = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as CpuProfile;
    const tid = file.split(".")[4] ?? "?";
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]);
      if (!n) continue;
      const f = n.callFrame;
      const key = f.url ? `${f.functionName || "(anonymous)"} (${where(f.url)})` : f.functionName;
      self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0) / 1e6);
    }
    const idle = self.get("(idle)") ?? 0;
    const top = [...self.entries()]
      .filter(([k]) => k !== "(idle)" && k !== "(root)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN);
    out.push({
      thread: role(p, tid),
      sampledSeconds: (p.endTime - p.startTime) / 1e6,
      idleSeconds: idle,
      top: top.map(([fn, seconds]) => ({ fn, seconds })),
    });
  }
  return out;
}
