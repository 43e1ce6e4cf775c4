/** Who may call the query API and how fast. Keys come from QUERY_API_KEYS and
 *  QUERY_API_KEYS_FILE and are checked as `Authorization: Bearer <key>` in constant time.
 *  A key is never logged or exported: callers are named by `key:` plus the first 8 hex digits
 *  of the key's SHA-256. Without keys every request is allowed and callers are named by their
 *  address. The rate limit is a token bucket per caller counted in texts (one request of 32
 *  texts costs 32, a refused one 1): QUERY_RATE_LIMIT texts per second, bursts up to QUERY_RATE_BURST.
 *  With keys, failed authentications are limited per client address (QUERY_AUTH_FAILURES_PER_MINUTE). */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { TokenBucket } from "limiter";
import type { Config } from "../../shared/config.js";
import { ConfigError } from "../errors.js";

/** Shortest key accepted: a guessable key is worse than none, since it looks like protection. */
export const MIN_KEY_LENGTH = 16;
/** Idle callers' buckets are forgotten past this many callers (a full bucket is the default state). */
const MAX_BUCKETS = 10_000;

type AuthConfig = Pick<Config, "QUERY_API_KEYS" | "QUERY_API_KEYS_FILE">;
type LimitConfig = Pick<Config, "QUERY_RATE_LIMIT" | "QUERY_RATE_BURST" | "QUERY_AUTH_FAILURES_PER_MINUTE">;

const digest = (key: string) => createHash("sha256").update(key).digest();

/** A key is a Bearer token (RFC 6750 b64token): letters, digits and `-._~+/`, then optional `=`.
 *  So a key never holds a space (it could not be sent in the header) nor a `#` (the comment mark). */
const KEY_FORMAT = /^[A-Za-z0-9\-._~+/]+=*$/;

