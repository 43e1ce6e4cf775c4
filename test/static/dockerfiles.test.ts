/** Static checks of Dockerfile (CPU) and Dockerfile.cuda: pinned base images, Node 22 or newer,
 *  a multi-stage build (npm ci, tsc, prune dev dependencies), a numeric non-root user that
 *  matches the Kubernetes manifests, a HEALTHCHECK on /health/live, COPY sources that exist and
 *  are not excluded by .dockerignore; the CUDA image installs ONNX Runtime's CUDA provider and
 *  sets EXECUTION_PROVIDER=cuda. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { configShape } from "../../shared/config.js";
import { readText, readYaml, repoPath } from "../support/ops-files.js";

interface Instruction {
  cmd: string;
  args: string;
}
interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with line continuations joined and comments dropped, grouped by stage. */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && current === "")) continue;
    current += (current ? " " : "") + line.replace(/\\$/, "").trim();
    if (line.endsWith("\\")) continue;
    const m = /^(\w+)\s+(.*)$/s.exec(current);
    if (m) instructions.push({ cmd: m[1].toUpperCase(), args: m[2] });
    current = "";
  }
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.cmd === "FROM") {
      const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith("--"));
      stages.push({ image: parts[0], name: /^as$/i.test(parts[1] ?? "") ? parts[2] : undefined, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${ins.cmd} before FROM`);
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  return stages;
}

/** COPY/ADD sources and flags, exec (JSON) or shell form. */
function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.trim().startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const rest = words.filter((w) => !w.startsWith("--"));
  const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
  return { from, sources: rest.slice(0, -1), dest: rest[rest.length - 1] };
}

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.cmd === "ENV")) {
    for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, "");
  }
  return env;
}

/** Paths .dockerignore excludes from the build context (Go filepath.Match patterns, `**`, `!`). */
function dockerignore(): (p: string) => boolean {
  const rules = readText(".dockerignore")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ""));
      const re = new RegExp(
        `^${pattern
          .split("**")
          .map((part) =>
            part
              .replace(/[.+^${}()|[\]\\]/g, "\\$&")
              .replace(/\*/g, "[^/]*")
              .replace(/\?/g, "[^/]"),
          )
          .join(".*")}$`,
      );
      return { negate, re };
    });
  return (p: string) => {
    const parts = path.posix.normalize(p).split("/");
    let excluded = false;
    for (const r of rules) {
      const hit = parts.some((_, i) => r.re.test(parts.slice(0, i + 1).join("/")));
      if (hit) excluded = !r.negate;
    }
    return excluded;
  };
}

const FILES = ["Dockerfile", "Dockerfile.cuda"] as const;
const parsed = Object.fromEntries(FILES.map((f) => [f, parseDockerfile(readText(f))])) as Record<
  (typeof FILES)[number],
  Stage[]
>;
const k8sUid = readYaml("k8s/base/deployment.yaml").spec.template.spec.securityContext.runAsUser as number;
const defaultHttpPort = configShape.HTTP_PORT.parse(undefined);

function runs(stage: Stage): string[] {
  return stage.instructions.filter((i) => i.cmd === "RUN").map((i) => i.args);
}

function nodeMajor(image: string): number | undefined {
  const m = /^node:(\d+)\.\d+\.\d+/.exec(image);
  return m ? Number(m[1]) : undefined;
}

test("the dockerfile reader finds stages, COPY sources and .dockerignore exclusions (so the checks below can fail)", () => {
  const stages = parseDockerfile(
    "# c\nFROM node:22.1.0 AS b\nRUN a \\\n  && b\nFROM x:1\nCOPY --from=b /a /b\nUSER 1:1\n",
  );
  assert.deepEqual(
    stages.map((s) => [s.image, s.name]),
    [
      ["node:22.1.0", "b"],
      ["x:1", undefined],
    ],
  );
  assert.equal(stages[0].instructions[0].args, "a && b");
  assert.deepEqual(copyArgs("--from=b --chown=1 /a /b"), { from: "b", sources: ["/a"], dest: "/b" });
  const ignored = dockerignore();
  assert.equal(ignored("node_modules/x/index.js"), true);
  assert.equal(ignored("shared/config.ts"), false);
});

for (const file of FILES) {
  test(`${file}: pinned base images, Node >= 22, multi-stage build, non-root user, healthcheck`, () => {
    const stages = parsed[file];
    assert.ok(stages.length >= 2, "not a multi-stage build");
    const aliases = new Set<string>();
    for (const s of stages) {
      if (!aliases.has(s.image)) {
        assert.doesNotMatch(s.image, /:latest$/, `${s.image} uses latest`);
        assert.match(s.image, /(:[^/]*\d[^/]*|@sha256:[0-9a-f]{64})$/, `${s.image} is not pinned to a version`);
      }
      if (s.name) aliases.add(s.name);
    }
    for (const s of stages) {
      const major = nodeMajor(s.image);
      if (s.image.startsWith("node:"))
        assert.ok(major !== undefined && major >= 22, `${s.image}: Node 22 LTS or newer, pinned to a full version`);
    }
    const build = stages.find((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)));
    assert.ok(build, "no stage runs npm ci");
    const buildRuns = runs(build).join("\n");
    assert.match(buildRuns, /\btsc\b/, "the build stage does not compile");
    assert.match(buildRuns, /npm prune --omit=dev/, "dev dependencies are not pruned");
    assert.ok(build.name, "the build stage has no name");

    const final = stages[stages.length - 1];
    assert.notEqual(final, build);
    const copies = final.instructions.filter((i) => i.cmd === "COPY").map((i) => copyArgs(i.args));
    assert.ok(
      copies.some((c) => c.from === build.name && c.sources.some((s) => s.endsWith("node_modules"))),
      "the final stage does not take the pruned node_modules",
    );
    if (!final.image.startsWith("node:")) {
      const nodeCopy = copies.find((c) => c.sources.includes("/usr/local/bin/node"));
      assert.ok(nodeCopy, "the final stage has no Node: copy /usr/local/bin/node from a node:22 stage");
      const from = stages.find((s) => s.name === nodeCopy.from);
      assert.ok(
        from && (nodeMajor(from.image) ?? 0) >= 22,
        `node is copied from ${nodeCopy.from}, not from a pinned node:22+ image`,
      );
    }

    const users = final.instructions.filter((i) => i.cmd === "USER");
    assert.ok(users.length > 0, "the final stage runs as root (no USER)");
    const [uid, gid] = users[users.length - 1].args.trim().split(":");
    assert.ok(!["root", "0"].includes(uid), `USER ${uid} is root`);
    assert.match(uid, /^\d+$/, "USER is not numeric: Kubernetes' runAsNonRoot cannot verify a user name");
    assert.equal(Number(uid), k8sUid, "USER differs from runAsUser in k8s/base/deployment.yaml");
    assert.ok(gid === undefined || gid !== "0", "the primary group is root");
    assert.ok(
      runs(final).some((r) => new RegExp(`useradd\\b.*--uid ${uid}\\b`).test(r)),
      `uid ${uid} is not created with useradd`,
    );

    const health = final.instructions.find((i) => i.cmd === "HEALTHCHECK");
    assert.ok(health && /\/health\/live/.test(health.args), "no HEALTHCHECK on /health/live");
    assert.match(health.args, /HTTP_PORT/, "the HEALTHCHECK ignores HTTP_PORT");
    const expose = final.instructions.find((i) => i.cmd === "EXPOSE");
    assert.equal(Number(expose?.args.trim()), defaultHttpPort, "EXPOSE is not the default HTTP_PORT");
  });

  test(`${file}: every COPY source exists and is in the build context`, () => {
    const ignored = dockerignore();
    let n = 0;
    for (const s of parsed[file]) {
      for (const ins of s.instructions.filter((i) => i.cmd === "COPY" || i.cmd === "ADD")) {
        const c = copyArgs(ins.args);
        if (c.from) continue;
        for (const src of c.sources) {
          n++;
          assert.ok(existsSync(repoPath(src)), `COPY ${src}: not in the repository`);
          assert.ok(!ignored(src), `COPY ${src}: excluded by .dockerignore`);
        }
      }
    }
    assert.ok(n >= 5);
  });
}

test("Dockerfile.cuda installs the CUDA provider into the copied node_modules and sets EXECUTION_PROVIDER=cuda", () => {
  const stages = parsed["Dockerfile.cuda"];
  const final = stages[stages.length - 1];
  assert.equal(envOf(final).EXECUTION_PROVIDER, "cuda");
  assert.match(final.image, /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/, "not a CUDA 12 runtime image with cuDNN");
  const install = /ONNXRUNTIME_NODE_INSTALL=(\S+) node (node_modules\/onnxruntime-node\/script\/install\.js)/;
  const stage = stages.find((s) => runs(s).some((r) => install.test(r)));
  assert.ok(stage, "no RUN installs onnxruntime-node's CUDA provider");
  const stageRuns = runs(stage);
  const at = stageRuns.findIndex((r) => install.test(r));
  const [, flag, script] = install.exec(stageRuns[at])!;
  assert.ok(stageRuns.findIndex((r) => /\bnpm ci\b/.test(r)) < at, "the CUDA install runs before npm ci");
  assert.ok(stageRuns.findIndex((r) => /npm prune/.test(r)) > at, "the CUDA install runs after pruning");
  const req = createRequire(import.meta.url);
  assert.ok(
    existsSync(req.resolve(script.replace(/^node_modules\//, ""))),
    `${script} does not exist in this onnxruntime-node`,
  );
  const metadata = req("onnxruntime-node/script/install-metadata.js") as { requirements: Record<string, string[]> };
  assert.ok(
    metadata.requirements["linux/x64"]?.includes(flag),
    `ONNXRUNTIME_NODE_INSTALL=${flag} is not an install option of this onnxruntime-node for linux/x64`,
  );
  const copies = final.instructions.filter((i) => i.cmd === "COPY").map((i) => copyArgs(i.args));
  assert.ok(
    copies.some((c) => c.from === stage.name && c.sources.some((s) => s.endsWith("node_modules"))),
    "the final stage does not copy the node_modules with the CUDA provider",
  );
  assert.ok(
    runs(final).some((r) => /missingCudaLibraries/.test(r)),
    "the image build does not check that the provider libraries are present",
  );
});

test("Dockerfile (CPU) skips the CUDA download and never selects CUDA", () => {
  const stages = parsed.Dockerfile;
  for (const s of stages) assert.doesNotMatch(runs(s).join("\n"), /ONNXRUNTIME_NODE_INSTALL=cuda/);
  assert.notEqual(envOf(stages[stages.length - 1]).EXECUTION_PROVIDER, "cuda");
  assert.match(readText(".npmrc"), /^onnxruntime-node-install=skip$/m);
  const build = stages[0];
  const npmrcCopy = build.instructions.findIndex(
    (i) => i.cmd === "COPY" && copyArgs(i.args).sources.includes(".npmrc"),
  );
  const npmCi = build.instructions.findIndex((i) => i.cmd === "RUN" && /\bnpm ci\b/.test(i.args));
  assert.ok(npmrcCopy >= 0 && npmrcCopy < npmCi, ".npmrc is not in place before npm ci");
});

/** Folders of test code: fixtures, demo, tests and benchmarks. None of them may reach an image (issue 14). */
const TEST_CODE = ["kit", "demo", "test", "bench"];

for (const file of FILES) {
  test(`${file}: copies no test code into the image (kit/, demo/, test/, bench/)`, () => {
    const copied = parsed[file]
      .flatMap((s) => s.instructions.filter((i) => i.cmd === "COPY" || i.cmd === "ADD"))
      .map((i) => copyArgs(i.args))
      .filter((c) => !c.from)
      .flatMap((c) => c.sources);
    assert.ok(copied.length > 0, "no COPY from the build context found: the reader is broken");
    for (const src of copied) {
      const top = path.posix.normalize(src).replace(/^\.\//, "").split("/")[0];
      assert.ok(src !== "." && !TEST_CODE.includes(top), `COPY ${src}: test code in the production image`);
    }
  });
}

test(".dockerignore keeps test code out of the build context", () => {
  const ignored = dockerignore();
  for (const p of TEST_CODE) assert.ok(ignored(p), `${p}/ is sent to the Docker daemon`);
});

test(".dockerignore keeps host builds, dependencies, models and .env out of the context", () => {
  const ignored = dockerignore();
  for (const p of ["node_modules", "dist", ".git", "models/bge-m3/model.onnx", ".env"])
    assert.ok(ignored(p), `${p} is sent to the Docker daemon`);
});

test("both images keep the native tokenizer (TOKENIZER_BACKEND) for linux-x64-gnu and check that it loads", () => {
  const pkg = JSON.parse(readText("package.json")) as Record<string, Record<string, string> | undefined>;
  assert.ok(
    pkg.optionalDependencies?.tokenizers ?? pkg.dependencies?.tokenizers,
    "tokenizers is not a production (optional) dependency: npm prune --omit=dev drops it",
  );
  assert.equal(pkg.devDependencies?.tokenizers, undefined, "tokenizers is also a devDependency");
  const req = createRequire(import.meta.url);
  const dir = path.dirname(req.resolve("tokenizers/package.json"));
  const native = req("tokenizers/package.json") as { scripts?: Record<string, string> };
  for (const s of ["preinstall", "install", "postinstall"])
    assert.equal(native.scripts?.[s], undefined, `tokenizers has a ${s} script: installs would not be offline-safe`);
  const keep = /'tokenizers\.' \+ process\.platform \+ '-' \+ process\.arch \+ '-gnu\.node'/;
  for (const file of FILES) {
    const stages = parsed[file];
    const build = stages.find((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)))!;
    const buildRuns = runs(build);
    const prune = buildRuns.findIndex((r) => keep.test(r));
    assert.ok(prune >= 0, `${file}: the build stage does not keep the platform's tokenizers binary`);
    assert.ok(
      prune > buildRuns.findIndex((r) => /npm prune/.test(r)),
      `${file}: binaries are removed before npm prune`,
    );
    // The name the image keeps on linux/x64 exists in the installed package.
    assert.ok(existsSync(path.join(dir, "tokenizers.linux-x64-gnu.node")), "no tokenizers.linux-x64-gnu.node");
    const final = stages[stages.length - 1];
    assert.ok(
      runs(final).some((r) => /require\('\/app\/node_modules\/tokenizers'\)/.test(r)),
      `${file}: the final stage does not check that the native tokenizer loads`,
    );
  }
});
