/**
 * Refuses a second document with an id already enqueued in the same run (issue 13): `bad.srt` and
 * `bad.txt` both get the id "bad", and the later one's points would silently overwrite the earlier's.
 * The later document is skipped with a reason naming both files and how ids are set; callers can opt
 * out (`--allow-duplicate-ids`) to keep the old overwrite behaviour.
 *
 * Trade-off: remembering ids costs memory per document (a 96-bit digest and a file index, about 80
 * bytes), not per byte of text; an archive of tens of millions of documents may prefer to opt out.
 * Only one run (one process) is covered: a resumed backfill does not remember earlier invocations.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import type { SourceDocument } from "./document.js";

export const ID_HELP =
  "ids of .txt/.md/.srt/.vtt files are the file name without extension (rename one, or run each source " +
  'with its own --id-prefix), a .json transcript takes its "id" field, a JSONL record its "id"; ' +
  "--allow-duplicate-ids lets the later document overwrite the earlier";

export class DuplicateIdGuard {
  /** Digest of an id -> index in `files` of the file its first document came from. */
  private readonly seen = new Map<string, number>();
  private readonly files: string[] = [];

  /** The reason to refuse `doc`, or undefined if its id is new in this run. Does not remember it. */
  check(doc: SourceDocument): string | undefined {
    const first = this.seen.get(digest(doc.id));
    if (first === undefined) return undefined;
    const earlier = this.files[first];
    const where = earlier === doc.source.file ? "an earlier record of the same file" : `a document from ${earlier}`;
    const refused = path.basename(doc.source.file);
    return `duplicate document id: "${doc.id}" is also the id of ${where} (${refused} refused); ${ID_HELP}`;
  }

  /** Remembers `doc`'s id as enqueued. */
  remember(doc: SourceDocument): void {
    const file = doc.source.file;
    if (this.files[this.files.length - 1] !== file) this.files.push(file);
    this.seen.set(digest(doc.id), this.files.length - 1);
  }
}

const digest = (id: string): string => createHash("sha256").update(id).digest("base64").slice(0, 16);
