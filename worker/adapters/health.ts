/** The worker's life cycle as the probes see it. `starting` until the model has loaded, run
 *  its warm-up batch and the sink is initialised; `running` while taking jobs; `draining`
 *  from SIGTERM until exit. Ready means running, Redis and the sink both answered within the
 *  check timeout, and BullMQ can fetch jobs (not a run of errors with no fetch, issue 16); the
 *  checks are cached briefly so probes and scrapes cannot flood Redis or Qdrant. */
export type Phase = "starting" | "running" | "draining" | "stopped";

export interface Dependency {
  name: string;
  check(): Promise<void>;
}

export interface HealthReport {
  ready: boolean;
  phase: Phase;
  checks: Record<string, { ok: boolean; error?: string }>;
}

export class HealthState {
  phase: Phase = "starting";
  private cached: { at: number; report: HealthReport } | undefined;
  private pending: Promise<HealthReport> | undefined;

  constructor(
    private readonly deps: Dependency[],
    private readonly opts: { timeoutMs: number; cacheMs?: number },
  ) {}

  get started(): boolean {
    return this.phase === "running" || this.phase === "draining";
  }

  async report(): Promise<HealthReport> {
    if (this.phase !== "running") return { ready: false, phase: this.phase, checks: {} };
    const cacheMs = this.opts.cacheMs ?? 1000;
    if (this.cached && Date.now() - this.cached.at < cacheMs)
      return { ...this.cached.report, phase: this.phase, ready: this.cached.report.ready && this.phase === "running" };
    this.pending ??= this.runChecks().finally(() => (this.pending = undefined));
    const report = await this.pending;
    // The phase may have changed while the checks ran.
    return { ...report, phase: this.phase, ready: report.ready && this.phase === "running" };
  }

  private async runChecks(): Promise<HealthReport> {
    const checks: HealthReport["checks"] = {};
    await Promise.all(
      this.deps.map(async (d) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            d.check(),
            new Promise(
              (_, reject) =>
                (timer = setTimeout(
                  () => reject(new Error(`no answer within ${this.opts.timeoutMs} ms`)),
                  this.opts.timeoutMs,
                )),
            ),
          ]);
          checks[d.name] = { ok: true };
        } catch (err) {
          checks[d.name] = { ok: false, error: (err as Error).message.slice(0, 200) };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const report = { ready: Object.values(checks).every((c) => c.ok), phase: this.phase, checks };
    this.cached = { at: Date.now(), report };
    return report;
  }
}
