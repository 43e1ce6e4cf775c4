/** Runs `npm run bench:pack` small (300 one-sentence documents of the bundled sample, both modes) into a
 *  temporary folder and checks the results file holds what only a working run gives: every document's
 *  points stored in both modes, no failed job, fewer jobs and fewer Redis commands per chunk packed than
 *  unpacked, and Redis CPU read from its process. No timing thresholds. Needs `redis-server` on PATH. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import { repoRoot } from "../../kit/harness.js";
import { redisServerAvailable } from "../../kit/redis-server.js";

const out = mkdtempSync(path.join(os.tmpdir(), "bench-pack-smoke-"));
after(() => rmSync(out, { recursive: true, force: true }));

interface ModeResult {
  mode: string;
  documents: number;
  chunks: number;
  jobs: number;
  redisCpuSeconds: number;
  redisCommandsPerChunk: number;
  failedJobs: number;
  pointsStored: number;
}

test(
  "bench:pack runs both modes and writes figures only a working run gives",
  {
    skip: redisServerAvailable() ? false : "redis-server is not on PATH",
  },
  async () => {
    const args = ["--docs", "300", "--corpus", path.join(repoRoot, "bench", "sample"), "--out", out];
    const r = await promisify(execFile)(
      process.execPath,
      [path.join(repoRoot, "dist", "bench", "pack", "run.js"), ...args],
      {
        cwd: repoRoot,
        timeout: 300_000,
      },
    );
    assert.match(r.stdout, /^method: /m);
    const file = readdirSync(out).find((f) => f.endsWith(".json"));
    assert.ok(file, r.stdout);
    const results = (JSON.parse(readFileSync(path.join(out, file), "utf8")) as { results: ModeResult[] }).results;
    const [unpacked, packed] = ["unpacked", "packed"].map((m) => results.find((x) => x.mode === m)!);
    for (const x of [unpacked, packed]) {
      assert.equal(x.documents, 300);
      assert.equal(x.failedJobs, 0);
      assert.equal(x.pointsStored, x.chunks, `${x.mode}: points missing`);
      assert.ok(x.redisCpuSeconds > 0, `${x.mode}: Redis CPU not read`);
    }
    assert.equal(unpacked.jobs, 300);
    assert.ok(packed.jobs < 300 / 4, `packed into ${packed.jobs} jobs`);
    assert.ok(packed.redisCommandsPerChunk < unpacked.redisCommandsPerChunk / 2);
  },
);
