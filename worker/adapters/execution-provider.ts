/** Chooses ONNX Runtime execution providers and checks, before a session is created, that
 *  the CUDA provider's libraries are present. onnxruntime-node ships the CPU provider only;
 *  the CUDA provider is downloaded by its install script, which this project skips on CPU
 *  builds (`.npmrc`), so a CUDA worker built without it must fail loudly, never fall back. */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { ExecutionProviderError } from "../errors.js";

export const CUDA_PROVIDER_LIBS = ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so"];

export const CUDA_INSTALL_HINT =
  "install the CUDA provider into onnxruntime-node at build time with " +
  "`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` " +
  "and run on a machine with the CUDA 12 runtime and cuDNN 9 libraries (Dockerfile.cuda does both)";

/** Folder holding onnxruntime-node's native binaries for this platform. */
export function ortBinaryDir(): string {
  const req = createRequire(import.meta.url);
  const pkg = req.resolve("onnxruntime-node/package.json");
  return path.join(path.dirname(pkg), "bin", "napi-v6", process.platform, process.arch);
}

export function missingCudaLibraries(dir = ortBinaryDir()): string[] {
  return CUDA_PROVIDER_LIBS.filter((f) => !existsSync(path.join(dir, f)));
}

export type ProviderSpec = "cpu" | { name: "cuda"; deviceId: number };

/** The provider list for a session: exactly one provider, so ONNX Runtime cannot pick another. */
export function executionProviders(provider: "cpu" | "cuda", deviceId: number, binDir?: string): ProviderSpec[] {
  if (provider === "cpu") return ["cpu"];
  if (process.platform !== "linux" && process.platform !== "win32") {
    throw new ExecutionProviderError(`EXECUTION_PROVIDER=cuda is not available on ${process.platform}; use cpu`);
  }
  const missing = missingCudaLibraries(binDir);
  if (missing.length > 0) {
    throw new ExecutionProviderError(
      `EXECUTION_PROVIDER=cuda but the ONNX Runtime CUDA provider is not installed: missing ${missing.join(", ")} in ${binDir ?? ortBinaryDir()}; ${CUDA_INSTALL_HINT}`,
    );
  }
  return [{ name: "cuda", deviceId }];
}

/** Wraps ORT's session-creation failure on CUDA with what usually causes it. */
export function cudaLoadError(err: unknown, deviceId: number): ExecutionProviderError {
  const msg = (err as Error)?.message ?? String(err);
  return new ExecutionProviderError(
    `the CUDA execution provider failed to load on device ${deviceId}: ${msg}. ` +
      "Check that a GPU is visible (nvidia-smi, the pod's nvidia.com/gpu request), that CUDA 12 and cuDNN 9 libraries are on LD_LIBRARY_PATH, " +
      "and that CUDA_DEVICE_ID names an existing device",
    { cause: err },
  );
}
