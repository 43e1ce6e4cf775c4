/** The capacity model's formulae on cases worked out by hand, and its inputs read from the
 *  hand-written fixtures in test/fixtures/capacity (round numbers, not measurements): the queue
 *  cell chosen by job size then most workers, the ceiling row chosen by length and ColBERT
 *  setting, a file without a ceiling reported as not measured instead of guessed. */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { backlogBound, capacity, jobDataBytes, jsonSizes, type CapacityInput } from "../../bench/capacity/model.js";
import { ceilingConstants, gpuEstimate, hasCeiling, queueConstants } from "../../bench/capacity/inputs.js";
import { GPU_ESTIMATES } from "../../bench/e2e/gpu-figures.js";
import { repoRoot } from "../../kit/harness.js";

const fixtures = path.join(repoRoot, "test", "fixtures", "capacity");
const queueFixture = path.join(fixtures, "queue-results.fixture.json");
const ceilingFixture = path.join(fixtures, "ceiling-results.fixture.json");

const base: CapacityInput = {
  chunks: 1e9,
  tokensPerChunk: 302,
  gpus: 8,
  jobChunks: 10,
  colbert: false,
  gpuTokensPerSecond: 151_000,
  redisUtilization: 0.5,
  workerConcurrency: 64,
  queue: {
    bytesPerJob: 1000,
    bytesPerDataByte: 1.5,
    textBytesPerToken: 4,
    chunkJsonOverheadBytes: 100,
    jobJsonOverheadBytes: 300,
    redisCpuSecondsPerJob: 0.0005,
    distinctTokenRatio: 0.5,
    payloadOverheadBytes: 200,
  },
  ceiling: { mainCeilingTokensPerSec: 50_000, tokenizerTokensPerCpuSec: 60_000 },
  marks: { highWaterJobs: 1000, highWaterChunks: 32_000, bulkSize: 100, keptCompleted: 1000 },
  jsonBytesPerFloat: 20,
  jsonBytesPerSparseEntry: 15,
  denseDim: 1024,
  colbertDim: 1024,
};

test("Redis memory at the high-water mark: job data from tokens, bytes from the fit, the backfill's backlog bound", () => {
  // 300 content tokens x 4 bytes + 100 per chunk, x 10 chunks, + 300 per job.
  assert.equal(jobDataBytes(base.queue, 10, 302), 13_300);
  // min(1000 jobs, ceil(32000 / 10) = 3200) + one bulk of 100; with jobs of 64 chunks the chunk mark binds.
  assert.equal(backlogBound(base.marks, 10), 1100);
  assert.equal(backlogBound(base.marks, 64), 600);
  const r = capacity(base);
  assert.equal(r.redisBytesPerJob, 1000 + 1.5 * 13_300);
  assert.equal(r.peakJobsInRedis, 1100 + 1000);
  assert.equal(r.peakRedisBytes, 2100 * 20_950);
});

test("Redis load: jobs/s from the fleet's tokens/s, cores from the measured CPU per job, shards at the planned utilization", () => {
  const r = capacity(base);
  assert.equal(r.fleetTokensPerSecond, 1_208_000);
  assert.equal(r.chunksPerSecond, 4000);
  assert.equal(r.jobsPerSecond, 400);
  assert.equal(r.redisJobsPerCoreSecond, 2000);
  assert.equal(r.redisCores, 0.2);
  assert.equal(r.redisShards, 1);
  // 100 GPUs, one chunk per job: 50,000 jobs/s = 25 cores, 50 shards at half load.
  const big = capacity({ ...base, gpus: 100, jobChunks: 1 });
  assert.equal(big.jobsPerSecond, 50_000);
  assert.equal(big.redisCores, 25);
  assert.equal(big.redisShards, 50);
});

test("workers: processes and tokenizer threads per GPU from the ceiling, the backlog checked against jobs in flight", () => {
  const r = capacity(base);
  assert.equal(r.workerProcessesPerGpu, 4); // 151,000 / 50,000 = 3.02
  assert.equal(r.tokenizerThreadsPerGpu, 3); // 151,000 / 60,000 = 2.52
  assert.equal(r.inFlightJobs, 8 * 4 * 64);
  assert.equal(r.backlogCoversInFlight, false);
  assert.equal(r.coveringHighWaterJobs, 2 * 2048);
  assert.equal(r.coveringPeakRedisBytes, (4096 + 100 + 1000) * 20_950);
  const none = capacity({ ...base, ceiling: undefined });
  assert.equal(none.workerProcessesPerGpu, undefined);
  assert.equal(none.tokenizerThreadsPerGpu, undefined);
  assert.equal(none.inFlightJobs, 8 * 1 * 64); // at least one process per GPU
  assert.equal(none.backlogCoversInFlight, true);
});

