/** Who may call the query API and how fast. Keys come from QUERY_API_KEYS and
 *  QUERY_API_KEYS_FILE and are checked as `Authorization: Bearer <key>` in constant time.
 *  A key is never logged or exported: callers are named by `key:` plus the first 8 hex digits
 *  of the key's SHA-256. Without keys every request is allowed and callers are named by their
 *  address. The rate limit is a token bucket per caller counted in texts (one request of 32
 *  texts costs 32): QUERY_RATE_LIMIT texts per second, bursts up to QUERY_RATE_BURST. */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { TokenBucket } from "limiter";
import type { Config } from "../../shared/config.js";
import { ConfigError } from "../../shared/errors.js";

/** Shortest key accepted: a guessable key is worse than none, since it looks like protection. */
export const MIN_KEY_LENGTH = 16;
/** Idle callers' buckets are forgotten past this many callers (a full bucket is the default state). */
const MAX_BUCKETS = 10_000;

type AuthConfig = Pick<Config, "QUERY_API_KEYS" | "QUERY_API_KEYS_FILE" | "QUERY_RATE_LIMIT" | "QUERY_RATE_BURST">;

const digest = (key: string) => createHash("sha256").update(key).digest();

/** The keys from the environment and the key file; throws ConfigError naming the problem (never the key). */
export function loadApiKeys(cfg: AuthConfig): string[] {
  const keys: string[] = [];
  const problems: string[] = [];
  const add = (key: string, where: string) => {
    if (key.length < MIN_KEY_LENGTH) problems.push(`${where}: a key is shorter than ${MIN_KEY_LENGTH} characters`);
    else keys.push(key);
  };
  for (const k of (cfg.QUERY_API_KEYS ?? "").split(",").map((s) => s.trim()).filter(Boolean)) add(k, "QUERY_API_KEYS");
  if (cfg.QUERY_API_KEYS_FILE) {
    let text: string;
    try {
      text = readFileSync(cfg.QUERY_API_KEYS_FILE, "utf8");
    } catch (err) {
      throw new ConfigError([`QUERY_API_KEYS_FILE: cannot read ${cfg.QUERY_API_KEYS_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
    const before = keys.length;
    text.split(/\r?\n/).forEach((line, i) => {
      const k = line.replace(/#.*/, "").trim();
      if (k) add(k, `QUERY_API_KEYS_FILE line ${i + 1}`);
    });
    if (keys.length === before && problems.length === 0) problems.push(`QUERY_API_KEYS_FILE: ${cfg.QUERY_API_KEYS_FILE} holds no key`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return keys;
}

export type AuthResult = { ok: true; caller: string } | { ok: false; reason: string };
export type RateResult = { ok: true } | { ok: false; retryAfterSeconds: number; reason: string };

export class QueryAuth {
  private readonly digests: Buffer[];
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(keys: string[], private readonly cfg: Pick<Config, "QUERY_RATE_LIMIT" | "QUERY_RATE_BURST">) {
    this.digests = keys.map(digest);
  }

  get required(): boolean {
    return this.digests.length > 0;
  }

  /** Checks the Authorization header; `address` names the caller when no keys are configured. */
  authenticate(header: string | undefined, address: string): AuthResult {
    if (!this.required) return { ok: true, caller: `addr:${address}` };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!m) return { ok: false, reason: "missing API key: send Authorization: Bearer <key>" };
    const d = digest(m[1]);
    // Compare against every key so the time taken does not tell which keys exist.
    let match = false;
    for (const k of this.digests) match = timingSafeEqual(k, d) || match;
    if (!match) return { ok: false, reason: "unknown API key" };
    return { ok: true, caller: `key:${d.subarray(0, 4).toString("hex")}` };
  }

  /** Takes `texts` from the caller's bucket, or says how long to wait. */
  take(caller: string, texts: number): RateResult {
    if (this.cfg.QUERY_RATE_LIMIT <= 0) return { ok: true };
    const burst = this.cfg.QUERY_RATE_BURST;
    if (texts > burst) return { ok: false, retryAfterSeconds: 0, reason: `the request has ${texts} texts, more than QUERY_RATE_BURST=${burst} allows at once; send fewer texts per request` };
    const bucket = this.bucket(caller);
    if (bucket.tryRemoveTokens(texts)) return { ok: true };
    const waitMs = bucket.getWaitTime(texts);
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)), reason: `rate limit of ${this.cfg.QUERY_RATE_LIMIT} texts per second exceeded; retry in ${Math.ceil(waitMs)} ms` };
  }

  private bucket(caller: string): TokenBucket {
    let b = this.buckets.get(caller);
    if (b) return b;
    if (this.buckets.size >= MAX_BUCKETS) this.forgetIdle();
    b = new TokenBucket({ bucketSize: this.cfg.QUERY_RATE_BURST, tokensPerInterval: this.cfg.QUERY_RATE_LIMIT, interval: "second" });
    b.content = this.cfg.QUERY_RATE_BURST;
    this.buckets.set(caller, b);
    return b;
  }

  /** Drops buckets that have refilled: forgetting them changes nothing for their callers. */
  private forgetIdle(): void {
    for (const [caller, b] of this.buckets) {
      b.drip();
      if (b.content >= b.bucketSize) this.buckets.delete(caller);
    }
  }
}
