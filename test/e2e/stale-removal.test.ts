/** Stale-point removal end to end (issue 15): the producer CLI and a worker process on the shared
 *  Redis, writing to the strict Qdrant test server. A corpus ingested with `--fresh` into a new
 *  collection sends no delete request at all; the same documents ingested again, each now one
 *  chunk long, keep exactly their one point (the longer version's extra chunks removed) in fewer
 *  delete requests than documents (grouped), and a third, longer version overwrites and adds
 *  points with nothing removed that it wrote. Counts come from the server's request log and the
 *  worker's own `/metrics`. */
import { isPackData } from "../../shared/pack.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { docText } from "../../kit/corpus.js";
import { repoRoot, waitFor } from "../../kit/harness.js";
import { fleetQueue, scrapeMetric } from "../support/fleet.js";
import { workerFixture } from "../support/worker-fixture.js";

const fx = workerFixture();
const DOCS = 40;
const cli = path.join(repoRoot, "dist", "producer", "cli.js");

test("--fresh sends no delete; a shorter re-ingest keeps one point per document in grouped deletes", async (t) => {
  const f = fleetQueue(fx, "stale");
  const env = {
    REDIS_URL: "redis://127.0.0.1:6379",
    QUEUE_NAME: f.queue.name,
    MODEL_DIR: fx.modelDir,
    CHUNK_TOKENS: "16",
    CHUNK_OVERLAP_TOKENS: "0",
    LOG_LEVEL: "warn",
  };
  const w = await f.start({ CHUNK_TOKENS: "16", CHUNK_OVERLAP_TOKENS: "0", WORKER_CONCURRENCY: "32" });
  const dir = await mkdtemp(path.join(os.tmpdir(), "stale-e2e-"));
  fx.onCleanup(() => rm(dir, { recursive: true, force: true }));
  let jobsSoFar = 0;
  /** Ingests DOCS documents of `sentences` sentences each through the CLI and waits for the worker. */
  const ingest = async (version: number, sentences: number, flags: string[]) => {
    const file = path.join(dir, `v${version}.jsonl`);
    const lines = Array.from({ length: DOCS }, (_, i) =>
      JSON.stringify({ id: `d${i}`, text: docText(i + version, sentences) }),
    );
    await writeFile(file, lines.join("\n") + "\n");
    const { status, stdout, stderr } = spawnSync(process.execPath, [cli, "ingest", file, "--json", ...flags], {
      env: { PATH: process.env.PATH ?? "", ...env },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(status, 0, stderr);
    const summary = JSON.parse(stdout) as { documents: number; jobs: number; chunks: number };
    assert.equal(summary.documents, DOCS);
    jobsSoFar += summary.jobs;
    await waitFor(
      async () => (await f.queue.getJobCounts("completed")).completed === jobsSoFar,
      60_000,
      `version ${version}'s jobs completed`,
    );
    assert.equal((await f.queue.getJobCounts("failed")).failed, 0);
    return summary;
  };
  const deletes = () =>
    fx.server.requests.filter((r) => r.path === `/collections/${f.collection}/points/delete` && r.status === 200)
      .length;
  const chunksByDoc = () => {
    const by = new Map<string, number[]>();
    for (const p of fx.server.points(f.collection).values()) {
      const doc = String(p.payload.doc_id);
      by.set(
        doc,
        [...(by.get(doc) ?? []), Number(p.payload.chunk_index)].sort((a, b) => a - b),
      );
    }
    return by;
  };

  const v1 = await ingest(1, 6, ["--fresh"]);
  assert.ok(v1.chunks >= 2 * DOCS, `version 1 should be several chunks per document, got ${v1.chunks}`);
  assert.equal(deletes(), 0, "a --fresh ingest sent a delete request");
  assert.equal(await scrapeMetric(w.port, "embed_stale_removals_total", 'outcome="skipped"'), DOCS);
  assert.equal(await scrapeMetric(w.port, "embed_sink_delete_requests_total"), 0);

  const v2 = await ingest(2, 1, []);
  assert.equal(v2.chunks, DOCS, "version 2 should be one chunk per document");
  const after2 = chunksByDoc();
  assert.equal(after2.size, DOCS);
  for (const [doc, chunks] of after2) assert.deepEqual(chunks, [0], `${doc} kept the longer version's chunks`);
  const grouped = deletes();
  assert.ok(grouped >= 1 && grouped < DOCS, `${grouped} delete requests for ${DOCS} documents: not grouped`);
  assert.equal(await scrapeMetric(w.port, "embed_sink_delete_requests_total"), grouped);
  assert.equal(await scrapeMetric(w.port, "embed_stale_removals_total", 'outcome="removed"'), DOCS);

  const v3 = await ingest(3, 3, []);
  const after3 = chunksByDoc();
  assert.equal(
    [...after3.values()].reduce((n, c) => n + c.length, 0),
    v3.chunks,
    "a longer version lost points",
  );
  for (const [doc, chunks] of after3)
    assert.deepEqual(chunks, [...chunks.keys()], `${doc}: chunk indexes not contiguous`);
  t.diagnostic(
    `${DOCS} documents: v1 ${v1.chunks} chunks (--fresh, 0 deletes), v2 ${v2.chunks} chunks in ${grouped} delete ` +
      `requests, v3 ${v3.chunks} chunks in ${deletes() - grouped}`,
  );
  await w.child.stop();
});

test("backfill --fresh marks every document fresh, packed or not; without it none carries the field", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "stale-e2e-bf-"));
  fx.onCleanup(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "docs.jsonl");
  await writeFile(file, ["a", "b", "c"].map((id, i) => JSON.stringify({ id, text: docText(i, 2) })).join("\n") + "\n");
  for (const fresh of [true, false]) {
    const { queue, queueName } = fx.newQueue(fresh ? "bffresh" : "bfplain");
    const args = [
      cli,
      "backfill",
      file,
      "--no-progress",
      "--json",
      "--checkpoint",
      path.join(dir, `${queueName}.ckpt`),
    ];
    const { status, stderr } = spawnSync(process.execPath, fresh ? [...args, "--fresh"] : args, {
      env: {
        PATH: process.env.PATH ?? "",
        REDIS_URL: "redis://127.0.0.1:6379",
        QUEUE_NAME: queueName,
        MODEL_DIR: fx.modelDir,
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(status, 0, stderr);
    const jobs = await queue.getJobs(["prioritized", "waiting"], 0, -1);
    // Packing is on by default: the three small documents share one packed job; the mark is per document.
    const docs = jobs.flatMap((j) => (isPackData(j.data) ? (j.data.docs as Array<{ fresh?: boolean }>) : [j.data]));
    assert.equal(docs.length, 3);
    assert.ok(
      jobs.some((j) => isPackData(j.data)),
      "the backfill packed the small documents",
    );
    for (const d of docs)
      assert.equal(d.fresh, fresh ? true : undefined, `${queueName}: ${JSON.stringify(d).slice(0, 80)}`);
  }
});
