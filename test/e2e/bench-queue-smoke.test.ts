/** Runs `npm run bench:queue` tiny (one job size, one worker, the bundled sample, the generated
 *  tokenizer) into a temporary folder and checks the results file: every chunk enqueued was
 *  written once, Redis counted commands, CPU and memory for them, the derived figures agree with
 *  the raw ones. Then `npm run capacity` on that file and on the hand-written fixtures in
 *  test/fixtures/capacity: every constant named with its source, a missing ceiling reported as
 *  not measured; and docs/scale-out.md's walk-through equal to what its command prints. No timing
 *  thresholds. Needs redis-server (the bench starts its own). */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import type { QueueBenchResults } from "../../bench/lib/results-schema.js";
import type { CapacityReport } from "../../bench/capacity/render.js";
import { repoRoot } from "../../kit/harness.js";
import { redisServerAvailable } from "../../kit/redis-server.js";

const run = promisify(execFile);
const out = mkdtempSync(path.join(os.tmpdir(), "bench-queue-smoke-"));
after(() => rmSync(out, { recursive: true, force: true }));
const fixtures = path.join(repoRoot, "test", "fixtures", "capacity");
const capacityCli = path.join(repoRoot, "dist", "bench", "capacity", "cli.js");
const skip = redisServerAvailable() ? false : "redis-server is not installed";

const TINY = [
  ["--corpus", path.join(repoRoot, "bench", "sample")],
  ["--tokenizer", "generated", "--job-chunks", "4", "--workers", "1", "--chunks", "16", "--min-jobs", "4"],
  ["--monitor-jobs", "2", "--redis-aof", "off", "--out", out],
].flat();

let resultsFile = "";

test(
  "bench:queue (tiny) writes a results file whose figures come from a working queue",
  { skip, timeout: 240_000 },
  async () => {
    const { stdout } = await run(process.execPath, [path.join(repoRoot, "dist", "bench", "queue", "run.js"), ...TINY], {
      cwd: repoRoot,
      maxBuffer: 16 * 1024 * 1024,
    });
    const json = readdirSync(out).find((f) => f.endsWith(".json"));
    assert.ok(json, `no results file written; output:\n${stdout}`);
    assert.ok(readdirSync(out).includes(json.replace(/\.json$/, ".md")), "no Markdown summary beside the results file");
    resultsFile = path.join(out, json);
    const r = JSON.parse(readFileSync(resultsFile, "utf8")) as QueueBenchResults;
    assert.equal(r.schema, 1);
    assert.equal(r.bench, "queue");
    assert.equal(r.corpus.kind, "sample");
    assert.match(r.redis.version, /^\d+\.\d+/);
    assert.ok(!JSON.stringify(r).includes(repoRoot), "the results file contains an absolute path of this machine");
    assert.ok(r.notes.some((n) => /shared/.test(n)) && r.notes.some((n) => /stand-in/i.test(n)));

    assert.equal(r.cells.length, 1);
    const c = r.cells[0];
    assert.deepEqual([c.layout, c.jobChunks, c.workers, c.jobs, c.chunks], ["document", 4, 1, 4, 16]);
    assert.equal(c.failedJobs, 0);
    assert.equal(c.pointsWritten, c.chunks, "every chunk enqueued is a point in the Qdrant stand-in");
    assert.equal(c.maxWritesPerPoint, 1);
    assert.ok(c.tokens > c.chunks && c.jobDataBytes > 0);
    assert.ok(c.commands > 0 && c.commands === c.topCommands.reduce((a, x) => a + x.calls, 0), "commands");
    assert.ok(
      c.topCommands.some((x) => x.command === "evalsha"),
      "BullMQ's scripts ran",
    );
    assert.ok(!c.topCommands.some((x) => x.command === "info"), "the harness's INFO calls were not removed");
    assert.ok(c.usedMemoryDeltaBytes > c.jobDataBytes, "the waiting backlog takes at least its job data in Redis");
    // Process and main-thread CPU come from two getrusage calls inside one INFO: allow their gap.
    assert.ok(
      c.redisCpuSeconds > 0 && c.redisCpuSeconds >= c.redisMainThreadCpuSeconds - 0.005,
      `Redis CPU: process ${c.redisCpuSeconds} s, main thread ${c.redisMainThreadCpuSeconds} s`,
    );
    assert.ok(c.drainSeconds > 0 && c.idle.seconds > 0);
    assert.ok(c.monitor && c.monitor.jobs === 2 && c.monitor.clientCommands > 0 && c.monitor.scriptCommands > 0);

    const d = r.derived[0];
    assert.equal(d.commandsPerJob, c.commands / c.jobs);
    assert.equal(d.commandsPerChunk, c.commands / c.chunks);
    assert.equal(d.bytesPerWaitingChunk, c.usedMemoryDeltaBytes / c.chunks);
    assert.equal(d.redisCpuMsPerJob, (c.redisCpuSeconds * 1000) / c.jobs);
    assert.ok(d.redisCpuMsPerJobNet > 0 && d.redisCpuMsPerJobNet <= d.redisCpuMsPerJob);
    assert.ok(Math.abs(d.jobsPerRedisCoreSecond * d.redisCpuMsPerJob - 1000) < 1e-6);
    const f = r.corpusFigures;
    assert.ok(f.textBytesPerToken > 0 && f.distinctTokenRatio > 0 && f.distinctTokenRatio <= 1);
    assert.ok(f.chunkJsonOverheadBytes > 0 && f.jobJsonOverheadBytes > 0 && f.payloadOverheadBytes > 0);
    assert.equal(r.memoryFit.points, 1);
    assert.match(readFileSync(resultsFile.replace(/\.json$/, ".md"), "utf8"), /^\| 4 \| 1 \| 4 \|/m);
  },
);

