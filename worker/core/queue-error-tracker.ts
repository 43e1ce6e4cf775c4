/** Decides what the worker does about BullMQ errors: which bounded reason each one is counted
 *  under, whether it is logged now or folded into a summary, how long the fetch loop backs off,
 *  and whether the worker is ready. Trades detail for a quiet log: the first error of a reason is
 *  logged in full, repeats only as one summary line per reason every `summaryMs` with their count
 *  (a worker against a Redis that refuses BullMQ's scripts once logged ~2,800 lines a second,
 *  issue 16). Ready turns false after `notReadyAfter` errors with no successful fetch in between
 *  and true again at the next successful fetch; an idle queue fetches nothing and errs nothing,
 *  so it stays ready. Performs no I/O; time is passed in. */

/** The bounded set of `reason` labels of `embed_queue_errors_total`. */
export const QUEUE_ERROR_REASONS = [
  "crossslot",
  "cluster",
  "noscript",
  "noperm",
  "auth",
  "oom",
  "readonly",
  "loading",
  "busy",
  "misconf",
  "other",
] as const;
export type QueueErrorReason = (typeof QUEUE_ERROR_REASONS)[number];

// Redis error codes appear first in a reply, or after "script:"-style wrapping when a Lua script's
// redis.call fails; match them as words anywhere in the message.
const CODES: Array<[RegExp, QueueErrorReason]> = [
  [/\bCROSSSLOT\b/, "crossslot"],
  [/\b(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/, "cluster"],
  [/\bNOSCRIPT\b/, "noscript"],
  [/\bNOPERM\b/, "noperm"],
  [/\b(NOAUTH|WRONGPASS)\b/, "auth"],
  [/\bOOM\b/, "oom"],
  [/\bREADONLY\b/, "readonly"],
  [/\bLOADING\b/, "loading"],
  [/\bBUSY\b/, "busy"],
  [/\bMISCONF\b/, "misconf"],
];

export function classifyQueueError(message: string): QueueErrorReason {
  for (const [re, reason] of CODES) if (re.test(message)) return reason;
  return "other";
}

export interface QueueErrorPolicy {
  /** Errors with no successful fetch in between after which the worker reports not ready. */
  notReadyAfter: number;
  /** Repeats of one reason are summed into one log line at most this often, ms. */
  summaryMs: number;
  /** First and longest pause of the fetch loop after a failed fetch, ms (doubling in between). */
  backoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_QUEUE_ERROR_POLICY: QueueErrorPolicy = {
  notReadyAfter: 3,
  summaryMs: 30_000,
  backoffMs: 250,
  maxBackoffMs: 5_000,
};

/** What to log for one error: nothing (folded into a later summary), the error itself, or a
 *  summary of the repeats since the last line of this reason. */
export type ErrorLogDecision =
  | { log: "none" }
  | { log: "first"; reason: QueueErrorReason }
  | { log: "summary"; reason: QueueErrorReason; repeats: number; windowMs: number };

interface ReasonLog {
  loggedAt: number;
  suppressed: number;
}

export interface NotReady {
  reason: QueueErrorReason;
  error: string;
  errors: number;
  sinceMs: number;
}

export class QueueErrorTracker {
  private readonly logs = new Map<QueueErrorReason, ReasonLog>();
  private streak = 0;
  private streakStart = 0;
  private last: { reason: QueueErrorReason; message: string } | undefined;
  private failedFetches = 0;

  constructor(private readonly policy: QueueErrorPolicy = DEFAULT_QUEUE_ERROR_POLICY) {}

  /** Records a BullMQ error (from any of its loops) and says what to log. */
  error(message: string, now: number): ErrorLogDecision & { reason: QueueErrorReason } {
    const reason = classifyQueueError(message);
    if (this.streak === 0) this.streakStart = now;
    this.streak++;
    this.last = { reason, message };
    const entry = this.logs.get(reason);
    if (!entry) {
      this.logs.set(reason, { loggedAt: now, suppressed: 0 });
      return { log: "first", reason };
    }
    entry.suppressed++;
    if (now - entry.loggedAt < this.policy.summaryMs) return { log: "none", reason };
    const decision = { log: "summary" as const, reason, repeats: entry.suppressed, windowMs: now - entry.loggedAt };
    entry.loggedAt = now;
    entry.suppressed = 0;
    return decision;
  }

  /** A fetch failed: how long the fetch loop should pause before its next attempt, ms. */
  fetchFailed(): number {
    this.failedFetches++;
    return Math.min(this.policy.maxBackoffMs, this.policy.backoffMs * 2 ** Math.min(this.failedFetches - 1, 20));
  }

  /** A fetch succeeded (a job or an empty queue). Returns the error streak it ended, if any, with
   *  the repeats not yet logged, so recovery is logged once with what was folded away. */
  fetched(now: number): { errors: number; durationMs: number; unlogged: number } | undefined {
    this.failedFetches = 0;
    if (this.streak === 0) return undefined;
    const ended = { errors: this.streak, durationMs: now - this.streakStart, unlogged: 0 };
    for (const entry of this.logs.values()) ended.unlogged += entry.suppressed;
    this.streak = 0;
    this.logs.clear();
    return ended;
  }

  /** Why the worker cannot work, or undefined while it can (or merely has nothing to do). */
  notReady(now: number): NotReady | undefined {
    if (this.streak < this.policy.notReadyAfter || !this.last) return undefined;
    return { reason: this.last.reason, error: this.last.message, errors: this.streak, sinceMs: now - this.streakStart };
  }
}