test("Qdrant: points/s, stored vector bytes (dense float32, sparse 8 B per entry, ColBERT float16) and request JSON bytes", () => {
  const r = capacity(base);
  assert.equal(r.qdrantPointsPerSecond, 4000);
  assert.equal(r.storedVectorBytesPerPoint, 1024 * 4 + 150 * 8);
  assert.equal(r.requestBytesPerPoint, 1024 * 20 + 150 * 15 + 200 + 4 * 300);
  assert.equal(r.qdrantStoredBytesPerSecond, 4000 * 5296);
  assert.equal(r.qdrantRequestBytesPerSecond, 4000 * 24_130);
  assert.equal(r.totalStoredVectorBytes, 1e9 * 5296);
  const c = capacity({ ...base, colbert: true });
  assert.equal(c.storedVectorBytesPerPoint, 5296 + 302 * 1024 * 2);
  assert.equal(c.requestBytesPerPoint, 24_130 + 302 * 1024 * 20);
});

test("wall time: all tokens over the fleet's tokens/s", () => {
  assert.equal(capacity(base).wallSeconds, (1e9 * 302) / 1_208_000);
});

test("JSON sizes are computed from serialized float32 values, deterministic and in a plausible range", () => {
  const a = jsonSizes(1024, 250_002);
  assert.deepEqual(jsonSizes(1024, 250_002), a);
  assert.ok(a.perFloat > 10 && a.perFloat < 25, `per float ${a.perFloat}`);
  assert.ok(a.perSparseEntry > a.perFloat && a.perSparseEntry < a.perFloat + 10, `per entry ${a.perSparseEntry}`);
  // The worker's shortest float32 digits are shorter than JSON.stringify's double digits.
  const client = jsonSizes(1024, 250_002, "client");
  assert.ok(client.perFloat > a.perFloat + 5, `prebuilt ${a.perFloat}, client ${client.perFloat}`);
});

test("inputs: the queue cell nearest the job size with the most workers, every constant with its file and field", () => {
  const q = queueConstants(queueFixture, 20);
  assert.equal(q.constants.redisCpuSecondsPerJob, 0.0005); // jobs of 16, 3 workers (not the 1-worker cell)
  assert.equal(q.constants.bytesPerDataByte, 1.5);
  assert.ok(q.sourced.every((s) => s.source.startsWith("test/fixtures/capacity/queue-results.fixture.json ")));
  assert.ok(q.sourced.some((s) => s.source.endsWith("derived[2] (jobs of 16 chunks, 3 workers).redisCpuMsPerJobNet")));
  assert.equal(queueConstants(queueFixture, 50).constants.redisCpuSecondsPerJob, 0.001);
  assert.throws(() => queueConstants(ceilingFixture, 16), /not a bench:queue results file/);
});

test("inputs: the ceiling row nearest the chunk length with the same ColBERT setting; none is 'not measured'", () => {
  const off = ceilingConstants(ceilingFixture, 300, false);
  assert.deepEqual(off.constants, { mainCeilingTokensPerSec: 50_000, tokenizerTokensPerCpuSec: 60_000 });
  assert.match(off.sourced[0].source, /cases\[1\].*median\.ceilingTokensPerSecond$/);
  assert.equal(ceilingConstants(ceilingFixture, 300, true).constants?.mainCeilingTokensPerSec, 3000);
  assert.equal(ceilingConstants(ceilingFixture, 100, false).constants?.mainCeilingTokensPerSec, 200_000);
  const missing = ceilingConstants(undefined, 300, false);
  assert.equal(missing.constants, undefined);
  assert.equal(missing.missing, "not measured: run npm run bench:ceiling");
  assert.match(ceilingConstants(queueFixture, 300, false).missing ?? "", /^not measured: .*no usable ceiling rows/);
  assert.equal(hasCeiling({ bench: "ceiling", cases: [] }), true);
  assert.equal(hasCeiling({ granularities: [] }), false);
});

test("inputs: GPU names match the published estimates' table, never a re-typed figure", () => {
  const h100 = GPU_ESTIMATES.find((g) => g.gpu.startsWith("H100"))!;
  assert.equal(gpuEstimate("h100"), h100);
  assert.equal(
    gpuEstimate("A100"),
    GPU_ESTIMATES.find((g) => g.gpu === "A100"),
  );
  assert.throws(() => gpuEstimate("v100"), /not one of/);
});
