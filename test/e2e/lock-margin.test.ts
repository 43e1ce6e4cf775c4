/** The margin behind the default lock settings (issue 16, item 4): BullMQ renews a job's lock
 *  every LOCK_DURATION_MS / 2 from the worker's main thread, so a main-thread stall longer than
 *  that loses the lock and another worker redoes the job. One worker with the default in-flight
 *  window and token budget (sequences capped at 512 so the warm-up stays small) gets a saturating
 *  backlog: full jobs of long chunks plus jobs at the size bounds (MAX_CHUNKS_PER_JOB chunks of
 *  about MAX_CHUNK_CHARS characters, text stored in the payload). Its event-loop lag, read from
 *  `nodejs_eventloop_lag_max_seconds` on every scrape (prom-client resets the histogram each
 *  time), must stay under a tenth of the renewal interval; the worst value is printed. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import { waitFor } from "../../kit/harness.js";
import { syntheticText } from "../../kit/reliability.js";
import { workerFixture } from "../support/worker-fixture.js";
import { fleetBacklog, fleetQueue, scrapeMetric } from "../support/fleet.js";

const fx = workerFixture();
const defaults = parseConfig({});

/** A text of about `chars` characters (whole sentences of the synthetic corpus). */
function longText(i: number, chars: number): string {
  let out = "";
  for (let s = 0; out.length < chars - 200; s++) out += syntheticText(i + s, 1) + " ";
  return out;
}

test("event-loop lag under a saturating backlog stays far below the lock renewal interval", async (t) => {
  const f = fleetQueue(fx, "lockmargin");
  const normal = fleetBacklog(12, defaults.MAX_CHUNKS_PER_JOB, (i, n) => syntheticText(i, 6 * n));
  const big = fleetBacklog(1, defaults.MAX_CHUNKS_PER_JOB, (i) => longText(i, defaults.MAX_CHUNK_CHARS));
  for (const j of big.jobs) {
    j.opts.jobId = `big-${j.opts.jobId}`;
    j.data.docId = `big-${j.data.docId}`;
  }
  const w = await f.start({
    MAX_SEQ_LENGTH: "512",
    MAX_BATCH_TOKENS: String(defaults.MAX_BATCH_TOKENS),
    WORKER_CONCURRENCY: String(defaults.WORKER_CONCURRENCY),
    BATCH_LINGER_MS: String(defaults.BATCH_LINGER_MS),
    TOKENIZER_THREADS: "2", // the job at the bounds is ~2M tokens of pure-JS tokenizing
  });
  const lags: number[] = [];
  const total = normal.jobs.length + big.jobs.length;
  await f.queue.addBulk([...big.jobs, ...normal.jobs]);
  const t0 = Date.now();
  await waitFor(
    async () => {
      lags.push(await scrapeMetric(w.port, "nodejs_eventloop_lag_max_seconds"));
      await new Promise((r) => setTimeout(r, 250));
      return (await f.queue.getJobCounts("completed")).completed === total;
    },
    50_000,
    "the backlog completed",
  );
  const took = Date.now() - t0;
  assert.deepEqual(await f.queue.getJobCounts("failed", "active"), { failed: 0, active: 0 });
  assert.ok(lags.length >= 8, `only ${lags.length} scrapes during the run`);
  const worst = Math.max(...lags) * 1000;
  const sorted = [...lags].sort((a, b) => a - b);
  const p90 = sorted[Math.floor(0.9 * (sorted.length - 1))] * 1000;
  const renewMs = defaults.LOCK_DURATION_MS / 2;
  t.diagnostic(
    `${total} jobs (${big.jobs.length} at the size bounds) in ${took} ms; event-loop lag per ${lags.length} scrapes: ` +
      `worst ${worst.toFixed(0)} ms, p90 ${p90.toFixed(0)} ms; lock renewed every ${renewMs} ms ` +
      `(margin ${(renewMs / worst).toFixed(0)}x)`,
  );
  assert.ok(worst < renewMs / 10, `a ${worst} ms stall is within 10x of the ${renewMs} ms renewal interval`);
  await w.child.stop();
});
