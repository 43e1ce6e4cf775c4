/** Failures of the offline model tools (`.pt` reading, `prepare-model`). Each is a model
 *  problem (kind "model", not retryable): the files on disk are wrong and running again on the
 *  same files fails the same way. Messages start with what to fix. */
import { ModelLoadError } from "../errors.js";

/** A `.pt` file is not a PyTorch zip checkpoint this reader understands (truncated, no
 *  data.pkl, a tensor file of the wrong size, an opcode outside a state dict's needs). */
export class PtFormatError extends ModelLoadError {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: not a readable PyTorch state dict: ${detail}`);
  }
}

/** The pickle inside a `.pt` names a callable a state dict never needs; loading it with
 *  Python's pickle would run it, so it is refused before anything is built. */
export class UnsafePickleError extends ModelLoadError {
  constructor(
    readonly file: string,
    readonly global: string,
  ) {
    super(
      `${file}: refused: the pickle calls ${global}, which a state dict never contains ` +
        "(only collections.OrderedDict, torch._utils._rebuild_tensor_v2/_rebuild_parameter and " +
        "torch.HalfStorage/FloatStorage/BFloat16Storage are accepted)",
    );
  }
}

/** The backbone's ONNX graph is not one `prepare-model` can extend. */
export class ModelLayoutError extends ModelLoadError {}
