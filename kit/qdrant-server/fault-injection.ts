/**
 * Fault injection and upsert holding for reliability tests.
 *
 * - `refuse`: every open socket is destroyed and new connections are closed
 *   on accept, so clients see connection resets rather than HTTP answers.
 * - `down`: the listening socket is closed and open sockets destroyed, so
 *   connects fail with ECONNREFUSED, as when Qdrant is not running; clearing
 *   the fault listens again on the same port.
 * - `status`: the next `count` requests (or all, until cleared) get that HTTP
 *   status with a Qdrant-style error envelope, before auth and routing.
 * - `delay`: every request waits `ms` before being handled.
 * - `reject-points`: upserts holding any of `ids` get that HTTP status (after
 *   the body is read), other requests are served: a point Qdrant never takes.
 * - `unsupported`: requests whose JSON body has an object key `key` at any
 *   depth (e.g. "fusion") get 400 "not supported by the test server", as
 *   from a server without that feature: how a client's handling of a
 *   Qdrant refusal is tested now that the server answers what it sends.
 * - `holdUpserts()`: upsert requests wait before being applied until the
 *   returned release function is called.
 *
 * Trade-off: a held upsert whose client gave up (timeout, abort) is still
 * applied on release, like a real server that received the request; that is
 * exactly the "applied but not acknowledged" case retry logic must survive.
 */
import type { Socket } from "node:net";

export type Fault =
  | null
  | { kind: "refuse" }
  | { kind: "status"; status: number; count?: number }
  | { kind: "delay"; ms: number }
  | { kind: "down" }
  | { kind: "reject-points"; status: number; ids: Array<number | string> }
  | { kind: "unsupported"; key: string };

/** Whether `key` is an object key anywhere in a decoded JSON body (number arrays are skipped fast). */
function hasKey(value: unknown, key: string): boolean {
  if (Array.isArray(value)) return value.some((v) => typeof v === "object" && v !== null && hasKey(v, key));
  if (typeof value !== "object" || value === null) return false;
  return Object.entries(value).some(([k, v]) => k === key || hasKey(v, key));
}

export class FaultInjector {
  private fault: Fault = null;
  private statusRemaining: number | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly holds = new Set<Promise<void>>();
  private readonly releasers = new Set<() => void>();

  set(f: Fault): void {
    if (
      f &&
      (f.kind === "status" || f.kind === "reject-points") &&
      (!Number.isInteger(f.status) || f.status < 100 || f.status > 599)
    ) {
      throw new Error(`setFault: invalid HTTP status ${f.status}`);
    }
    if (f && f.kind === "status" && f.count !== undefined && (!Number.isInteger(f.count) || f.count < 1)) {
      throw new Error(`setFault: count must be a positive integer, got ${f.count}`);
    }
    this.fault = f;
    this.statusRemaining = f && f.kind === "status" && f.count !== undefined ? f.count : null;
    if (f?.kind === "refuse" || f?.kind === "down") this.destroyAllSockets();
  }

  get down(): boolean {
    return this.fault?.kind === "down";
  }

  /** Status to answer an upsert with when its body holds a rejected point id; null when none. */
  upsertStatus(body: unknown): number | null {
    if (this.fault?.kind !== "reject-points") return null;
    const b = body as { points?: Array<{ id?: unknown }>; batch?: { ids?: unknown[] } };
    const ids = [
      ...(Array.isArray(b?.points) ? b.points.map((p) => p?.id) : []),
      ...(Array.isArray(b?.batch?.ids) ? b.batch.ids : []),
    ];
    const rejected = new Set<unknown>(this.fault.ids);
    return ids.some((id) => rejected.has(id)) ? this.fault.status : null;
  }

  /** The refused feature's key when this body uses it; null when none. */
  unsupportedKey(body: unknown): string | null {
    if (this.fault?.kind !== "unsupported") return null;
    return hasKey(body, this.fault.key) ? this.fault.key : null;
  }

  get refusing(): boolean {
    return this.fault?.kind === "refuse";
  }

  /** Called for every accepted TCP connection. */
  track(socket: Socket): void {
    if (this.refusing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }

  destroyAllSockets(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  delayMs(): number {
    return this.fault?.kind === "delay" ? this.fault.ms : 0;
  }

  /** Status to inject for this request, consuming one from `count`; null when none. */
  takeStatus(): number | null {
    if (this.fault?.kind !== "status") return null;
    const status = this.fault.status;
    if (this.statusRemaining !== null) {
      this.statusRemaining--;
      if (this.statusRemaining <= 0) {
        this.fault = null;
        this.statusRemaining = null;
      }
    }
    return status;
  }

  hold(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.holds.add(gate);
    const releaser = () => {
      this.holds.delete(gate);
      this.releasers.delete(releaser);
      release();
    };
    this.releasers.add(releaser);
    return releaser;
  }

  /** Resolves once every hold that exists now has been released. */
  async waitForHolds(): Promise<void> {
    while (this.holds.size > 0) await Promise.all([...this.holds]);
  }

  releaseAll(): void {
    for (const r of [...this.releasers]) r();
  }

  reset(): void {
    this.fault = null;
    this.statusRemaining = null;
    this.releaseAll();
  }
}
