/** pino JSON logs to stdout. Secrets (Redis passwords, Qdrant API keys) and chunk text are
 *  redacted by path, and URLs are logged only through `redactUrl`. Child loggers carry
 *  `{ jobId, batchId }` so one job's story can be grepped out of a busy worker. */
import { pino, type Logger } from "pino";

export type { Logger };

export const REDACT_PATHS = [
  "password",
  "*.password",
  "apiKey",
  "*.apiKey",
  "api_key",
  "*.api_key",
  "QDRANT_API_KEY",
  "*.QDRANT_API_KEY",
  "REDIS_URL",
  "*.REDIS_URL",
  "text",
  "*.text",
  "texts",
  "*.texts",
  "chunks[*].text",
  "*.chunks[*].text",
  "headers.authorization",
  "*.headers.authorization",
  'headers["api-key"]',
  '*.headers["api-key"]',
];

export function createLogger(
  opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {},
): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      name: opts.name,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** `redis://:secret@host:6379/0` -> `redis://:***@host:6379/0`. */
export function redactUrl(url: string | undefined): string | undefined {
  if (!url) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable url)";
  }
}
