/** The BullMQ error tracker with time passed in: Redis replies land in the right bounded reason,
 *  thousands of errors a second become a handful of log lines, readiness turns false only after a
 *  run of errors with no fetch and back at the next fetch, and the fetch backoff doubles to its cap. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  classifyQueueError,
  QUEUE_ERROR_REASONS,
  QueueErrorTracker,
  type ErrorLogDecision,
} from "../../worker/core/queue-error-tracker.js";

test("Redis error replies map to bounded reasons, including ones wrapped by a Lua script", () => {
  const cases: Array<[string, string]> = [
    ["CROSSSLOT Keys in request don't hash to the same slot", "crossslot"],
    ["MOVED 3999 127.0.0.1:6381", "cluster"],
    ["CLUSTERDOWN The cluster is down", "cluster"],
    ["NOSCRIPT No matching script. Please use EVAL.", "noscript"],
    ["NOPERM User w has no permissions to run the 'evalsha' command", "noperm"],
    ["WRONGPASS invalid username-password pair or user is disabled.", "auth"],
    ["NOAUTH Authentication required.", "auth"],
    ["OOM command not allowed when used memory > 'maxmemory'. script: 1a2b, on @user_script:71.", "oom"],
    ["READONLY You can't write against a read only replica.", "readonly"],
    ["LOADING Redis is loading the dataset in memory", "loading"],
    ["BUSY Redis is busy running a script.", "busy"],
    ["MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist", "misconf"],
    ["ERR something else", "other"],
    ["room for doom", "other"],
  ];
  for (const [message, reason] of cases) assert.equal(classifyQueueError(message), reason, message);
  for (const [, reason] of cases) assert.ok((QUEUE_ERROR_REASONS as readonly string[]).includes(reason));
});

test("3,000 errors a second for 10 s of two reasons log a handful of lines", () => {
  const t = new QueueErrorTracker({ notReadyAfter: 3, summaryMs: 5_000, backoffMs: 250, maxBackoffMs: 5_000 });
  const lines: ErrorLogDecision[] = [];
  let n = 0;
  for (let ms = 0; ms < 10_000; ms++) {
    for (let k = 0; k < 3; k++, n++) {
      const d = t.error(k === 2 ? "OOM command not allowed" : "CROSSSLOT Keys in request", ms);
      if (d.log !== "none") lines.push(d);
    }
  }
  assert.equal(n, 30_000);
  // Per reason: the first occurrence, then a summary at 5 s (the one at 10 s has not come yet).
  assert.deepEqual(
    lines.map((l) => `${l.log}:${"reason" in l ? l.reason : ""}`),
    ["first:crossslot", "first:oom", "summary:crossslot", "summary:oom"],
  );
  const summary = lines[2] as Extract<ErrorLogDecision, { log: "summary" }>;
  assert.equal(summary.repeats, 2 * 5_000, "every CROSSSLOT repeat since the first line, this one included");
  assert.equal(summary.windowMs, 5_000);
  const ended = t.fetched(10_000);
  // Not yet in any line: CROSSSLOT after its summary at 5,000 ms (2 a ms, less the summary's own), OOM after 5,000 ms.
  assert.deepEqual(ended, { errors: 30_000, durationMs: 10_000, unlogged: 2 * 5_000 - 1 + 4_999 });
  assert.equal(t.error("CROSSSLOT again", 10_001).log, "first", "after recovery the next failure is logged in full");
});

test("readiness: false after a run of errors with no fetch, true again at the next fetch", () => {
  const t = new QueueErrorTracker({ notReadyAfter: 3, summaryMs: 30_000, backoffMs: 250, maxBackoffMs: 5_000 });
  assert.equal(t.notReady(0), undefined, "an idle worker that never erred is ready");
  t.error("NOPERM no evalsha", 100);
  t.error("NOPERM no evalsha", 200);
  assert.equal(t.notReady(300), undefined, "two errors are not yet a run");
  t.fetched(300);
  t.error("NOPERM no evalsha", 400);
  t.error("NOPERM no evalsha", 500);
  assert.equal(t.notReady(600), undefined, "a successful fetch restarted the count");
  t.error("OOM command not allowed", 700);
  assert.deepEqual(t.notReady(1_000), { reason: "oom", error: "OOM command not allowed", errors: 3, sinceMs: 600 });
  t.fetched(1_100);
  assert.equal(t.notReady(1_200), undefined);
});

test("the fetch backoff doubles from its base to its cap and restarts after a fetch", () => {
  const t = new QueueErrorTracker({ notReadyAfter: 3, summaryMs: 30_000, backoffMs: 250, maxBackoffMs: 5_000 });
  const pauses = Array.from({ length: 40 }, () => t.fetchFailed());
  assert.deepEqual(pauses.slice(0, 7), [250, 500, 1000, 2000, 4000, 5000, 5000]);
  assert.equal(Math.max(...pauses), 5000);
  t.fetched(0);
  assert.equal(t.fetchFailed(), 250);
});
