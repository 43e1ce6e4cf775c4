/** Child process for the ceiling bench (bench/ceiling/): one worker process assembled exactly as
 *  `npm run worker` does it (startWorker: BullMQ consumer, tokenizer threads, batcher, model
 *  thread, Qdrant sink over HTTP) with one part replaced: inside the real model thread, ONNX
 *  Runtime's session is the instant stand-in of bench/ceiling/instant-session.ts. It is started
 *  with `--import` of bench/ceiling/thread-tags.js, so every worker thread tells it its Linux
 *  thread id and role; per-thread CPU comes from /proc/self/task/<tid>/schedstat (nanoseconds;
 *  /proc/.../stat ticks where schedstat is missing). Protocol: ready -> mark -> marked ->
 *  stats -> stats -> close -> closed. */
import { readdirSync, readFileSync } from "node:fs";
import { parseConfig } from "../../shared/config.js";
import { createLogger } from "../../shared/logger.js";
import { createMetrics, metricTotal } from "../../worker/metrics.js";
import { startWorker } from "../../worker/app.js";
import { childPort } from "../lib/child-process.js";
import { THREAD_TAG_CHANNEL, type ThreadRole, type ThreadTag } from "../ceiling/thread-tags.js";

export interface ThreadCpu {
  tid: number;
  role: ThreadRole;
  cpuSeconds: number;
}

export interface CeilingStats {
  type: "stats";
  /** Counter deltas between mark and stats. */
  counters: Record<string, number>;
  windowSeconds: number;
  /** Every thread that used CPU in the window. */
  threads: ThreadCpu[];
  /** "schedstat" (ns) or "stat" (10 ms ticks). */
  cpuSource: string;
  /** The tokenizer backend the worker settled on, as its `/health` reports it. */
  tokenizerBackend: string;
}

const tags = new Map<number, ThreadRole>();
const channel = new BroadcastChannel(THREAD_TAG_CHANNEL);
channel.onmessage = (e: MessageEvent) => {
  const t = e.data as ThreadTag;
  tags.set(t.tid, t.role);
};

let cpuSource = "schedstat";
function threadCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      if (cpuSource === "schedstat") {
        out.set(Number(tid), Number(readFileSync(`/proc/self/task/${tid}/schedstat`, "utf8").split(" ")[0]) / 1e9);
        continue;
      }
    } catch {
      cpuSource = "stat";
    }
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

const COUNTERS = [
  "embed_chunks_total",
  "embed_tokens_total",
  "embed_padded_tokens_total",
  "embed_batches_total",
  "embed_errors_total",
  "embed_sink_requests_total",
];

const port = childPort();
const cfg = parseConfig(process.env);
const metrics = createMetrics({ defaultMetrics: false });
const running = await startWorker(cfg, {
  log: createLogger({ level: cfg.LOG_LEVEL, name: "bench-ceiling-worker" }),
  metrics,
  onFatal: () => process.exit(1),
  sessionModule: new URL("../ceiling/instant-session.js", import.meta.url).href,
  // Any free port (HTTP_HOST is 127.0.0.1): only its /health is read, once, before the window.
  httpPort: 0,
});

/** Read from the worker's own `/health` (TOKENIZER_BACKEND=auto settles at start-up). */
async function healthTokenizerBackend(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${running.httpPort}/health`);
  const body = (await res.json()) as { tokenizerBackend?: unknown };
  return typeof body.tokenizerBackend === "string" ? body.tokenizerBackend : "unknown";
}
const tokenizerBackend = await healthTokenizerBackend();

async function counters(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of COUNTERS) out[n] = await metricTotal(metrics, n);
  return out;
}

let counters0 = await counters();
let cpu0 = threadCpu();
let wall0 = performance.now();
port.send({ type: "ready", pid: process.pid });

port.on(async (m) => {
  if (m.type === "mark") {
    cpu0 = threadCpu();
    counters0 = await counters();
    wall0 = performance.now();
    port.send({ type: "marked" });
  } else if (m.type === "stats") {
    const cpu = threadCpu();
    const now = await counters();
    const windowSeconds = (performance.now() - wall0) / 1000;
    const threads: ThreadCpu[] = [...cpu.entries()]
      .map(([tid, s]) => ({
        tid,
        role: tid === process.pid ? "main" : (tags.get(tid) ?? "other"),
        cpuSeconds: s - (cpu0.get(tid) ?? 0),
      }))
      .filter((t) => t.cpuSeconds > 0);
    const delta = Object.fromEntries(COUNTERS.map((n) => [n, now[n] - counters0[n]]));
    port.send({
      type: "stats",
      counters: delta,
      windowSeconds,
      threads,
      cpuSource,
      tokenizerBackend,
    } satisfies CeilingStats);
  } else if (m.type === "close") {
    channel.close();
    await running.close();
    port.send({ type: "closed" });
    process.exit(0);
  }
});
