/** Child process for tokenizer throughput per thread, on the benchmark's chunk texts with the
 *  model's tokenizer.json: @huggingface/tokenizers (pure JS, what the worker's tokenizer
 *  threads run) with `encode` in a loop on this thread, and the native `tokenizers` package
 *  with `encodeBatch` in slices of 256, its Rust parallelism off (TOKENIZERS_PARALLELISM=false,
 *  set by the parent), so one thread encodes while this one waits. Both add <s> and </s>;
 *  truncation and padding are off for the native one (the worker does neither). Also reports how many
 *  texts get identical ids from both. */
import { readFileSync } from "node:fs";
import { Tokenizer as JsTokenizer } from "@huggingface/tokenizers";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { childPort, type Message } from "../lib/child-process.js";

interface RunRequest extends Message {
  type: "run";
  tokenizerPath: string;
  texts: string[];
}

const SLICE = 256;
const WARMUP = 200;
const port = childPort();
port.send({ type: "ready" });

port.on(async (m) => {
  if (m.type !== "run") return;
  const { tokenizerPath, texts } = m as RunRequest;
  const json = readFileSync(tokenizerPath, "utf8");

  const js = new JsTokenizer(JSON.parse(json), {});
  for (const t of texts.slice(0, WARMUP)) js.encode(t);
  const jsIds: number[][] = [];
  let t0 = performance.now();
  for (const t of texts) jsIds.push(js.encode(t).ids as number[]);
  const jsSeconds = (performance.now() - t0) / 1000;

  const native = NativeTokenizer.fromString(json);
  // The reference file configures truncation (128) and batch padding; the worker does neither.
  native.disableTruncation();
  native.disablePadding();
  await native.encodeBatch(texts.slice(0, WARMUP));
  const nativeIds: number[][] = [];
  t0 = performance.now();
  for (let i = 0; i < texts.length; i += SLICE) {
    for (const e of await native.encodeBatch(texts.slice(i, i + SLICE))) nativeIds.push(e.getIds());
  }
  const nativeSeconds = (performance.now() - t0) / 1000;

  let agree = 0;
  let jsTokens = 0;
  let nativeTokens = 0;
  for (let i = 0; i < texts.length; i++) {
    const a = jsIds[i];
    const b = nativeIds[i];
    jsTokens += a.length;
    nativeTokens += b.length;
    if (a.length === b.length && a.every((x, k) => x === b[k])) agree++;
  }
  port.send({
    type: "result",
    texts: texts.length,
    jsTokens,
    jsSeconds,
    nativeTokens,
    nativeSeconds,
    identical: agree,
  });
  process.exit(0);
});
