/**
 * Error type and constructors that reproduce real Qdrant's error classes:
 * JSON shape problems ("Format error in JSON body", 400), validator failures
 * ("Validation error in JSON body", 422), storage errors ("Wrong input" 400,
 * "Not found" 404, already-exists 409) and auth failures (plain-text 401).
 *
 * Trade-off: messages copy Qdrant's wording for the part tests rely on, but
 * serde's "at line X column Y" suffix is replaced by the JSON path of the
 * offending field, which is more useful in a test failure and not computable
 * cheaply after JSON.parse.
 */

export class QdrantHttpError extends Error {
  readonly status: number;
  /** Qdrant answers auth failures with a plain-text body, not the JSON envelope. */
  readonly plainText: boolean;

  constructor(status: number, message: string, plainText = false) {
    super(message);
    this.name = "QdrantHttpError";
    this.status = status;
    this.plainText = plainText;
  }
}

/** Body could not be deserialized into the request type (serde error). */
export function formatError(detail: string, path?: string): QdrantHttpError {
  const where = path ? ` (at ${path})` : "";
  return new QdrantHttpError(400, `Format error in JSON body: ${detail}${where}`);
}

/** Body deserialized but failed `validator` checks: Qdrant uses 422 here. */
export function validationError(issues: Array<{ path: string; message: string }>): QdrantHttpError {
  const list = issues.map((i) => `${i.path}: ${i.message}`).join("; ");
  return new QdrantHttpError(422, `Validation error in JSON body: [${list}]`);
}

/** StorageError::BadInput → 400 "Wrong input: ...". */
export function wrongInput(description: string): QdrantHttpError {
  return new QdrantHttpError(400, `Wrong input: ${description}`);
}

/** StorageError::AlreadyExists → 409 with the "Wrong input" prefix (Qdrant ≥ 1.15). */
export function alreadyExists(description: string): QdrantHttpError {
  return new QdrantHttpError(409, `Wrong input: ${description}`);
}

export function collectionNotFound(name: string): QdrantHttpError {
  return new QdrantHttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
}

/** A feature real Qdrant has but this server deliberately does not implement. */
export function notSupported(feature: string): QdrantHttpError {
  return new QdrantHttpError(400, `Bad request: ${feature} is not supported by the test server`);
}

export function unauthorized(message: string): QdrantHttpError {
  return new QdrantHttpError(401, message, true);
}

/** Message of serde's untagged-enum failure, used where Qdrant has such enums. */
export function noVariant(enumName: string, path?: string): QdrantHttpError {
  return formatError(`data did not match any variant of untagged enum ${enumName}`, path);
}

/** Standard Qdrant envelope for an error answer. */
export function errorEnvelope(message: string, seconds: number): string {
  return JSON.stringify({ status: { error: message }, time: seconds });
}