/** One key file line: blank, a comment (`# ...`), or a key optionally followed by whitespace and a comment. */
function keyOfLine(line: string): string | undefined {
  const text = line.trim();
  if (text === "" || text.startsWith("#")) return undefined;
  return text.replace(/\s+#.*$/, "");
}

/** The keys from the environment and the key file; throws ConfigError naming each problem and
 *  where it is (variable, or file and line number), never the key. */
export function loadApiKeys(cfg: AuthConfig): string[] {
  const keys: string[] = [];
  const problems: string[] = [];
  const add = (key: string, where: string) => {
    if (!KEY_FORMAT.test(key)) {
      const what = /\s/.test(key)
        ? "a space"
        : key.includes("#")
          ? "a #"
          : "a character other than letters, digits and -._~+/=";
      problems.push(`${where}: a key holds ${what}; keys are Bearer tokens (letters, digits, -._~+/ and trailing =)`);
    } else if (key.length < MIN_KEY_LENGTH)
      problems.push(`${where}: a key is shorter than ${MIN_KEY_LENGTH} characters`);
    else keys.push(key);
  };
  if (cfg.QUERY_API_KEYS !== undefined) {
    const listed = cfg.QUERY_API_KEYS.split(",").map((s) => s.trim());
    listed.forEach((k, i) => k && add(k, `QUERY_API_KEYS entry ${i + 1}`));
    // Set but empty (",,," or " "): starting without authentication would look protected and not be (issue 13).
    if (listed.every((k) => k === ""))
      problems.push("QUERY_API_KEYS is set but holds no key; unset it to run without keys");
  }
  if (cfg.QUERY_API_KEYS_FILE) {
    const before = keys.length + problems.length;
    readKeyFile(cfg.QUERY_API_KEYS_FILE)
      .split(/\r?\n/)
      .forEach((line, i) => {
        const k = keyOfLine(line);
        if (k !== undefined) add(k, `QUERY_API_KEYS_FILE line ${i + 1}`);
      });
    if (keys.length + problems.length === before)
      problems.push(`QUERY_API_KEYS_FILE: ${cfg.QUERY_API_KEYS_FILE} holds no key`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return keys;
}

function readKeyFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([
      `QUERY_API_KEYS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
}

export type AuthResult = { ok: true; caller: string } | { ok: false; reason: string };
export type RateResult = { ok: true } | { ok: false; retryAfterSeconds: number; reason: string };

export class QueryAuth {
  private readonly digests: Buffer[];
  private readonly buckets = new Buckets(() => this.newBucket());
  /** Failed authentications per client address: guessing keys costs a guesser time, not the worker. */
  private readonly failures = new Buckets(() => {
    const n = this.cfg.QUERY_AUTH_FAILURES_PER_MINUTE;
    return Object.assign(new TokenBucket({ bucketSize: n, tokensPerInterval: n, interval: "minute" }), { content: n });
  });

  constructor(
    keys: string[],
    private readonly cfg: LimitConfig,
  ) {
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

  /** 429 for an address that failed authentication QUERY_AUTH_FAILURES_PER_MINUTE times within the
   *  last minute, whatever key it sends now: checked before the key, so guessing gains nothing. */
  checkAddress(address: string): RateResult {
    if (!this.required || this.cfg.QUERY_AUTH_FAILURES_PER_MINUTE <= 0) return { ok: true };
    const b = this.failures.peek(address);
    if (!b) return { ok: true };
    b.drip();
    if (b.content >= 1) return { ok: true };
    const waitMs = b.getWaitTime(1);
    return {
      ok: false,
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
      reason:
        "too many failed authentications from this address " +
        `(QUERY_AUTH_FAILURES_PER_MINUTE=${this.cfg.QUERY_AUTH_FAILURES_PER_MINUTE}); retry in ${Math.ceil(waitMs)} ms`,
    };
  }

  /** Counts a failed authentication against `address`. */
  failedFrom(address: string): void {
    if (this.cfg.QUERY_AUTH_FAILURES_PER_MINUTE > 0) this.failures.get(address).tryRemoveTokens(1);
  }

  /** 429 before the body is read when the caller's bucket holds less than one text. */
  admit(caller: string): RateResult {
    if (this.cfg.QUERY_RATE_LIMIT <= 0) return { ok: true };
    const b = this.buckets.get(caller);
    b.drip();
    return b.content >= 1 ? { ok: true } : this.limited(b, 1);
  }

  /** A refused request (bad body, unknown model) costs one text, so refusals are rate-limited like work. */
  charge(caller: string): void {
    if (this.cfg.QUERY_RATE_LIMIT > 0) this.buckets.get(caller).tryRemoveTokens(1);
  }

  /** Takes `texts` from the caller's bucket, or says how long to wait. */
  take(caller: string, texts: number): RateResult {
    if (this.cfg.QUERY_RATE_LIMIT <= 0) return { ok: true };
    const burst = this.cfg.QUERY_RATE_BURST;
    if (texts > burst)
      return {
        ok: false,
        retryAfterSeconds: 0,
        reason:
          `the request has ${texts} texts, more than QUERY_RATE_BURST=${burst} allows at once; ` +
          "send fewer texts per request",
      };
    const bucket = this.buckets.get(caller);
    return bucket.tryRemoveTokens(texts) ? { ok: true } : this.limited(bucket, texts);
  }

  private limited(bucket: TokenBucket, texts: number): RateResult {
    const waitMs = bucket.getWaitTime(texts);
    return {
      ok: false,
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
      reason: `rate limit of ${this.cfg.QUERY_RATE_LIMIT} texts per second exceeded; retry in ${Math.ceil(waitMs)} ms`,
    };
  }

  private newBucket(): TokenBucket {
    const b = new TokenBucket({
      bucketSize: this.cfg.QUERY_RATE_BURST,
      tokensPerInterval: this.cfg.QUERY_RATE_LIMIT,
      interval: "second",
    });
    b.content = this.cfg.QUERY_RATE_BURST;
    return b;
  }
}

/** Token buckets by name, created full on first use; past MAX_BUCKETS names, the full ones are
 *  forgotten (a full bucket is the default state, so forgetting it changes nothing). */
class Buckets {
  private readonly map = new Map<string, TokenBucket>();

  constructor(private readonly create: () => TokenBucket) {}

  peek(name: string): TokenBucket | undefined {
    return this.map.get(name);
  }

  get(name: string): TokenBucket {
    let b = this.map.get(name);
    if (b) return b;
    if (this.map.size >= MAX_BUCKETS) this.forgetIdle();
    b = this.create();
    this.map.set(name, b);
    return b;
  }

  private forgetIdle(): void {
    for (const [name, b] of this.map) {
      b.drip();
      if (b.content >= b.bucketSize) this.map.delete(name);
    }
  }
}
