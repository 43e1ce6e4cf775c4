/** Child process that times single model batches: the worker's own ONNX model thread
 *  (OnnxModel, same session options and heads as the worker), nothing else running in the
 *  process. Each named batch runs once untimed, then `reps` timed times, the batches taking
 *  turns so a burst of outside load does not land on one of them only. Settings come from the
 *  environment, as for the worker. */
import { loadChildModel } from "../lib/child-model.js";
import { childPort, type Message } from "../lib/child-process.js";
import type { TimedBatch } from "../lib/measure-children.js";

const port = childPort();
const { model } = await loadChildModel(port);

port.on(async (m) => {
  if (m.type !== "run") return;
  const { batches, reps } = m as Message & { batches: TimedBatch[]; reps: number };
  const inputs = batches.map((b) => ({
    sequences: b.ids.map((s) => Int32Array.from(s)),
    paddedLength: b.paddedLength,
  }));
  for (const b of inputs) await model.embed(b);
  const seconds: number[][] = batches.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, b] of inputs.entries()) {
      const t0 = performance.now();
      await model.embed(b);
      seconds[i].push((performance.now() - t0) / 1000);
    }
  }
  port.send({ type: "result", seconds });
  await model.close();
  process.exit(0);
});
