/** Typed failures. Every error the pipeline produces has a `kind` (the label used in metrics
 *  and in a failed job's reason) and whether retrying can help. Retryability is decided here
 *  and nowhere else: bad input fails its own job at once; transient faults retry with backoff.
 *  The base class and the errors shared code raises come from `shared/errors.ts`. */
import { EmbedError, type ErrorKind } from "../shared/errors.js";

export { ConfigError, EmbedError, JobLimitError, ValidationError, type ErrorKind } from "../shared/errors.js";

export class ChunkTooLongError extends EmbedError {
  readonly kind = "too_long";
  readonly retryable = false;
  constructor(
    readonly chunkIndex: number,
    readonly tokens: number,
    readonly maxTokens: number,
  ) {
    super(
      `chunk ${chunkIndex} has ${tokens} tokens, more than MAX_SEQ_LENGTH=${maxTokens}; split it smaller in the producer or set TRUNCATE=true`,
    );
  }
}

export class InferenceError extends EmbedError {
  readonly kind = "inference";
  readonly retryable = true;
}

export class OutOfMemoryError extends EmbedError {
  readonly kind = "oom";
  readonly retryable = true;
}

export class SinkError extends EmbedError {
  readonly kind = "sink";
  readonly retryable: boolean;
  /** The answer may concern this request's points (4xx other than 408/429, or 500), so a
   *  request without some of them may succeed. Connection errors, timeouts, 408, 429 and
   *  502-504 concern the server or the network: a smaller request fails the same way. */
  readonly contentSuspect: boolean;
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    // 4xx other than 408/429 means Qdrant rejected the request's content: retrying resends the same bytes.
    this.retryable = status === undefined || status >= 500 || status === 408 || status === 429;
    this.contentSuspect =
      status !== undefined && (status === 500 || (status >= 400 && status < 500 && status !== 408 && status !== 429));
  }
}

export class TimeoutError extends EmbedError {
  readonly kind = "timeout";
  readonly retryable = true;
}

/** A job still running when the drain deadline passed; the consumer returns it to the queue. */
export class ShutdownError extends EmbedError {
  readonly kind = "shutdown";
  readonly retryable = true;
}

export class ModelLoadError extends EmbedError {
  readonly kind = "model";
  readonly retryable = false;
}

export class ExecutionProviderError extends ModelLoadError {}

export class CollectionSchemaError extends EmbedError {
  readonly kind = "schema";
  readonly retryable = false;
}

/** An exception nobody expected, caught by the last-resort guard around one job's processing
 *  (issue 13): the job fails with this reason and the process keeps running. Retryable, since
 *  the cause is unknown; JOB_ATTEMPTS bounds the retries. */
/** A packed job retried because some of its documents failed transiently: keeps the first such
 *  failure's kind (its cause) and says how many documents it hit. */
export class PackRetryError extends EmbedError {
  readonly retryable = true;
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class InternalError extends EmbedError {
  readonly kind = "internal";
  readonly retryable = true;
}

/** `err` as an EmbedError: unexpected values become InternalError naming `where`. */
export function asEmbedError(err: unknown, where: string): EmbedError {
  if (err instanceof EmbedError) return err;
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new InternalError(`unexpected error while ${where}: ${message}`, { cause: err });
}

/** Maps any thrown value to a kind; unknown errors count as inference-side and retryable. */
export function errorKind(err: unknown): ErrorKind {
  return err instanceof EmbedError ? err.kind : "inference";
}

export function isRetryable(err: unknown): boolean {
  return err instanceof EmbedError ? err.retryable : true;
}

/** ORT reports allocation failures only as message text. */
export function looksLikeOutOfMemory(message: string): boolean {
  return /out of memory|failed to allocate|bad_alloc|CUDA failure 2\b|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation/i.test(
    message,
  );
}
