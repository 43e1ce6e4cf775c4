/** `npm run search -- "<query>" [options]`: embeds a query with the worker's model (loaded
 *  here, or a running worker's /embed/batch with --embed-url) and prints the best chunks of
 *  the Qdrant collection the worker writes. The collection is read first, so a missing
 *  collection or vector fails before the model loads. Settings come from the worker's
 *  environment (QDRANT_URL, QDRANT_API_KEY, COLLECTION, MODEL_DIR, OUTPUTS, ...). Expected
 *  failures print one line to stderr and exit non-zero (2: fix the command or a setting). This
 *  file only parses the command line and reports failures; the search is search/run-search.ts. */
import { Command, Option } from "commander";
import { loadConfigOrExit, type Config } from "../shared/config.js";
import { intInRange } from "../shared/cli-options.js";
import { EmbedError } from "./errors.js";
import { runSearch, type SearchOptions } from "./search/run-search.js";
import { SearchError } from "./search/search-errors.js";
import { RERANKERS, SEARCH_MODES } from "./search/search-plan.js";

function buildSearchCli(cfg: () => Config): Command {
  return new Command("search")
    .description("embed a query with the worker's model and print the best matching chunks from Qdrant")
    .argument("<query...>", "the text to search for (several words are joined with spaces)")
    .addOption(
      new Option(
        "--mode <mode>",
        "dense | sparse | hybrid (default: hybrid when the collection has a sparse vector, else dense)",
      ).choices(SEARCH_MODES),
    )
    .addOption(
      new Option("--rerank <model>", "rerank the retrieved candidates with the ColBERT multivector").choices(RERANKERS),
    )
    .option("--limit <n>", "hits to print", intInRange(1), 10)
    .option(
      "--prefetch-limit <n>",
      "candidates each retrieval stage hands to fusion or rerank (default: 4 x limit)",
      intInRange(1),
    )
    .option("--collection <name>", "Qdrant collection (default: COLLECTION)")
    .option("--filter-doc <id>", "only chunks of this document (payload doc_id)")
    .option(
      "--embed-url <url>",
      "embed with a running worker's POST /embed/batch (base URL) instead of loading the model; sends QUERY_API_KEY as a bearer token when set",
    )
    .option("--embed-timeout-ms <ms>", "how long to wait for --embed-url, milliseconds", intInRange(1), 30_000)
    .option("--json", "print the hits as one JSON document (full text and metadata)")
    .option("--width <n>", "cut each hit's text to this many characters (0 = whole text)", intInRange(0), 100)
    .action(async (words: string[], o: SearchOptions) => {
      await runSearch(cfg(), words.join(" "), o);
    });
}

/** Expected failures are one line on stderr; anything else is a bug and keeps its stack. */
function reportExpected(err: unknown): void {
  if (!(err instanceof SearchError || err instanceof EmbedError)) throw err;
  process.stderr.write(`search: ${err.message}\n`);
  process.exitCode = err instanceof SearchError ? err.exitCode : 1;
}

await buildSearchCli(() => loadConfigOrExit())
  .parseAsync()
  .catch(reportExpected);
