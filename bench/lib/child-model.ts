/** The worker's own model inside a bench child (children/model-child.ts, children/batch-child.ts):
 *  settings from the environment as for the worker, the same OnnxModel (session options, output
 *  heads), loaded once at start; then the child tells its parent it is ready. */
import { parseConfig, type Config } from "../../shared/config.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { OnnxModel } from "../../worker/adapters/onnx-model.js";
import type { childPort } from "./child-process.js";

export async function loadChildModel(port: ReturnType<typeof childPort>): Promise<{ cfg: Config; model: OnnxModel }> {
  const cfg = parseConfig(process.env);
  const model = await OnnxModel.load(cfg, locateModelFiles(cfg.MODEL_DIR));
  port.send({ type: "ready" });
  return { cfg, model };
}
