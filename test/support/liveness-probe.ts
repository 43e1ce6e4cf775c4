/** Polls a worker's `/health/live` while a test runs, one request at a time, and keeps every
 *  answer's latency: the hostile-job tests assert the process stays up and responsive while it
 *  refuses what they send. A request that fails or gets no 200 counts as a failure. */
import { sleep } from "../../kit/reliability.js";

export interface LivenessProbe {
  /** Latency of every answered probe, milliseconds. */
  latencies: number[];
  /** When each answered probe was sent (Date.now()), parallel to `latencies`. */
  sentAt: number[];
  /** Probes that failed (connection refused, non-200, timeout), with when and why. */
  failures: Array<{ at: number; error: string }>;
  /** Stops polling; resolves after the request in flight. */
  stop(): Promise<void>;
  /** Highest latency seen, milliseconds. */
  max(): number;
}

export function probeLiveness(port: number, everyMs = 50, timeoutMs = 5000): LivenessProbe {
  const latencies: number[] = [];
  const sentAt: number[] = [];
  const failures: Array<{ at: number; error: string }> = [];
  let running = true;
  const loop = (async () => {
    // The first fetch of a process loads the HTTP client (100-300 ms here): not the worker's latency.
    await fetch(`http://127.0.0.1:${port}/health/live`)
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
    while (running) {
      const started = performance.now();
      const at = Date.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        if (res.status !== 200) failures.push({ at: Date.now(), error: `HTTP ${res.status}` });
        else {
          latencies.push(performance.now() - started);
          sentAt.push(at);
        }
      } catch (err) {
        failures.push({ at: Date.now(), error: (err as Error).message });
      }
      await sleep(everyMs);
    }
  })();
  return {
    latencies,
    sentAt,
    failures,
    max: () => Math.max(0, ...latencies),
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