test(
  "capacity on that results file: every constant with its source, both GPU estimates, finite figures",
  { skip },
  async () => {
    assert.ok(resultsFile, "the bench test did not write a results file");
    const args = ["--chunks", "1e9", "--tokens-per-chunk", "300", "--gpus", "8", "--job-chunks", "4", "--json"];
    const { stdout } = await run(process.execPath, [
      capacityCli,
      ...args,
      "--queue-results",
      resultsFile,
      "--ceiling-results",
      path.join(fixtures, "ceiling-results.fixture.json"),
    ]);
    const r = JSON.parse(stdout) as CapacityReport;
    assert.equal(r.scenarios.length, 2);
    assert.ok(r.constants.every((c) => Number.isFinite(c.value) && c.source.length > 0));
    const name = path.basename(resultsFile);
    assert.ok(r.constants.some((c) => c.source.includes(`${name} derived[0]`)));
    assert.ok(r.constants.some((c) => c.source.includes("ceiling-results.fixture.json cases[1]")));
    assert.ok(r.constants.some((c) => c.source.startsWith("bench/e2e/gpu-figures.ts")));
    for (const s of r.scenarios) {
      for (const [k, v] of Object.entries(s.result))
        if (typeof v === "number") assert.ok(Number.isFinite(v) && v >= 0, `${s.label} ${k} = ${v}`);
      assert.ok(s.result.workerProcessesPerGpu! >= 1 && s.result.redisShards >= 1);
    }
  },
);

test("capacity without a ceiling says 'not measured'; a bad option exits 2", async () => {
  const queue = path.join(fixtures, "queue-results.fixture.json");
  const { stdout } = await run(process.execPath, [
    capacityCli,
    ...["--chunks", "1e9", "--gpus", "8", "--queue-results", queue, "--ceiling-results", queue],
  ]);
  assert.match(stdout, /worker processes and tokenizer threads per GPU: not measured: run npm run bench:ceiling/);
  assert.match(stdout, /Redis memory at the high-water mark/);
  assert.match(
    stdout,
    /Redis CPU ms per job \(net of idle\) = 1\.000: test\/fixtures\/capacity\/queue-results\.fixture\.json derived\[3\]/,
  );
  await assert.rejects(
    run(process.execPath, [capacityCli, "--chunks", "many", "--gpus", "8"]),
    (e: { code: number }) => e.code === 2,
  );
  await assert.rejects(
    run(process.execPath, [capacityCli, "--chunks", "10", "--gpus", "8", "--gpu", "v100", "--queue-results", queue]),
    (e: { code: number; stderr: string }) => e.code === 2 && /not one of/.test(e.stderr),
  );
});

test("docs/scale-out.md shows exactly what the capacity command it names prints", async () => {
  const page = readFileSync(path.join(repoRoot, "docs", "scale-out.md"), "utf8");
  const m = /`npm run capacity -- ([^`]*--queue-results [^`]+)`\nprints[^\n]*\n\n```text\n/.exec(page);
  assert.ok(m, "docs/scale-out.md names no capacity command with --queue-results followed by its output");
  const { stdout } = await run(process.execPath, [capacityCli, ...m[1].split(/\s+/)], { cwd: repoRoot });
  assert.ok(
    page.includes("```text\n" + stdout.trimEnd() + "\n```"),
    `docs/scale-out.md differs from \`npm run capacity -- ${m[1]}\`; paste its output`,
  );
});
