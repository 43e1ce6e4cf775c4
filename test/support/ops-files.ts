/** Helpers for the tests of the deployable artifacts (Grafana, Kubernetes, docker compose,
 *  Dockerfiles): reading YAML from the repository and running command-line tools that may or
 *  may not be installed. */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { repoRoot } from "../../kit/harness.js";

export type Doc = Record<string, any>;

export function repoPath(rel: string): string {
  return path.join(repoRoot, rel);
}

export function readText(rel: string): string {
  return readFileSync(repoPath(rel), "utf8");
}

/** One YAML document; throws with the file name on a syntax error. */
export function readYaml(rel: string): Doc {
  try {
    return parseYaml(readText(rel), { merge: true }) as Doc;
  } catch (err) {
    throw new Error(`${rel}: ${(err as Error).message}`, { cause: err });
  }
}

/** Every document of a multi-document YAML text; throws on the first syntax error. */
export function parseYamlDocs(text: string, what: string): Doc[] {
  const docs = parseAllDocuments(text, { merge: true });
  const out: Doc[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${what}: ${d.errors.map((e) => e.message).join("; ")}`);
    const v = d.toJS() as Doc | null;
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

export function readYamlDocs(rel: string): Doc[] {
  return parseYamlDocs(readText(rel), rel);
}

/** Files under a repository folder whose names match `re`, as repository-relative paths. */
export function listFiles(dirRel: string, re: RegExp): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(repoPath(rel))) {
      const child = path.posix.join(rel, name);
      if (statSync(repoPath(child)).isDirectory()) walk(child);
      else if (re.test(name)) out.push(child);
    }
  };
  walk(dirRel);
  return out.sort();
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; cwd?: string; timeoutMs?: number } = {},
): RunResult {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? repoRoot,
    input: opts.input,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** True when `cmd` can be started (it is on PATH). */
export function onPath(cmd: string): boolean {
  const r = spawnSync(cmd, ["--version"], { encoding: "utf8", timeout: 30_000 });
  return !r.error;
}

/** The docker compose file, parsed. */
export function readCompose(): { services: Record<string, Doc>; volumes?: Record<string, Doc | null> } {
  return readYaml("docker-compose.yml") as { services: Record<string, Doc>; volumes?: Record<string, Doc | null> };
}

/** A compose short-syntax volume `src:dst[:mode]` or long syntax, as source/target. */
export function composeVolume(v: string | Doc): { source: string; target: string; readOnly: boolean } {
  if (typeof v !== "string")
    return { source: String(v.source ?? ""), target: String(v.target), readOnly: Boolean(v.read_only) };
  const [source, target, mode] = v.split(":");
  return target === undefined
    ? { source: "", target: source, readOnly: false }
    : { source, target, readOnly: mode === "ro" };
}

export const isBindSource = (s: string) => s.startsWith("./") || s.startsWith("../") || s.startsWith("/") || s === ".";
