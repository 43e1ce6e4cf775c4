/** The base of the producer's expected failures, one subclass per failure mode (as
 *  worker/search/search-errors.ts and shared/errors.ts do for theirs). Each carries a `kind`,
 *  written like shared/errors.ts's kinds: the label a log line or a reason prefixes the message
 *  with (`kind: message`, as queue-consumer.ts writes a failed job's reason). Messages are one line
 *  a person can act on; the producer CLI prints an expected failure's message alone and exits 1,
 *  and anything that is not a ProducerError is a bug and keeps its stack. */

export type ProducerErrorKind =
  | "input" // a file cannot be read or is not what its format requires (readers: becomes a counted skip)
  | "options" // chunker options or backfill flags that cannot work together
  | "token_count" // the token counter returned something that is not a count
  | "model" // the model folder's tokenizer cannot be read
  | "strict" // a bad record stopped a run in strict mode
  | "checkpoint"; // a backfill checkpoint cannot be read, parsed or resumed

export abstract class ProducerError extends Error {
  abstract readonly kind: ProducerErrorKind;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
