/** The commands as a user runs them, as real child processes: the producer CLI (dry run,
 *  bad input, stats), and the worker's start-up failures and clean SIGTERM shutdown. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { Queue } from "bullmq";
import { missingCudaLibraries } from "../../worker/adapters/execution-provider.js";
import { redisConnection } from "../../shared/redis.js";
import { repoRoot, uniqueQueue, waitFor } from "../../kit/harness.js";
import { REDIS_URL, suiteFixture } from "../support/suite-fixture.js";

const producer = path.join(repoRoot, "dist", "producer", "cli.js");
const workerMain = path.join(repoRoot, "dist", "worker", "main.js");
const fx = suiteFixture({ redis: false, tmpPrefix: "cli-test-" });
const queues: string[] = [];
fx.onCleanup(async () => {
  const connection = redisConnection(REDIS_URL);
  for (const name of queues) {
    const q = new Queue(name, { connection });
    await q.obliterate({ force: true });
    await q.close();
  }
  await connection.quit();
});

// These processes write to a JSONL file: a QDRANT_URL meant for the integration suite must not reach them.
const env = (extra: Record<string, string>) => {
  const { QDRANT_URL: _url, QDRANT_API_KEY: _key, ...rest } = process.env;
  return { ...rest, MODEL_DIR: fx.modelDir, LOG_LEVEL: "warn", HTTP_PORT: "0", ...extra };
};
const run = (script: string, args: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, [script, ...args], { env: env(extra), encoding: "utf8", timeout: 60_000 });

test("ingest --dry-run --json reads, chunks and counts the samples without a queue", () => {
  const r = run(producer, ["ingest", path.join(repoRoot, "samples"), "--dry-run", "--json"], {
    REDIS_URL: "redis://127.0.0.1:1",
  });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.dryRun, true);
  assert.equal(s.documents, 12);
  assert.ok(s.chunks >= s.documents && s.tokens > 0);
  assert.equal(s.skipped, 0);
});

test("ingest reports bad records by file and line and still enqueues the good ones; stats counts them", async () => {
  const file = path.join(fx.tmp, "mixed.jsonl");
  await writeFile(
    file,
    [
      '{"id":"a","text":"First good line."}',
      "{not json",
      '{"text":"no id"}',
      '{"id":"b","text":"Second good line."}',
    ].join("\n"),
  );
  const queue = uniqueQueue("cli");
  queues.push(queue);
  const r = run(producer, ["ingest", file], { QUEUE_NAME: queue });
  assert.equal(r.status, 0, r.stderr);
  // Packing is on by default: the two one-chunk documents share one job.
  assert.match(r.stdout, /enqueued 2 documents as 1 jobs/);
  assert.match(r.stdout, /packed 2 small documents into 1 of those jobs/);
  assert.match(r.stdout, /skipped 2 records/);
  assert.match(r.stdout, /mixed\.jsonl:2: line 2: invalid JSON/);
  const st = run(producer, ["stats"], { QUEUE_NAME: queue });
  assert.equal(st.status, 0, st.stderr);
  const stats = JSON.parse(st.stdout);
  assert.equal(stats.waiting, 1);
  assert.equal(stats.backlog, 1);
  const unpacked = run(producer, ["ingest", file, "--no-pack"], { QUEUE_NAME: queue });
  assert.match(unpacked.stdout, /enqueued 2 documents as 2 jobs/);
  assert.equal(JSON.parse(run(producer, ["stats"], { QUEUE_NAME: queue }).stdout).waiting, 3);
});

test("a bad configuration prints every problem and exits 2", () => {
  const r = run(workerMain, [], { MAX_BATCH_SIZE: "lots", EXECUTION_PROVIDER: "tpu", OUTPUTS: "dense,pixels" });
  assert.equal(r.status, 2);
  for (const k of ["MAX_BATCH_SIZE", "EXECUTION_PROVIDER", "OUTPUTS"]) assert.match(r.stderr, new RegExp(`- ${k}:`));
});

test("EXECUTION_PROVIDER=cuda without the CUDA provider: the worker exits 1 naming what is missing", (t) => {
  if (missingCudaLibraries().length === 0) {
    t.skip("the CUDA provider libraries are installed here");
    return;
  }
  const r = run(workerMain, [], { EXECUTION_PROVIDER: "cuda", QUEUE_NAME: uniqueQueue("cuda") });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /CUDA provider is not installed: missing libonnxruntime_providers_cuda\.so/);
});

test("the worker embeds what the producer enqueued and exits 0 on SIGTERM", async () => {
  const queue = uniqueQueue("cli-w");
  queues.push(queue);
  const sinkFile = path.join(fx.tmp, "vectors.jsonl");
  const child = spawn(process.execPath, [workerMain], {
    env: env({ QUEUE_NAME: queue, SINK_FILE: sinkFile, LOG_LEVEL: "info" }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await waitFor(() => out.includes('"worker started"'), 30_000, "worker start");
  const r = run(producer, ["ingest", path.join(repoRoot, "samples", "standup-meeting.json")], { QUEUE_NAME: queue });
  assert.equal(r.status, 0, r.stderr);
  await waitFor(
    () => JSON.parse(run(producer, ["stats"], { QUEUE_NAME: queue }).stdout).completed === 1,
    30_000,
    "job completed",
  );
  child.kill("SIGTERM");
  assert.equal(await exited, 0, out);
  const lines = (await readFile(sinkFile, "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(lines.length >= 1);
  assert.ok(
    lines.every((p) => p.payload.doc_id === "standup-2024-05-14"),
    "points of another document in the sink",
  );
  assert.deepEqual(
    lines.map((p) => p.payload.chunk_index).sort((a, b) => a - b),
    [...lines.keys()],
  );
  assert.match(out, /"msg":"stopped"/);
  assert.ok(!/"text":"/.test(out.replace(/"msg":"[^"]*"/g, "")), "chunk text appeared in the worker's log");
});

test("ingest without a model folder exits 1 with one line saying what to set", () => {
  const r = run(producer, ["ingest", path.join(repoRoot, "samples")], {
    MODEL_DIR: path.join(fx.tmp, "no-model-here"),
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot read tokenizer .*no-model-here.*set MODEL_DIR/);
  assert.ok(!/\n\s+at /.test(r.stderr), "printed a stack trace");
});
