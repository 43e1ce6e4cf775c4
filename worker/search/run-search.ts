/** The search command as one library call: reads the collection's vectors first (so a missing
 *  collection or vector fails before the model loads), plans the query, embeds it with the
 *  local model or a running worker's /embed/batch, queries Qdrant and prints the hits on stdout
 *  (text, or JSON). Expected failures are thrown as SearchError or EmbedError for the caller to
 *  print; a query cut to MAX_SEQ_LENGTH is a warning on stderr. */
import type { Config } from "../../shared/config.js";
import { QdrantSearch } from "./qdrant-search.js";
import { LocalQueryEmbedder, type EmbeddedQuery, type QueryEmbedder } from "./query-embedder.js";
import { RemoteQueryEmbedder } from "./remote-query-embedder.js";
import { SearchUsageError } from "./search-errors.js";
import { formatHitsJson, formatHitsText, toHits } from "./search-output.js";
import { checkQueryVectors, planSearch, requireOutputs } from "./search-plan.js";
import type { Reranker, SearchMode, SearchPlan } from "./search-plan.js";
import { buildQueryRequest } from "./search-query.js";

export interface SearchOptions {
  mode?: SearchMode;
  rerank?: Reranker;
  limit: number;
  prefetchLimit?: number;
  collection?: string;
  embedUrl?: string;
  embedTimeoutMs: number;
  filterDoc?: string;
  json?: boolean;
  width: number;
}

async function openEmbedder(cfg: Config, plan: SearchPlan, o: SearchOptions): Promise<QueryEmbedder> {
  if (o.embedUrl) {
    const apiKey = process.env.QUERY_API_KEY || undefined;
    return new RemoteQueryEmbedder({ url: o.embedUrl, apiKey, timeoutMs: o.embedTimeoutMs, needs: plan.needs });
  }
  requireOutputs(plan, cfg.OUTPUTS);
  return LocalQueryEmbedder.open(cfg);
}

async function embedQuery(cfg: Config, plan: SearchPlan, o: SearchOptions, text: string): Promise<EmbeddedQuery> {
  const embedder = await openEmbedder(cfg, plan, o);
  try {
    return await embedder.embed(text);
  } finally {
    await embedder.close();
  }
}

export async function runSearch(cfg: Config, query: string, o: SearchOptions): Promise<void> {
  const text = query.trim();
  if (text === "") {
    throw new SearchUsageError(`the query is empty; pass the text to search for: npm run search -- "budget debate"`);
  }
  if (!cfg.QDRANT_URL) {
    throw new SearchUsageError("QDRANT_URL is not set; search reads the Qdrant collection the worker writes");
  }
  const qdrant = new QdrantSearch({ ...cfg, QDRANT_URL: cfg.QDRANT_URL });
  const vectors = await qdrant.vectors(o.collection ?? cfg.COLLECTION);
  const plan = planSearch(
    { mode: o.mode, rerank: o.rerank, limit: o.limit, prefetchLimit: o.prefetchLimit, docId: o.filterDoc },
    vectors,
  );
  const embedded = await embedQuery(cfg, plan, o, text);
  if (embedded.truncated) {
    const tokens = embedded.tokens ? `, ${embedded.tokens} tokens` : "";
    process.stderr.write(
      `search: warning: the query was cut to the model's longest sequence (MAX_SEQ_LENGTH)${tokens}\n`,
    );
  }
  checkQueryVectors(plan, vectors, embedded.vectors);
  const hits = toHits(await qdrant.query(plan.collection, buildQueryRequest(plan, embedded.vectors)));
  process.stdout.write(o.json ? formatHitsJson(plan, text, hits) : formatHitsText(plan, hits, o.width));
}
