/** The `info` of the fake models unit tests hand the pipeline: a dense-only CPU model of two dimensions. */
import type { ModelInfo } from "../../worker/core/ports.js";

export function fakeModelInfo(): ModelInfo {
  return {
    name: "fake",
    provider: "cpu",
    device: "cpu",
    available: ["dense"],
    outputs: ["dense"],
    denseDim: 2,
    onnxOutputs: [],
    maxSeqLength: 512,
  };
}
