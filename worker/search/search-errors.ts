/** The search command's expected failures, one class per failure mode. Each message is one
 *  line that says what to change; the command prints it alone (no stack trace) and exits
 *  with `exitCode`: 2 for a command line or setting to fix, 1 when Qdrant or the embedding
 *  service refused or could not be reached. Anything else is a bug and keeps its stack. */
import type { OutputKind } from "../../shared/config.js";

export type SearchErrorKind = "usage" | "collection" | "vector" | "output" | "qdrant" | "embed";

export abstract class SearchError extends Error {
  abstract readonly kind: SearchErrorKind;
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The command line or the environment asks for something that cannot work (empty query, no QDRANT_URL). */
export class SearchUsageError extends SearchError {
  readonly kind = "usage";
  override readonly exitCode = 2;
}

export class CollectionNotFoundError extends SearchError {
  readonly kind = "collection";
  constructor(
    readonly collection: string,
    readonly url: string,
  ) {
    super(
      `Qdrant at ${url} has no collection "${collection}"; pass --collection or set COLLECTION to the one the worker writes`,
    );
  }
}

/** The collection lacks the named vector a mode needs, or holds it at another size than the model gives. */
export class VectorMismatchError extends SearchError {
  readonly kind = "vector";
  constructor(
    readonly collection: string,
    readonly vector: string,
    reason: string,
  ) {
    super(`collection "${collection}": ${reason}`);
  }
}

/** The local model is configured without an output the chosen mode needs. */
export class OutputDisabledError extends SearchError {
  readonly kind = "output";
  override readonly exitCode = 2;
  constructor(
    readonly output: OutputKind,
    readonly neededBy: string,
    readonly outputs: readonly OutputKind[],
  ) {
    super(
      `${neededBy} needs the model's ${output} output, but OUTPUTS=${outputs.join(",")} leaves it off; ` +
        `set OUTPUTS=${[...outputs, output].join(",")}`,
    );
  }
}

/** Qdrant answered with an error status (`status` set) or could not be reached (`status` undefined). */
export class QdrantRequestError extends SearchError {
  readonly kind = "qdrant";
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The worker's /embed/batch endpoint (--embed-url) failed or answered in an unexpected shape. */
export class EmbedServiceError extends SearchError {
  readonly kind = "embed";
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
