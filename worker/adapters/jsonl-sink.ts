/** The VectorSink port over a local JSONL file, for runs without Qdrant (the demo, a dry
 *  look at the vectors). Each upsert appends one line per point and syncs the file before it
 *  resolves, keeping the same contract as Qdrant's `wait=true`. Not for production: nothing
 *  deduplicates re-written points (readers should keep the last line per id), and stale points
 *  of a re-ingested document are not deleted (no `deleteStale`, so no removal is attempted or
 *  counted). A reader that needs the
 *  current state keeps, per `doc_id`, the points whose `chunk_index` is below the `doc_chunks`
 *  of the document's highest `doc_version`. */
import { mkdir, open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { SinkError } from "../errors.js";
import type { ModelInfo, VectorPoint, VectorSink } from "../core/ports.js";
import { toQdrantPoint } from "./qdrant-sink.js";

export class JsonlSink implements VectorSink {
  private fh: FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  written = 0;

  constructor(private readonly file: string) {}

  describe(): string {
    return `JSONL file ${this.file}`;
  }

  async init(_info: ModelInfo): Promise<void> {
    try {
      await mkdir(path.dirname(path.resolve(this.file)), { recursive: true });
      this.fh = await open(this.file, "a");
    } catch (err) {
      throw new SinkError(`cannot open SINK_FILE ${this.file}: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  upsert(points: VectorPoint[]): Promise<void> {
    const lines = points.map((p) => JSON.stringify(toQdrantPoint(p))).join("\n") + "\n";
    // Appends are serialised so lines of concurrent upserts never interleave.
    const next = this.chain.then(async () => {
      if (!this.fh) throw new SinkError("JSONL sink used before init()", undefined);
      await this.fh.write(lines);
      await this.fh.datasync();
      this.written += points.length;
    });
    this.chain = next.catch(() => undefined);
    return next.catch((err) => {
      throw err instanceof SinkError
        ? err
        : new SinkError(`writing ${this.file} failed: ${(err as Error).message}`, undefined, { cause: err });
    });
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
  }
}
