/** The layout's import rules (issue 14), checked over the source tree: the production folders
 *  (`worker/`, `producer/`, `shared/`) never import the test kit, tests, benchmarks or the demo;
 *  the kit, bench and demo import nothing from `test/`; `shared/` imports neither the worker nor the
 *  producer; and a unit test loads nothing that talks to Redis, ONNX Runtime, threads or child
 *  processes, so `npm run test:unit` needs none of them. */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { repoRoot } from "../../kit/harness.js";
import { runtimePackages, sourceImports, specifiers } from "../support/import-graph.js";

const PRODUCTION = ["worker", "producer", "shared"];
const NOT_FOR_PRODUCTION = ["kit", "test", "bench", "demo"];
const HEAVY = ["ioredis", "bullmq", "onnxruntime-node", "piscina", "child_process", "worker_threads"];

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.posix.join(dir, f.split(path.sep).join("/")));
}

const topFolder = (rel: string) => rel.split("/")[0];

test("the import reader sees static, re-exported, dynamic and type-only imports (so the checks below can fail)", () => {
  const text =
    'import a from "./a.js";\nimport type { B } from "../b.js";\nexport { c } from "./c.js";\n' +
    'const d = await import("./d.js");\nimport "./e.js";\nimport { f } from "node:fs";\n';
  assert.deepEqual(specifiers(text), ["./a.js", "../b.js", "./c.js", "./d.js", "./e.js", "node:fs"]);
  assert.ok(sourceImports(repoRoot, "kit/harness.ts").includes("shared/config.ts"));
  const integration = runtimePackages(path.join(repoRoot, "dist", "test", "integration", "enqueue.test.js"));
  assert.ok(integration.has("bullmq"), "the runtime walk misses bullmq behind an integration test");
});

test("worker/, producer/ and shared/ import nothing from kit/, test/, bench/ or demo/", () => {
  let edges = 0;
  for (const dir of PRODUCTION) {
    for (const file of tsFiles(dir)) {
      for (const target of sourceImports(repoRoot, file)) {
        edges++;
        const top = topFolder(target);
        assert.ok(!NOT_FOR_PRODUCTION.includes(top), `${file} imports ${target}: test code in production`);
      }
    }
  }
  assert.ok(edges > 100, `only ${edges} imports read: the reader is broken`);
});

test("kit/, bench/ and demo/ import nothing from test/: what they share lives in the kit", () => {
  for (const dir of ["kit", "bench", "demo"]) {
    for (const file of tsFiles(dir)) {
      for (const target of sourceImports(repoRoot, file))
        assert.notEqual(topFolder(target), "test", `${file} imports ${target}`);
    }
  }
});

test("shared/ imports neither worker/ nor producer/", () => {
  for (const file of tsFiles("shared")) {
    for (const target of sourceImports(repoRoot, file)) {
      assert.ok(!["worker", "producer"].includes(topFolder(target)), `${file} imports ${target}`);
    }
  }
});

test("unit tests load no Redis client, ONNX Runtime, threads or child processes", () => {
  const units = tsFiles("test/unit").filter((f) => f.endsWith(".test.ts"));
  assert.ok(units.length >= 10, `only ${units.length} unit tests found`);
  for (const file of units) {
    const compiled = path.join(repoRoot, "dist", file.replace(/\.ts$/, ".js"));
    for (const [pkg, chain] of runtimePackages(compiled)) {
      const name = pkg.replace(/^node:/, "");
      const via = chain.map((f) => path.relative(repoRoot, f)).join(" → ");
      assert.ok(!HEAVY.includes(name), `${file} loads ${pkg} (${via}): move it to test/integration/ or test/e2e/`);
    }
  }
});
