/** Child process for "model alone", the ceiling: the worker's own ONNX model thread
 *  (OnnxModel, same session options and output heads as the worker) fed pre-tokenized chunks,
 *  batched by the worker's planner (`planBatches`) over the whole set at once under the same
 *  limits, two batches in flight like the worker. Only the model calls are timed. Settings come
 *  from the environment, as for the worker. */
import { planBatches } from "../../worker/core/batcher.js";
import { loadChildModel } from "../lib/child-model.js";
import { childPort, peakRssBytes, type Message } from "../lib/child-process.js";
import { machineBusySeconds } from "../lib/cpu.js";

interface RunRequest extends Message {
  type: "run";
  ids: number[][];
  /** Return the dense vectors of the first `keep` chunks (arrival order), for the peer check. */
  keep: number;
}

const port = childPort();
const { cfg, model } = await loadChildModel(port);

port.on(async (m) => {
  if (m.type !== "run") return;
  const { ids, keep } = m as RunRequest;
  const items = ids.map((seq, index) => ({ index, length: seq.length, ids: Int32Array.from(seq) }));
  const plan = planBatches(items, {
    maxBatchTokens: cfg.MAX_BATCH_TOKENS,
    maxBatchSize: cfg.MAX_BATCH_SIZE,
    maxBatchAttention: cfg.MAX_BATCH_ATTENTION,
    padMultiple: cfg.PAD_MULTIPLE,
    batchOverheadTokens: cfg.BATCH_OVERHEAD_TOKENS,
  });
  const dense: Array<number[] | undefined> = new Array(Math.min(keep, ids.length));
  const cpu0 = process.cpuUsage();
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < plan.length) {
      const b = plan[next++];
      const out = await model.embed({ sequences: b.items.map((i) => i.ids), paddedLength: b.paddedLength });
      b.items.forEach((it, k) => {
        if (it.index < dense.length) dense[it.index] = Array.from(out[k].dense ?? []);
      });
    }
  };
  await Promise.all([lane(), lane()]);
  const seconds = (performance.now() - t0) / 1000;
  const machineCpuSeconds = machineBusySeconds() - machine0;
  const cpu = process.cpuUsage(cpu0);
  port.send({
    type: "result",
    seconds,
    batches: plan.length,
    realTokens: plan.reduce((a, b) => a + b.realTokens, 0),
    paddedTokens: plan.reduce((a, b) => a + b.paddedTokens, 0),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    machineCpuSeconds,
    dense,
    peakRssBytes: peakRssBytes(),
  });
  await model.close();
  process.exit(0);
});
