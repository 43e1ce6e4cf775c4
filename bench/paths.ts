/** Where the repository and the optional reference folder beside it are, for bench scripts. */
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const referenceRoot = path.resolve(repoRoot, "..", "shared");
