/** Keeps the README and the docs/ pages true: docs/configuration.md is the page the config schema
 *  prints, every `npm run` script they mention exists, every relative link (file and `#anchor`)
 *  resolves, every repository path they name in code exists, every page is linked from the README,
 *  and the README stays a front page. */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { configShape } from "../../shared/config.js";
import { repoRoot } from "../../kit/harness.js";
import { codePaths, headingAnchors, isExternal, markdownLinks } from "../support/markdown-links.js";

const read = (rel: string) => readFileSync(path.join(repoRoot, rel), "utf8");
const docsPages = readdirSync(path.join(repoRoot, "docs"))
  .filter((f) => f.endsWith(".md"))
  .map((f) => `docs/${f}`);
const pages = ["README.md", ...docsPages];
const configPage = read("docs/configuration.md");
const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };

/** Paths of other repositories the docs quote, which look like ours. */
const FOREIGN_PATHS = new Set(["demo/BERT/README.md"]); // NVIDIA's TensorRT repository, in docs/models.md

/** Most lines the README may have and still be a front page (issue 14). */
const FRONT_PAGE_MAX_LINES = 250;

test("every configuration variable is in docs/configuration.md's table", () => {
  for (const key of Object.keys(configShape)) {
    assert.match(configPage, new RegExp(`^\\| \`${key}\` \\|`, "m"), `${key} is not documented`);
  }
});

test("every npm script the README and docs name exists", () => {
  const named = pages.flatMap((page) =>
    [...read(page).matchAll(/npm run ([a-z][a-z0-9:-]*)/g)].map((m) => ({ page, s: m[1] })),
  );
  assert.ok(named.filter((n) => n.page === "README.md").length > 3);
  for (const { page, s } of named) {
    assert.ok(pkg.scripts[s], `${page} mentions "npm run ${s}" but package.json has no such script`);
  }
  assert.ok(pkg.scripts.test);
});

test("docs/configuration.md is the page the schema prints", async () => {
  const { configPage: render, configTable } = await import("../../shared/config-table.js");
  assert.ok(configPage.includes(configTable()), "the table differs from `npm run config-table`");
  assert.equal(configPage, render(), "regenerate it: `npm run -s config-table -- --page > docs/configuration.md`");
});

test("every relative link in the README and docs resolves, anchors included", () => {
  const anchors = new Map<string, Set<string>>();
  const anchorsOf = (file: string) => {
    if (!anchors.has(file)) anchors.set(file, headingAnchors(readFileSync(file, "utf8")));
    return anchors.get(file)!;
  };
  let checked = 0;
  for (const page of pages) {
    const from = path.join(repoRoot, page);
    for (const { line, target } of markdownLinks(read(page))) {
      if (isExternal(target)) continue;
      const [file, anchor] = target.split("#", 2);
      const resolved = file === "" ? from : path.resolve(path.dirname(from), decodeURIComponent(file));
      assert.ok(resolved.startsWith(repoRoot + path.sep), `${page}:${line}: ${target} points outside the repository`);
      assert.ok(existsSync(resolved), `${page}:${line}: ${target}: no such file`);
      if (anchor !== undefined) {
        assert.ok(resolved.endsWith(".md"), `${page}:${line}: ${target}: an anchor into a file that is not Markdown`);
        assert.ok(anchorsOf(resolved).has(anchor), `${page}:${line}: ${target}: no heading with that anchor`);
      }
      checked++;
    }
  }
  assert.ok(checked > 20, `only ${checked} relative links found: is the link parser broken?`);
});

test("every repository path the README and docs name in code exists", () => {
  let checked = 0;
  for (const page of pages) {
    for (const { line, target } of codePaths(read(page))) {
      if (FOREIGN_PATHS.has(target)) continue;
      // `dist/x/y.js` is built from `x/y.ts`.
      const source = target.startsWith("dist/") ? target.slice(5).replace(/\.js$/, ".ts") : target;
      assert.ok(existsSync(path.join(repoRoot, source)), `${page}:${line}: \`${target}\` does not exist`);
      checked++;
    }
  }
  assert.ok(checked > 50, `only ${checked} paths found: is the path reader broken?`);
});

test("the README is a front page that links every docs page", () => {
  const readme = read("README.md");
  const lines = readme.split("\n").length;
  const most = FRONT_PAGE_MAX_LINES;
  assert.ok(lines <= most, `README.md has ${lines} lines; move detail to docs/ (at most ${most})`);
  const linked = new Set(markdownLinks(readme).map((l) => l.target.split("#")[0]));
  for (const page of docsPages) assert.ok(linked.has(page), `README.md does not link ${page}`);
});

test("the link reader follows GitHub's rules", () => {
  const page = [
    "# A `code` title: here",
    "## Dup",
    "## Dup",
    "```",
    "## not a heading [x](nope.md)",
    "```",
    "[a](b.md#c) `[d](e.md)` ![i](j.png)",
  ].join("\n");
  assert.deepEqual([...headingAnchors(page)], ["a-code-title-here", "dup", "dup-1"]);
  assert.deepEqual(
    markdownLinks(page).map((l) => `${l.line}:${l.target}`),
    ["7:b.md#c", "7:j.png"],
  );
  assert.ok(isExternal("https://x.org") && isExternal("mailto:a@b") && !isExternal("docs/a.md"));
  const code = [
    "`test/a.test.ts` `./k8s/base/` `node dist/x.js` `bench/results/<file>.json` `test/r-*.ts`",
    "```",
    "`docs/x.md`",
    "```",
  ].join("\n");
  assert.deepEqual(
    codePaths(code).map((l) => l.target),
    ["test/a.test.ts", "k8s/base/"],
  );
});
