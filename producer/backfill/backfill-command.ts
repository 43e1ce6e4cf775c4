/** `backfill` as one library call for the CLI: loads the model's tokenizer, runs the backfill
 *  (backfill.ts) and prints its summary on stdout (JSON with `json`). SIGINT and SIGTERM stop it
 *  gracefully, keeping the checkpoint; a second signal exits at once with 130. Returns the exit
 *  code: 130 when interrupted, 1 when a worker failed a job of this run, when nothing was enqueued
 *  but records were skipped, or when an expected failure (a ProducerError: checkpoint, options)
 *  stopped it, whose message goes to stderr; anything else is a bug and is thrown. */
import path from "node:path";
import type { Config } from "../../shared/config.js";
import { runBackfill, type BackfillOptions, type BackfillSummary } from "../backfill.js";
import { ProducerError } from "../producer-errors.js";
import { loadTokenCounter } from "../token-counter.js";
import { formatBackfillSummary } from "./summary-text.js";

/** What the command line decides; the command adds the token counter and the stop signal. */
export type BackfillCommandOptions = Omit<BackfillOptions, "countTokens" | "signal" | "log" | "checkpointStore">;

function exitCode(s: BackfillSummary): number {
  if (s.interrupted) return 130;
  return (s.worker?.failedJobs ?? 0) > 0 || (s.run.documents === 0 && s.run.skipped > 0) ? 1 : 0;
}

export async function runBackfillCommand(cfg: Config, o: BackfillCommandOptions, json: boolean): Promise<number> {
  const countTokens = loadTokenCounter(path.join(cfg.MODEL_DIR, "tokenizer.json"));
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`${sig}: stopping; the checkpoint keeps what was enqueued (send again to exit at once)\n`);
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const s = await runBackfill(cfg, { ...o, signal: ac.signal, countTokens });
    process.stdout.write(json ? JSON.stringify(s, null, 2) + "\n" : formatBackfillSummary(s));
    return exitCode(s);
  } catch (err) {
    if (!(err instanceof ProducerError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
