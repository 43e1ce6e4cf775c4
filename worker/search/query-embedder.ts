/** Embeds one search query into the vectors Qdrant compares with the stored ones. The local
 *  embedder loads the worker's own model and tokenizer, so a query is tokenized, truncated and
 *  pooled exactly as a stored chunk was; it pays a model load (about a second for BGE-M3 on a
 *  CPU, more on a GPU) per command. The remote one (remote-query-embedder.ts) asks a running
 *  worker instead and loads nothing. */
import type { Config } from "../../shared/config.js";
import { locateModelFiles } from "../adapters/model-files.js";
import { OnnxModel } from "../adapters/onnx-model.js";
import { toQdrantVectors, type QdrantVectors } from "../adapters/qdrant-sink.js";
import { TokenizerPool } from "../adapters/tokenizer-pool.js";

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

type LocalModelConfig = Pick<
  Config,
  "MODEL_DIR" | "MODEL_FILE" | "EXECUTION_PROVIDER" | "CUDA_DEVICE_ID" | "INTRA_OP_THREADS" | "OUTPUTS" | "MODEL_NAME" | "MAX_SEQ_LENGTH" | "MAX_BATCH_TOKENS"
> & Partial<Pick<Config, "MODEL_OUTPUT_NAMES">>;

export class LocalQueryEmbedder implements QueryEmbedder {
  private constructor(private readonly model: OnnxModel, private readonly tokenizer: TokenizerPool) {}

  static async open(cfg: LocalModelConfig): Promise<LocalQueryEmbedder> {
    const files = locateModelFiles(cfg.MODEL_DIR, cfg.MODEL_FILE);
    const model = await OnnxModel.load(cfg, files);
    const tokenizer = new TokenizerPool({ tokenizerPath: files.tokenizerPath, maxLength: model.info.maxSeqLength, eosId: files.eosId, threads: 1 });
    return new LocalQueryEmbedder(model, tokenizer);
  }

  async embed(text: string): Promise<EmbeddedQuery> {
    const [t] = await this.tokenizer.encode([text]);
    const [e] = await this.model.embed({ sequences: [t.ids], paddedLength: t.ids.length });
    return { vectors: toQdrantVectors(e), tokens: t.ids.length, truncated: t.truncated };
  }

  async close(): Promise<void> {
    await this.tokenizer.close();
    await this.model.close();
  }
}
