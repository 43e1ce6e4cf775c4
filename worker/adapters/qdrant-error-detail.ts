/** Reads an error thrown by the official Qdrant client: the HTTP status it carries (or that its
 *  message names) and Qdrant's own one-line reason. Shared by the sink, which turns it into a
 *  SinkError, and the search command, which turns it into a sentence for a person. Pure. */

export function errorStatus(err: unknown): number | undefined {
  const e = err as { status?: unknown; message?: string };
  if (typeof e?.status === "number") return e.status;
  const m = /Unexpected Response: (\d{3})/.exec(e?.message ?? "");
  return m ? Number(m[1]) : undefined;
}

/** Qdrant's own message (`status.error` of its JSON envelope) when it sent one, else the
 *  client's, on one line. */
export function qdrantErrorDetail(err: unknown): string {
  const data = (err as { data?: { status?: { error?: string } } })?.data;
  const detail = data?.status?.error ?? (err as Error)?.message ?? String(err);
  return detail.split("\n").slice(0, 3).join(" ");
}
