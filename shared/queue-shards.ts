/** Sharded queues (issue 16): one logical queue spread over QUEUE_SHARDS BullMQ queues, so it is
 *  no longer bounded by the one Redis core that serves one hash tag. Shard i is an ordinary BullMQ
 *  queue named QUEUE_NAME under a prefix of its own whose hash tag names the shard (`{bull}` →
 *  `{bull-0}`, `{bull-1}`, …; a prefix without a tag gets one: `bull` → `{bull-0}`): BullMQ's keys
 *  are `<prefix>:<queue>:<state>`, so every key of a shard shares that tag, hence one slot, as
 *  BullMQ's scripts need, and different shards hash to different slots. The tag of shard i is the
 *  first of `<tag>-<i>`, `<tag>-<i>-1`, `<tag>-<i>-2`, … whose slot lies in the i-th of QUEUE_SHARDS
 *  equal parts of the 16,384 slots: `redis-cli --cluster create` gives each master one contiguous
 *  equal range, so N shards on N masters land one per master instead of where CRC16 happens to
 *  put them. A document goes to the shard `shardFor(docId)` names: a stable hash of its id, so every
 *  part and every version of one document lands on one shard (the worker removes a document's
 *  stale points by version, which relies on its jobs sharing one queue). QUEUE_SHARDS=1 keeps
 *  QUEUE_PREFIX as it is: the single queue of earlier releases. Performs no I/O. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import calculateSlot from "cluster-key-slot";

export const CLUSTER_SLOTS = 16_384;

export interface QueueShard {
  /** 0 … QUEUE_SHARDS-1. */
  id: number;
  /** The BullMQ prefix of this shard's queue. */
  prefix: string;
  /** The cluster slot every key of this shard hashes to. */
  slot: number;
}

export interface ShardSettings {
  QUEUE_PREFIX: string;
  QUEUE_SHARDS: number;
}

/** The shard a document's jobs go to: the first 32 bits of SHA-256 of its id, modulo `shards`. */
export function shardFor(docId: string, shards: number): number {
  if (shards <= 1) return 0;
  return createHash("sha256").update(docId).digest().readUInt32BE(0) % shards;
}

/** What places a job: a single-document job's `docId`, or a packed job's documents (all of one
 *  shard: the producer's packer packs per shard), placed by the first. */
export type Placeable = { docId: string } | { docs: ReadonlyArray<{ docId: string }> };

export function placementDocId(data: Placeable): string {
  return "docs" in data ? data.docs[0].docId : data.docId;
}

/** Jobs grouped by the shard of their document (`placementDocId`), each group in the given order. */
export function groupByShard<J extends { data: Placeable }>(jobs: readonly J[], shards: number): Map<number, J[]> {
  const groups = new Map<number, J[]>();
  for (const j of jobs) {
    const id = shardFor(placementDocId(j.data), shards);
    const list = groups.get(id);
    if (list) list.push(j);
    else groups.set(id, [j]);
  }
  return groups;
}

/** `a{t}b` → ["a", "t", "b"]; a prefix without a tag is the tag itself: `bull` → ["", "bull", ""]. */
function splitTag(prefix: string): [string, string, string] {
  const m = /^([^{]*)\{([^}]+)\}(.*)$/.exec(prefix);
  return m ? [m[1], m[2], m[3]] : ["", prefix, ""];
}

/** The prefix of shard `id` of `shards` (see the header for the rule). */
export function shardPrefix(prefix: string, id: number, shards: number): string {
  assert.ok(Number.isInteger(id) && id >= 0 && id < shards, `shard ${id} of ${shards}; this is a bug`);
  if (shards === 1) return prefix;
  const [head, tag, tail] = splitTag(prefix);
  const lo = Math.floor((id * CLUSTER_SLOTS) / shards);
  const hi = Math.floor(((id + 1) * CLUSTER_SLOTS) / shards);
  // Each try lands in the range with probability 1/shards: a few hundred tries at most in practice.
  for (let k = 0; k < 1_000_000; k++) {
    const candidate = `${head}{${tag}-${id}${k === 0 ? "" : `-${k}`}}${tail}`;
    const slot = calculateSlot(candidate);
    if (slot >= lo && slot < hi) return candidate;
  }
  assert.fail(`no hash tag for shard ${id} of ${shards} in slots ${lo}-${hi - 1}; this is a bug`);
}

/** Every shard of the queue, in id order. */
export function queueShards(s: ShardSettings): QueueShard[] {
  return Array.from({ length: s.QUEUE_SHARDS }, (_, id) => {
    const prefix = shardPrefix(s.QUEUE_PREFIX, id, s.QUEUE_SHARDS);
    return { id, prefix, slot: calculateSlot(prefix) };
  });
}

/** The shards a worker consumes: those in `ids` (QUEUE_SHARD_IDS), in id order. */
export function servedShards(s: ShardSettings & { QUEUE_SHARD_IDS: readonly number[] }): QueueShard[] {
  const ids = new Set(s.QUEUE_SHARD_IDS);
  return queueShards(s).filter((sh) => ids.has(sh.id));
}

/** `0,2` → [0, 2]; problems (not a number, out of range, repeated) as messages naming QUEUE_SHARDS. */
export function parseShardIds(list: string, shards: number): number[] | string {
  const parts = list
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) return `"${list}" names no shard; use a comma list of shard ids such as 0,2`;
  const ids: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) return `"${p}" is not a shard id (a whole number from 0)`;
    const id = Number(p);
    if (id >= shards) return `shard ${id} does not exist with QUEUE_SHARDS=${shards} (ids are 0 to ${shards - 1})`;
    if (ids.includes(id)) return `shard ${id} is listed twice`;
    ids.push(id);
  }
  return ids.sort((a, b) => a - b);
}

/** WORKER_CONCURRENCY split over the shards a worker serves: shares differ by at most one, each at
 *  least 1, summing to `total` (or to `shards` when there are more shards than slots). */
export function concurrencyShares(total: number, shards: number): number[] {
  return Array.from({ length: shards }, (_, k) =>
    Math.max(1, Math.floor(total / shards) + (k < total % shards ? 1 : 0)),
  );
}
