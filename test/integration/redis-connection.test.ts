/** The one Redis client factory without a server (clients are created lazily and never
 *  connect): cluster mode gives an ioredis Cluster seeded from REDIS_CLUSTER_NODES whose every
 *  node gets REDIS_URL's credentials and TLS; single mode keeps REDIS_URL as it is. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { writeFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Cluster, Redis } from "ioredis";
import { parseClusterNodes, redisConnection } from "../../shared/redis.js";
import { ConfigError } from "../../shared/errors.js";

const lazy = { lazyConnect: true };

test("single Redis: REDIS_URL's host, password and TLS; BullMQ's maxRetriesPerRequest=null", () => {
  const c = redisConnection("rediss://user:s%40cret@cache.example:6380/2", {}, lazy);
  assert.ok(c instanceof Redis);
  const o = (c as Redis).options;
  assert.deepEqual([o.host, o.port, o.username, o.password, o.db], ["cache.example", 6380, "user", "s@cret", 2]);
  assert.deepEqual(o.tls, {});
  assert.equal(o.maxRetriesPerRequest, null);
  c.disconnect();
});

test("cluster: seeds from REDIS_CLUSTER_NODES; credentials, TLS CA and retries reach every node", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "redis-conn-"));
  try {
    const ca = path.join(dir, "ca.pem");
    await writeFile(ca, "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
    const c = redisConnection(
      "rediss://:pw@ignored.example:1",
      { REDIS_CLUSTER_NODES: "10.0.0.1:7000, node-b.svc:7001", REDIS_TLS_CA_FILE: ca },
      { ...lazy, commandTimeout: 500 },
    );
    assert.ok(c instanceof Cluster);
    const cluster = c as Cluster;
    const seeds = (cluster as unknown as { startupNodes: Array<{ host: string; port: number }> }).startupNodes;
    assert.deepEqual(
      seeds.map((n) => `${n.host}:${n.port}`),
      ["10.0.0.1:7000", "node-b.svc:7001"],
    );
    const ro = cluster.options.redisOptions!;
    assert.equal(ro.password, "pw");
    assert.equal(ro.username, undefined);
    assert.equal(String((ro.tls as { ca: Buffer }).ca), readFileSync(ca, "utf8"));
    assert.equal(ro.maxRetriesPerRequest, null);
    assert.equal(ro.commandTimeout, 500);
    assert.equal(cluster.options.lazyConnect, true);
    cluster.disconnect();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("cluster over plain redis:// has no TLS; a CA file without rediss:// and bad node lists are ConfigErrors", () => {
  const c = redisConnection("redis://127.0.0.1:6379", { REDIS_CLUSTER_NODES: "127.0.0.1:7000" }, lazy) as Cluster;
  assert.equal(c.options.redisOptions?.tls, undefined);
  assert.equal(c.options.redisOptions?.password, undefined);
  c.disconnect();
  assert.throws(
    () => redisConnection("redis://h:1", { REDIS_CLUSTER_NODES: "h:2", REDIS_TLS_CA_FILE: "/x.pem" }, lazy),
    (e: Error) =>
      e instanceof ConfigError && /REDIS_TLS_CA_FILE is set but REDIS_URL does not use rediss/.test(e.message),
  );
  assert.deepEqual(parseClusterNodes("a:1, b:2"), [
    { host: "a", port: 1 },
    { host: "b", port: 2 },
  ]);
  for (const bad of ["", "a", "a:99999", "a:1,b"])
    assert.throws(
      () => parseClusterNodes(bad),
      (e: Error) => e instanceof ConfigError && /REDIS_CLUSTER_NODES/.test(e.message),
    );
});
