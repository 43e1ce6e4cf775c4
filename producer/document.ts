/**
 * Document model shared by the producer's readers and chunker.
 *
 * Readers turn files into `SourceDocument`s (or `skipped` events explaining
 * why something was dropped); the chunker turns one document into `Chunk`s.
 * The model is deliberately small: a document is an ordered list of segments
 * (paragraphs for prose, speaker turns or subtitle cues for transcripts).
 * Trade-off: richer structure (headings, tables) is flattened into text,
 * which is what an embedding model consumes anyway.
 */

/** Anything that survives a JSON round trip; metadata must be JSON so it can travel through Redis and Qdrant. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** One contiguous piece of a document. Times are in seconds from the start of the recording. */
export interface Segment {
  text: string;
  speaker?: string;
  start?: number;
  end?: number;
}

/**
 * A document as read from a file. `kind` decides how the chunker cuts it:
 * "transcript" keeps segment (turn/cue) boundaries, "text" packs sentences.
 */
export interface SourceDocument {
  id: string;
  kind: "text" | "transcript";
  segments: Segment[];
  metadata: Record<string, JsonValue>;
  /** Where the document came from; `line` is 1-based and set for line-oriented formats (JSONL). */
  source: { file: string; line?: number };
}

/**
 * One unit of embedding work. `tokens` is the model-side length: content
 * tokens plus the two special tokens (`<s>`, `</s>`) the tokenizer adds.
 * Transcript chunks carry `speakers` (string[]), `start` and `end` (seconds)
 * in metadata when known; every chunk carries `chars`.
 */
export interface Chunk {
  index: number;
  text: string;
  tokens: number;
  metadata: Record<string, JsonValue>;
}

/**
 * What a reader yields. A `skipped` event is how every dropped record, cue or
 * file is reported: readers never throw for bad input and never drop silently.
 */
export type ReadEvent =
  | { kind: "document"; doc: SourceDocument; offset?: number }
  | { kind: "skipped"; file: string; line?: number; reason: string; offset?: number };

/** Sets `offset`: the byte just past the event's record, where a resumed read starts (line-oriented formats). */
export function atOffset<E extends ReadEvent>(ev: E, offset: number): E {
  ev.offset = offset;
  return ev;
}

/** Builds a `skipped` event; omits `line` when unknown so events stay JSON-clean. */
export function skippedEvent(file: string, reason: string, line?: number): ReadEvent {
  return line === undefined ? { kind: "skipped", file, reason } : { kind: "skipped", file, line, reason };
}

/** Builds a `document` event. */
export function documentEvent(doc: SourceDocument): ReadEvent {
  return { kind: "document", doc };
}
