/** Preloaded with `--import` into the ceiling bench's worker process, so it runs at the start of
 *  every worker thread (Node runs `--import` modules in each thread; Node 20 names every thread
 *  "node" in /proc, so a thread's role cannot be read there). Each worker thread posts its Linux
 *  thread id (from /proc/thread-self) and its role on a BroadcastChannel that the bench child
 *  (children/ceiling-child.ts) listens to: "model" for the model thread (its workerData carries
 *  `modelPath`), "tokenizer" for a tokenizer thread (`tokenizerPath` without `modelPath`).
 *  Does nothing on the main thread or off Linux. */
import { readlinkSync } from "node:fs";
import { isMainThread, workerData } from "node:worker_threads";

export const THREAD_TAG_CHANNEL = "bench-ceiling-thread-tags";

export type ThreadRole = "main" | "model" | "tokenizer" | "other";

export interface ThreadTag {
  tid: number;
  role: ThreadRole;
}

function roleOf(data: unknown): ThreadRole {
  const keys = data && typeof data === "object" ? Object.keys(data) : [];
  if (keys.includes("modelPath")) return "model";
  if (keys.includes("tokenizerPath")) return "tokenizer";
  return "other";
}

if (!isMainThread) {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    const channel = new BroadcastChannel(THREAD_TAG_CHANNEL);
    channel.postMessage({ tid, role: roleOf(workerData) } satisfies ThreadTag);
    channel.close();
  } catch {
    // not Linux: the child reports threads untagged
  }
}
