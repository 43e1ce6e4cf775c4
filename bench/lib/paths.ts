/** Where the repository and the optional reference folder beside it are, for bench scripts. */
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const referenceRoot = path.resolve(repoRoot, "..", "shared");

/** A file as results and reports name it: relative to the repository with forward slashes,
 *  or just its name when it is outside (no machine paths in results). */
export function displayPath(file: string): string {
  const rel = path.relative(repoRoot, path.resolve(file));
  return rel.startsWith("..") || path.isAbsolute(rel) ? path.basename(file) : rel.split(path.sep).join("/");
}
