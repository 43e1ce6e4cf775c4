/** Counts content tokens (no <s>/</s>) with the model's own tokenizer.json, so chunk sizes
 *  chosen by the producer are the sizes the worker will see. */
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import { ProducerError } from "./producer-errors.js";

/** The model folder's tokenizer.json is missing or not JSON: the producer cannot size chunks. */
export class TokenizerFileError extends ProducerError {
  readonly kind = "model";
}

export function loadTokenCounter(tokenizerPath: string): (text: string) => number {
  let json: object;
  try {
    json = JSON.parse(readFileSync(tokenizerPath, "utf8"));
  } catch (err) {
    throw new TokenizerFileError(
      `cannot read tokenizer ${tokenizerPath}: ${(err as Error).message}; ` +
        `set MODEL_DIR to the model folder (it holds tokenizer.json)`,
      { cause: err },
    );
  }
  const tok = new Tokenizer(json, {});
  return (text: string) => tok.encode(text, { add_special_tokens: false }).ids.length;
}
