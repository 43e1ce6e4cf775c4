/** Does a CPU worker lose throughput at issue 15's smaller cpu defaults? The worker's own model thread
 *  (OnnxModel, the bench's generated model: 6 layers, 384 hidden, 6 heads) runs the same real chunks
 *  (the reference transcripts tokenized by the worker's tokenizer threads, cut to 128 and 512 tokens) in
 *  the most rows per batch each configuration allows (`rowsAt`, the planner's own limit): the cpu
 *  defaults against the former defaults (MAX_SEQ_LENGTH 8192, MAX_BATCH_TOKENS 16384, MAX_BATCH_ATTENTION
 *  67108864). Rounds alternate the two so outside load hits both alike; tokens per second and per
 *  CPU-second of this process (the model thread's work) are reported per round and as medians. Usage:
 *  `node dist/bench/memory/cpu-batch-size.js [--rounds N] [--chunks N]`. */
import os from "node:os";
import path from "node:path";
import { parseConfig, type Config } from "../../shared/config.js";
import { rowsAt } from "../../worker/core/activation-memory.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import { TokenizerPool } from "../../worker/adapters/tokenizer-pool.js";
import { ensureBenchModel } from "../lib/bench-model.js";
import { readCorpus } from "../lib/corpus.js";
import { machineInfo } from "../lib/machine.js";
import { referenceRoot } from "../lib/paths.js";

const option = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const rounds = option("--rounds", 3);
const chunks = option("--chunks", 64);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const configs: Array<[string, Config]> = [
  ["cpu defaults", parseConfig({})],
  [
    "former defaults",
    parseConfig({ MAX_SEQ_LENGTH: "8192", MAX_BATCH_TOKENS: "16384", MAX_BATCH_ATTENTION: String(8192 * 8192) }),
  ],
];

const model = await ensureBenchModel(
  { layers: 6, hidden: 384, heads: 6, intermediate: 1536, tokenizer: "auto", generatedVocab: 8000 },
  false,
);
const files = locateModelFiles(model.files.dir);
const { docs } = await readCorpus({
  folder: path.join(referenceRoot, "data", "transcripts"),
  kind: "reference",
  label: "reference transcripts",
});
const pool = new TokenizerPool({
  tokenizerPath: files.tokenizerPath,
  maxLength: 8192,
  eosId: files.eosId,
  backend: "js",
  threads: 1,
});
const texts = docs.map((d) => d.segments.map((s) => s.text).join(" "));
const encoded = (await pool.encode(texts)).filter((c) => c.ids.length >= 512);
await pool.close();
const onnx = await OnnxModel.load(configs[0][1], files);
const m = machineInfo();
console.log(
  `machine: ${m.cpus} x ${m.cpuModel}, Node ${m.node}, load average ${m.loadAverage.start.toFixed(2)} (shared: other work moves every figure)`,
);
console.log(
  `model: ${model.description.layers} layers x ${model.description.hidden} hidden; ${rounds} rounds, ${chunks} chunks per length`,
);
for (const length of [128, 512]) {
  // The first `length` tokens of the documents, </s> kept: real ids, one length.
  const rows = encoded.slice(0, chunks).map((c) => Int32Array.from([...c.ids.subarray(0, length - 1), files.eosId]));
  const per: Record<string, { tps: number[]; tpcs: number[]; rows: number }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, cfg] of configs) {
      const n = rowsAt(length, {
        maxBatchTokens: cfg.MAX_BATCH_TOKENS,
        maxBatchSize: cfg.MAX_BATCH_SIZE,
        padMultiple: cfg.PAD_MULTIPLE,
        maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
      });
      if (r === 0) await onnx.embed({ sequences: rows.slice(0, n), paddedLength: length }); // warm-up
      const c0 = cpu();
      const t0 = performance.now();
      for (let i = 0; i < rows.length; i += n)
        await onnx.embed({ sequences: rows.slice(i, i + n), paddedLength: length });
      const seconds = (performance.now() - t0) / 1000;
      const tokens = rows.length * length;
      per[name] ??= { tps: [], tpcs: [], rows: n };
      per[name].tps.push(tokens / seconds);
      per[name].tpcs.push(tokens / (cpu() - c0));
    }
  }
  for (const [name, p] of Object.entries(per)) {
    console.log(
      `${length}-token chunks, ${name}: ${p.rows} rows per batch; tokens/s ${p.tps.map(Math.round).join(", ")} ` +
        `(median ${Math.round(median(p.tps))}); tokens per CPU-second median ${Math.round(median(p.tpcs))}`,
    );
  }
}
console.log(`load average at the end ${os.loadavg()[0].toFixed(2)}`);
await onnx.close();
