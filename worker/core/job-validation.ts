/** Checks a job before any work: a bad job fails at once with a ValidationError naming the
 *  document, the chunk and the limit, and costs no tokenizer or model time. Performs no I/O. */
import type { Config } from "../../shared/config.js";
import { ValidationError } from "../errors.js";
import type { JobChunk } from "../../shared/job.js";

export function validateJob(
  job: { docId: string; chunks: JobChunk[] },
  cfg: Pick<Config, "MAX_CHUNKS_PER_JOB" | "MAX_CHUNK_CHARS">,
): void {
  const { docId, chunks } = job;
  if (chunks.length > cfg.MAX_CHUNKS_PER_JOB) {
    throw new ValidationError(
      `job for document "${docId}" has ${chunks.length} chunks, ` +
        `more than MAX_CHUNKS_PER_JOB=${cfg.MAX_CHUNKS_PER_JOB}; ` +
        "enqueue long documents as several jobs (the producer does)",
    );
  }
  const seen = new Set<number>();
  for (const c of chunks) {
    if (seen.has(c.index)) throw new ValidationError(`chunk index ${c.index} appears twice in document "${docId}"`);
    seen.add(c.index);
    if (c.text.trim().length === 0) throw new ValidationError(`chunk ${c.index} of document "${docId}" has empty text`);
    if (c.text.length > cfg.MAX_CHUNK_CHARS) {
      throw new ValidationError(
        `chunk ${c.index} of document "${docId}" has ${c.text.length} characters, ` +
          `more than MAX_CHUNK_CHARS=${cfg.MAX_CHUNK_CHARS}`,
      );
    }
  }
}
