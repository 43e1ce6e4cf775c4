/** `npm run search -- "<query>" [options]`: embeds a query with the worker's model (loaded
 *  here, or a running worker's /embed/batch with --embed-url) and prints the best chunks of
 *  the Qdrant collection the worker writes. The collection is read first, so a missing
 *  collection or vector fails before the model loads. Settings come from the worker's
 *  environment (QDRANT_URL, QDRANT_API_KEY, COLLECTION, MODEL_DIR, OUTPUTS, ...). Expected
 *  failures print one line to stderr and exit non-zero (2: fix the command or a setting). */
import { Command, Option } from "commander";
import { loadConfigOrExit, type Config } from "../shared/config.js";
import { intInRange } from "../shared/cli-options.js";
import { EmbedError } from "./errors.js";
import { QdrantSearch } from "./search/qdrant-search.js";
import { LocalQueryEmbedder, type EmbeddedQuery, type QueryEmbedder } from "./search/query-embedder.js";
import { RemoteQueryEmbedder } from "./search/remote-query-embedder.js";
import { SearchError, SearchUsageError } from "./search/search-errors.js";
import { formatHitsJson, formatHitsText, toHits } from "./search/search-output.js";
import { checkQueryVectors, planSearch, requireOutputs, RERANKERS, SEARCH_MODES, type Reranker, type SearchMode, type SearchPlan } from "./search/search-plan.js";
import { buildQueryRequest } from "./search/search-query.js";

interface SearchCliOptions {
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

async function openEmbedder(cfg: Config, plan: SearchPlan, o: SearchCliOptions): Promise<QueryEmbedder> {
  if (o.embedUrl) {
    return new RemoteQueryEmbedder({ url: o.embedUrl, apiKey: process.env.QUERY_API_KEY || undefined, timeoutMs: o.embedTimeoutMs, needs: plan.needs });
  }
  requireOutputs(plan, cfg.OUTPUTS);
  return LocalQueryEmbedder.open(cfg);
}

async function embedQuery(cfg: Config, plan: SearchPlan, o: SearchCliOptions, text: string): Promise<EmbeddedQuery> {
  const embedder = await openEmbedder(cfg, plan, o);
  try {
    return await embedder.embed(text);
  } finally {
    await embedder.close();
  }
}

async function search(cfg: Config, query: string, o: SearchCliOptions): Promise<void> {
  const text = query.trim();
  if (text === "") throw new SearchUsageError(`the query is empty; pass the text to search for: npm run search -- "budget debate"`);
  if (!cfg.QDRANT_URL) throw new SearchUsageError("QDRANT_URL is not set; search reads the Qdrant collection the worker writes");
  const qdrant = new QdrantSearch({ ...cfg, QDRANT_URL: cfg.QDRANT_URL });
  const vectors = await qdrant.vectors(o.collection ?? cfg.COLLECTION);
  const plan = planSearch({ mode: o.mode, rerank: o.rerank, limit: o.limit, prefetchLimit: o.prefetchLimit, docId: o.filterDoc }, vectors);
  const embedded = await embedQuery(cfg, plan, o, text);
  if (embedded.truncated) process.stderr.write(`search: warning: the query was cut to the model's longest sequence (MAX_SEQ_LENGTH)${embedded.tokens ? `, ${embedded.tokens} tokens` : ""}\n`);
  checkQueryVectors(plan, vectors, embedded.vectors);
  const hits = toHits(await qdrant.query(plan.collection, buildQueryRequest(plan, embedded.vectors)));
  process.stdout.write(o.json ? formatHitsJson(plan, text, hits) : formatHitsText(plan, hits, o.width));
}

function buildSearchCli(cfg: () => Config): Command {
  return new Command("search")
    .description("embed a query with the worker's model and print the best matching chunks from Qdrant")
    .argument("<query...>", "the text to search for (several words are joined with spaces)")
    .addOption(new Option("--mode <mode>", "dense | sparse | hybrid (default: hybrid when the collection has a sparse vector, else dense)").choices(SEARCH_MODES))
    .addOption(new Option("--rerank <model>", "rerank the retrieved candidates with the ColBERT multivector").choices(RERANKERS))
    .option("--limit <n>", "hits to print", intInRange(1), 10)
    .option("--prefetch-limit <n>", "candidates each retrieval stage hands to fusion or rerank (default: 4 x limit)", intInRange(1))
    .option("--collection <name>", "Qdrant collection (default: COLLECTION)")
    .option("--filter-doc <id>", "only chunks of this document (payload doc_id)")
    .option("--embed-url <url>", "embed with a running worker's POST /embed/batch (base URL) instead of loading the model; sends QUERY_API_KEY as a bearer token when set")
    .option("--embed-timeout-ms <ms>", "how long to wait for --embed-url, milliseconds", intInRange(1), 30_000)
    .option("--json", "print the hits as one JSON document (full text and metadata)")
    .option("--width <n>", "cut each hit's text to this many characters (0 = whole text)", intInRange(0), 100)
    .action(async (words: string[], o: SearchCliOptions) => {
      await search(cfg(), words.join(" "), o);
    });
}

/** Expected failures are one line on stderr; anything else is a bug and keeps its stack. */
function reportExpected(err: unknown): void {
  if (!(err instanceof SearchError || err instanceof EmbedError)) throw err;
  process.stderr.write(`search: ${err.message}\n`);
  process.exitCode = err instanceof SearchError ? err.exitCode : 1;
}

await buildSearchCli(() => loadConfigOrExit()).parseAsync().catch(reportExpected);
