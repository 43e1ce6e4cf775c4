/** Shared test scaffolding: the generated test model (built once per machine into the OS
 *  temp folder), a fresh BullMQ queue name per test, a Qdrant target (the in-process strict
 *  test server, or a real Qdrant when QDRANT_URL is set), and the reference-material folder
 *  when it exists beside the repository. */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import net from "node:net";
import { parseConfig, type Config } from "../shared/config.js";
import { ensureTestModel, type TestModelFiles, type WriteTestModelOptions } from "./test-model/write-test-model.js";
import { startQdrantTestServer, type QdrantTestServer } from "./qdrant-server/qdrant-test-server.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** `../shared` beside the repository, if this checkout has it. */
export const referenceRoot = path.resolve(repoRoot, "..", "shared");
export const hasReference = existsSync(path.join(referenceRoot, "reference"));
export const SKIP_NO_REFERENCE =
  "skipped: ../shared (reference tokenizer and transcripts) is not present beside this checkout";

export async function testModel(opts: WriteTestModelOptions = {}, name = "default"): Promise<TestModelFiles> {
  return ensureTestModel(path.join(os.tmpdir(), "bge-m3-queue-worker-test-models", name), opts);
}

/** `dir` created with the default test model's tokenizer.json and config.json, for a test to add an ONNX file. */
export async function modelFolder(dir: string): Promise<string> {
  const src = await testModel();
  mkdirSync(dir, { recursive: true });
  for (const f of ["tokenizer.json", "config.json"]) copyFileSync(path.join(src.dir, f), path.join(dir, f));
  return dir;
}

export function uniqueQueue(prefix = "t"): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function testConfig(env: Record<string, string | undefined>): Config {
  return parseConfig({ LOG_LEVEL: "silent", HTTP_PORT: "0", BATCH_LINGER_MS: "2", UPSERT_LINGER_MS: "2", ...env });
}

export interface QdrantTarget {
  url: string;
  apiKey?: string;
  /** The in-process server (introspection, fault injection); undefined against a real Qdrant. */
  server?: QdrantTestServer;
  close(): Promise<void>;
}

export async function qdrantTarget(): Promise<QdrantTarget> {
  if (process.env.QDRANT_URL) {
    return { url: process.env.QDRANT_URL, apiKey: process.env.QDRANT_API_KEY, close: async () => {} };
  }
  const server = await startQdrantTestServer();
  return { url: server.url, server, close: () => server.close() };
}

export async function waitFor(
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A TCP port free right now on 127.0.0.1 (for child processes that must be told their port). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}
