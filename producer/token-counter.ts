/** Counts content tokens (no <s>/</s>) with the model's own tokenizer.json, so chunk sizes
 *  chosen by the producer are the sizes the worker will see. */
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

export function loadTokenCounter(tokenizerPath: string): (text: string) => number {
  let json: object;
  try {
    json = JSON.parse(readFileSync(tokenizerPath, "utf8"));
  } catch (err) {
    throw new Error(`cannot read tokenizer ${tokenizerPath}: ${(err as Error).message}; set MODEL_DIR to the model folder (it holds tokenizer.json)`);
  }
  const tok = new Tokenizer(json, {});
  return (text: string) => tok.encode(text, { add_special_tokens: false }).ids.length;
}
