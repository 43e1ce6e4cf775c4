/** Which tokenizer library encodes chunks: the native `tokenizers` package (Hugging Face's Rust
 *  tokenizers over N-API, the reference implementation) or `@huggingface/tokenizers` (pure JS).
 *  Trades a native binary for speed: the native one does 4-5x the tokens per CPU-second (issue 15,
 *  `npm run bench:tokenizer`) and uses less memory per thread; the JS one loads everywhere.
 *  TOKENIZER_BACKEND=auto takes the native one where its binary loads, else the JS one, and says
 *  why; `native` that cannot load fails at start-up naming the setting. Both return the ids and
 *  token strings of `<s> text </s>` with no truncation or padding: the caller truncates. */
import { ConfigError } from "../errors.js";

export type TokenizerBackend = "native" | "js";
export type TokenizerBackendSetting = TokenizerBackend | "auto";

export interface ResolvedBackend {
  backend: TokenizerBackend;
  /** Why this backend: the setting, or why auto fell back to the JS one. */
  reason: string;
}

/** What the tokenizer threads call: one batch of texts, with the token strings when asked. */
export interface BatchEncoder {
  encodeBatch(texts: string[], wantTokens: boolean): Promise<{ ids: number[][]; tokens?: string[][] }>;
}

type NativeModule = typeof import("tokenizers");

/** Loads the native package's binding; rejects with the loader's message when it cannot. */
async function importNative(): Promise<NativeModule> {
  const mod = (await import("tokenizers")) as NativeModule & { default?: NativeModule };
  const lib = typeof mod.Tokenizer?.fromString === "function" ? mod : mod.default;
  if (!lib || typeof lib.Tokenizer?.fromString !== "function") {
    throw new Error("the tokenizers package has no Tokenizer.fromString");
  }
  return lib;
}

/** Settles TOKENIZER_BACKEND once, in the main thread, before any tokenizer thread starts.
 *  `load` is the native package's loader (tests pass one that fails). */
export async function resolveTokenizerBackend(
  setting: TokenizerBackendSetting,
  load: () => Promise<unknown> = importNative,
): Promise<ResolvedBackend> {
  if (setting === "js") return { backend: "js", reason: "TOKENIZER_BACKEND=js" };
  try {
    await load();
    return { backend: "native", reason: `TOKENIZER_BACKEND=${setting}` };
  } catch (err) {
    const why = (err as Error).message.split("\n")[0];
    if (setting === "native") {
      throw new ConfigError([
        `TOKENIZER_BACKEND: native, but the native tokenizers package cannot load (${why}); install the ` +
          "optional dependency `tokenizers` for this platform, or set TOKENIZER_BACKEND=auto or js",
      ]);
    }
    return { backend: "js", reason: `TOKENIZER_BACKEND=auto: the native tokenizers package cannot load (${why})` };
  }
}

/** The tokenizer in `json` (tokenizer.json's text) under `backend`. */
export async function loadBatchEncoder(backend: TokenizerBackend, json: string): Promise<BatchEncoder> {
  if (backend === "native") {
    const { Tokenizer } = await importNative();
    const tok = Tokenizer.fromString(json);
    // tokenizer.json files often carry truncation (XLM-R's says 128) and padding; the worker truncates
    // itself, keeping </s> and the full length, and the batcher pads.
    tok.disableTruncation();
    tok.disablePadding();
    return {
      async encodeBatch(texts, wantTokens) {
        const encs = await tok.encodeBatch(texts);
        return {
          ids: encs.map((e) => e.getIds()),
          ...(wantTokens ? { tokens: encs.map((e) => e.getTokens()) } : {}),
        };
      },
    };
  }
  const { Tokenizer } = await import("@huggingface/tokenizers");
  const tok = new Tokenizer(JSON.parse(json), {});
  return {
    async encodeBatch(texts, wantTokens) {
      const ids: number[][] = [];
      const tokens: string[][] = [];
      for (const t of texts) {
        const e = tok.encode(t);
        ids.push(e.ids as number[]);
        if (wantTokens) tokens.push(e.tokens);
      }
      return wantTokens ? { ids, tokens } : { ids };
    },
  };
}
