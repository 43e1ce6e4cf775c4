/** The part of the error vocabulary the producer and the worker share: the kinds that label
 *  metrics and failed jobs' reasons, the base class, and the failures raised by shared code
 *  (configuration, job bounds). The worker's own failures and the one place that decides
 *  retryability live in `worker/errors.ts`. */

export type ErrorKind =
  | "validation" // the job or a chunk is malformed: retrying cannot help
  | "too_long" // a chunk exceeds MAX_SEQ_LENGTH and TRUNCATE=false
  | "inference" // the model failed on a batch (after splitting down to the chunk)
  | "oom" // the execution provider ran out of memory, even for one chunk
  | "sink" // Qdrant (or the JSONL file) refused or failed the write
  | "timeout"
  | "shutdown" // the worker stopped before the job finished: handed back to the queue, not a failure
  | "config"
  | "model" // the model or its provider cannot be loaded
  | "schema" // the Qdrant collection exists with an incompatible schema
  | "internal"; // an unexpected exception (a bug) while processing one job: fails that job, never the process

export abstract class EmbedError extends Error {
  abstract readonly kind: ErrorKind;
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ConfigError extends EmbedError {
  readonly kind = "config";
  readonly retryable = false;
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

export class ValidationError extends EmbedError {
  readonly kind = "validation";
  readonly retryable = false;
}

/** A job over a size bound (chunks, text bytes, metadata depth or size), found on the raw job
 *  data before the schema parse so an enormous or deeply nested job costs almost nothing. */
export class JobLimitError extends ValidationError {
  constructor(
    message: string,
    readonly setting: string,
    readonly actual: number,
    readonly max: number,
  ) {
    super(message);
  }
}
