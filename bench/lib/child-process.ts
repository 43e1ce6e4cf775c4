/** Runs one measurement in its own Node process (`fork`) and talks to it over IPC, so each
 *  pipeline gets a fresh heap and its own threads, and its CPU use competes with the rest the
 *  way a separate service would. Messages are plain `{ type, ... }` objects. */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface Message {
  type: string;
  [key: string]: unknown;
}

export class BenchChildError extends Error {
  constructor(
    readonly script: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${script}: ${message}`, options);
    this.name = "BenchChildError";
  }
}

/** Children not yet exited, so a failing run can stop them (they hold the parent's stdout). */
/** Child entry points live in bench/children/; callers name them relative to that folder. */
const CHILDREN = new URL("../children/", import.meta.url);
const live = new Set<BenchChild>();

/** Kills every child still running (after a failure). */
export function killAllChildren(): void {
  for (const c of live) c.kill();
}

export class BenchChild {
  private readonly inbox: Message[] = [];
  private waiters: Array<{ type: string; resolve: (m: Message) => void; reject: (e: Error) => void }> = [];
  private exited: Error | undefined;
  readonly exit: Promise<number | null>;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly script: string,
  ) {
    proc.on("message", (m: Message) => {
      if (m.type === "error") return this.failAll(new BenchChildError(script, String(m.message)));
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.inbox.push(m);
    });
    this.exit = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        live.delete(this);
        this.failAll(
          new BenchChildError(script, `exited (code ${code}${signal ? `, signal ${signal}` : ""}) before replying`),
        );
        resolve(code);
      });
    });
  }

  /** Starts `script` (a file in bench/children/, compiled) with `env` added to the environment. */
  static start(script: string, env: Record<string, string>, execArgv: string[] = []): BenchChild {
    const file = fileURLToPath(new URL(script, CHILDREN));
    const proc = fork(file, [], {
      env: { ...process.env, ...env },
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const child = new BenchChild(proc, script);
    live.add(child);
    return child;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  kill(): void {
    this.proc.kill("SIGKILL");
  }

  send(msg: Message): void {
    this.proc.send(msg);
  }

  /** The next message of `type` (already received or still to come). */
  next<T extends Message>(type: string, timeoutMs = 30 * 60_000): Promise<T> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as T);
    if (this.exited) return Promise.reject(this.exited);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new BenchChildError(this.script, `no "${type}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        type,
        resolve: (m) => (clearTimeout(timer), resolve(m as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  async request<T extends Message>(msg: Message, replyType: string): Promise<T> {
    this.send(msg);
    return this.next<T>(replyType);
  }

  /** Waits for the process to end; kills it if it does not within `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exit;
    clearTimeout(timer);
  }

  private failAll(err: Error): void {
    this.exited ??= err;
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
  }
}

/** Child side: the parent's messages, and helpers to reply. */
export function childPort(): { send(m: Message): void; on(handler: (m: Message) => void | Promise<void>): void } {
  if (!process.send) throw new Error("this script runs as a benchmark child process (forked with IPC)");
  const send = (m: Message) => process.send!(m);
  // The parent is gone (crashed or killed): nobody will read results or close this process.
  process.on("disconnect", () => process.exit(1));
  return {
    send,
    on(handler) {
      process.on("message", (m: Message) => {
        Promise.resolve(handler(m)).catch((err: Error) => {
          send({ type: "error", message: err.stack ?? err.message });
        });
      });
    },
  };
}

/** Peak resident set size of this process so far (Linux VmHWM; elsewhere the OS's maxRSS). */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}
