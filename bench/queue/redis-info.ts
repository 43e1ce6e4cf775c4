/** Reading a Redis server's own accounting for the queue bench: INFO commandstats (calls and
 *  microseconds per command, script-inner commands included), INFO stats, memory and cpu.
 *  Parsing is pure; `snapshot` reads all four sections in one INFO call. The figures are
 *  server-wide, so the bench runs on a private redis-server no other client uses. */
import type { RedisClient } from "../../shared/redis.js";
import type { CommandCount } from "../lib/results-schema.js";

export interface RedisSnapshot {
  commands: Map<string, CommandCount>;
  totalCommandsProcessed: number;
  usedMemory: number;
  /** used_cpu_user + used_cpu_sys, and the main thread's share (Redis 7). */
  cpuSeconds: number;
  mainThreadCpuSeconds: number;
}

/** `key:value` lines of an INFO reply. */
export function infoFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** `cmdstat_evalsha:calls=3,usec=40,...` -> evalsha: {calls 3, usec 40}. Subcommands keep their `|` name. */
export function parseCommandStats(fields: Map<string, string>): Map<string, CommandCount> {
  const out = new Map<string, CommandCount>();
  for (const [k, v] of fields) {
    if (!k.startsWith("cmdstat_")) continue;
    const kv = Object.fromEntries(v.split(",").map((p) => p.split("=")));
    const command = k.slice("cmdstat_".length);
    out.set(command, { command, calls: Number(kv.calls), usec: Number(kv.usec) });
  }
  return out;
}

export function parseSnapshot(text: string): RedisSnapshot {
  const f = infoFields(text);
  const num = (k: string) => Number(f.get(k) ?? NaN);
  return {
    commands: parseCommandStats(f),
    totalCommandsProcessed: num("total_commands_processed"),
    usedMemory: num("used_memory"),
    cpuSeconds: num("used_cpu_user") + num("used_cpu_sys"),
    mainThreadCpuSeconds: num("used_cpu_user_main_thread") + num("used_cpu_sys_main_thread"),
  };
}

export async function snapshot(redis: RedisClient): Promise<RedisSnapshot> {
  return parseSnapshot(await redis.info("everything"));
}

/** Commands between two snapshots, minus `exclude` calls per command (the harness's own), most called first. */
export function commandDelta(
  before: RedisSnapshot,
  after: RedisSnapshot,
  exclude: Record<string, number> = {},
): CommandCount[] {
  const out: CommandCount[] = [];
  for (const [name, a] of after.commands) {
    const b = before.commands.get(name) ?? { calls: 0, usec: 0 };
    const calls = a.calls - b.calls - (exclude[name] ?? 0);
    if (calls > 0) out.push({ command: name, calls, usec: a.usec - b.usec });
  }
  return out.sort((x, y) => y.calls - x.calls);
}
