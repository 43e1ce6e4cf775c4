/** Embeds one search query into the vectors Qdrant compares with the stored ones. The local
 *  embedder loads the worker's own model and tokenizer, so a query is tokenized, truncated and
 *  pooled exactly as a stored chunk was; it pays a model load (about a second for BGE-M3 on a
 *  CPU, more on a GPU) per command. The remote one (remote-query-embedder.ts) asks a running
 *  worker instead and loads nothing. */
import type { Config } from "../../shared/config.js";
import { locateModelFiles } from "../adapters/model-files.js";
import { OnnxModel, type ModelConfig } from "../adapters/onnx-model.js";
import { toQdrantVectors, type QdrantVectors } from "../adapters/qdrant-schema.js";
import { resolveTokenizerBackend } from "../adapters/tokenizer-backend.js";
import { TokenizerPool } from "../adapters/tokenizer-pool.js";
import type { ChunkEmbedding } from "../core/heads.js";
import type { ModelInfo, TokenizedChunk } from "../core/ports.js";

export interface EmbeddedQuery {
  vectors: QdrantVectors;
  /** Tokens fed to the model, including <s> and </s>; undefined when the service does not say. */
  tokens?: number;
  /** The query was longer than the model's maximum and was cut. */
  truncated: boolean;
}

export interface QueryEmbedder {
  embed(text: string): Promise<EmbeddedQuery>;
  close(): Promise<void>;
}

type LocalModelConfig = ModelConfig & Pick<Config, "MODEL_DIR" | "MODEL_FILE" | "TOKENIZER_BACKEND">;

export class LocalQueryEmbedder implements QueryEmbedder {
  private constructor(
    private readonly model: OnnxModel,
    private readonly tokenizer: TokenizerPool,
    /** The ONNX file model discovery chose. */
    readonly modelPath: string,
  ) {}

  get info(): ModelInfo {
    return this.model.info;
  }

  static async open(cfg: LocalModelConfig): Promise<LocalQueryEmbedder> {
    const files = locateModelFiles(cfg.MODEL_DIR, cfg.MODEL_FILE);
    const { backend } = await resolveTokenizerBackend(cfg.TOKENIZER_BACKEND);
    const model = await OnnxModel.load(cfg, files);
    const tokenizer = new TokenizerPool({
      backend,
      tokenizerPath: files.tokenizerPath,
      maxLength: model.info.maxSeqLength,
      eosId: files.eosId,
      threads: 1,
    });
    return new LocalQueryEmbedder(model, tokenizer, files.modelPath);
  }

  async embed(text: string): Promise<EmbeddedQuery> {
    const [{ embedding, chunk }] = await this.embedTokenized([text], false);
    return { vectors: toQdrantVectors(embedding), tokens: chunk.ids.length, truncated: chunk.truncated };
  }

  /** The worker's own vectors for `texts`, run as one batch padded to the longest, and the
   *  tokens they came from (with their token strings when `pieces`): verify-model keys lexical
   *  weights by token and compares a batch with its texts one at a time. */
  async embedTokenized(
    texts: string[],
    pieces = true,
  ): Promise<Array<{ embedding: ChunkEmbedding; chunk: TokenizedChunk }>> {
    const chunks = await this.tokenizer.encode(texts, { tokens: pieces });
    const paddedLength = Math.max(...chunks.map((c) => c.ids.length));
    const embeddings = await this.model.embed({ sequences: chunks.map((c) => c.ids), paddedLength });
    return chunks.map((chunk, i) => ({ embedding: embeddings[i], chunk }));
  }

  async close(): Promise<void> {
    await this.tokenizer.close();
    await this.model.close();
  }
}
