/** Reads the import graph the layer tests check: the relative imports a TypeScript source file
 *  names (type-only ones included, since a type import still ties two folders together), and the
 *  packages a compiled file loads at run time, following its relative imports through `dist/`
 *  (the compiler has dropped type-only imports there, so this is what Node really loads).
 *  Reads files only; acts when a test calls it. */
import { readFileSync } from "node:fs";
import path from "node:path";

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;

/** Every module specifier in `text`: static imports, re-exports and dynamic imports. */
export function specifiers(text: string): string[] {
  return [...text.matchAll(SPECIFIER)].map((m) => m[1]);
}

/** The repository-relative paths `file` (repository-relative, `.ts`) imports with relative specifiers. */
export function sourceImports(root: string, file: string): string[] {
  const text = readFileSync(path.join(root, file), "utf8");
  return specifiers(text)
    .filter((s) => s.startsWith("."))
    .map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)).replace(/\.js$/, ".ts"));
}

/** The bare packages (and `node:` modules) `entry` (a compiled `.js` file) loads, directly or through
 *  the relative modules it loads, each with the chain of files that leads to it. */
export function runtimePackages(entry: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const seen = new Set<string>();
  const visit = (file: string, chain: string[]): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const here = [...chain, file];
    for (const s of specifiers(readFileSync(file, "utf8"))) {
      if (s.startsWith(".")) visit(path.resolve(path.dirname(file), s), here);
      else if (!found.has(s)) found.set(s, here);
    }
  };
  visit(path.resolve(entry), []);
  return found;
}
