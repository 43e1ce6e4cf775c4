/*
 * Generates an XLM-RoBERTa-shaped Unigram `tokenizer.json` for tests.
 *
 * The layout mirrors the real BGE-M3 / XLM-R tokenizer (special ids 0-3,
 * <mask> last, Metaspace pre-tokenization, `<s> $A </s>` template) so code
 * written against the real file runs unchanged on this one. Trade-offs: NFKC
 * stands in for XLM-R's Precompiled normalizer, and the vocabulary is a few
 * thousand corpus-derived pieces instead of 250k trained ones.
 */
import { EXTRA_LATIN_CHARS, TOKENIZER_CORPUS } from "./corpus.js";
import { METASPACE, buildUnigramVocab, type ScoredPiece } from "./vocab-builder.js";

export const DEFAULT_TOKENIZER_VOCAB_SIZE = 8000;

/** Special tokens and their fixed ids, as in XLM-R (mask is appended last). */
export const SPECIAL_TOKENS = {
  bos: { content: "<s>", id: 0 },
  pad: { content: "<pad>", id: 1 },
  eos: { content: "</s>", id: 2 },
  unk: { content: "<unk>", id: 3 },
} as const;
export const MASK_TOKEN = "<mask>";

export interface TokenizerGenOptions {
  /** Upper bound on the vocabulary size, specials included. */
  vocabSize?: number;
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

function addedToken(id: number, content: string, lstrip = false): AddedTokenJson {
  return { id, content, single_word: false, lstrip, rstrip: false, normalized: false, special: true };
}

function templateProcessor(): object {
  const special = (id: string) => ({ SpecialToken: { id, type_id: 0 } });
  const seq = (id: "A" | "B") => ({ Sequence: { id, type_id: 0 } });
  return {
    type: "TemplateProcessing",
    single: [special("<s>"), seq("A"), special("</s>")],
    pair: [special("<s>"), seq("A"), special("</s>"), special("</s>"), seq("B"), special("</s>")],
    special_tokens: {
      "<s>": { id: "<s>", ids: [SPECIAL_TOKENS.bos.id], tokens: ["<s>"] },
      "</s>": { id: "</s>", ids: [SPECIAL_TOKENS.eos.id], tokens: ["</s>"] },
    },
  };
}

function metaspace(): object {
  return { type: "Metaspace", replacement: METASPACE, prepend_scheme: "always", split: true };
}

/**
 * Returns the tokenizer.json object. Fully deterministic: the same options
 * always produce a structurally identical object (and identical JSON text).
 */
export function generateTokenizerJson(opts: TokenizerGenOptions = {}): object {
  const vocabSize = opts.vocabSize ?? DEFAULT_TOKENIZER_VOCAB_SIZE;
  const specials = Object.values(SPECIAL_TOKENS);
  // Room for the four leading specials and the trailing <mask>.
  const maxPieces = Math.max(0, vocabSize - specials.length - 1);
  const pieces = buildUnigramVocab(TOKENIZER_CORPUS, EXTRA_LATIN_CHARS, maxPieces);
  const vocab: ScoredPiece[] = [...specials.map((s): ScoredPiece => [s.content, 0]), ...pieces, [MASK_TOKEN, 0]];
  const maskId = vocab.length - 1;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      ...specials.map((s) => addedToken(s.id, s.content)),
      // XLM-R strips the space before <mask> so "a <mask>" behaves like "a<mask>".
      addedToken(maskId, MASK_TOKEN, true),
    ],
    normalizer: { type: "NFKC" },
    pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, metaspace()] },
    post_processor: templateProcessor(),
    decoder: metaspace(),
    model: { type: "Unigram", unk_id: SPECIAL_TOKENS.unk.id, vocab, byte_fallback: false },
  };
}
