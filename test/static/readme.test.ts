/** Keeps the README true: every configuration variable is documented there, and every
 *  `npm run` script it mentions exists. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { configShape } from "../../shared/config.js";
import { repoRoot } from "../../kit/harness.js";

const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> };

test("every configuration variable is in the README's table", () => {
  for (const key of Object.keys(configShape)) assert.match(readme, new RegExp(`^\\| \`${key}\` \\|`, "m"), `${key} is not documented`);
});

test("every npm script the README names exists", () => {
  const named = [...readme.matchAll(/npm run ([a-z][a-z0-9:-]*)/g)].map((m) => m[1]);
  assert.ok(named.length > 3);
  for (const s of new Set(named)) assert.ok(pkg.scripts[s], `README mentions "npm run ${s}" but package.json has no such script`);
  assert.ok(pkg.scripts.test);
});

test("the README's configuration table is the one the schema prints", async () => {
  const { configTable } = await import("../../shared/config-table.js");
  assert.ok(readme.includes(configTable()), "README table differs from `npm run config-table`; paste its output into the README");
});
