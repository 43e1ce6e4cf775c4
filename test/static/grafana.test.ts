/** Keeps the Grafana dashboard true to the worker: every query parses as PromQL and selects only
 *  metrics the worker's registry exports (or named Kubernetes/KEDA metrics), with the right
 *  functions for each metric type; every worker metric is on the dashboard; the provisioning
 *  files point at the docker compose services. Also lints a live worker's /metrics with promtool
 *  when it is installed. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { Ajv } from "ajv";
import { Queue } from "bullmq";
import { createLogger } from "../../shared/logger.js";
import { JOB_NAME, JOB_SCHEMA_VERSION, type EmbedJobData } from "../../shared/job.js";
import { createMetrics, metricTotal } from "../../worker/metrics.js";
import { redisConnection } from "../../shared/redis.js";
import { startWorker } from "../../worker/app.js";
import { qdrantTarget, referenceRoot, testConfig, testModel, uniqueQueue, waitFor } from "../../kit/harness.js";
import { composeVolume, onPath, readCompose, readText, readYaml, run, type Doc } from "../support/ops-files.js";
import {
  catalogFromRegistry,
  checkDashboardQuery,
  parseLabelValues,
  withExternal,
  type Catalog,
} from "../support/promql.js";

const DASHBOARD = "grafana/dashboards/embedding-worker.json";

/** Metrics the dashboard may use that other exporters provide: kube-state-metrics and KEDA. */
const EXTERNAL_METRICS = {
  kube_deployment_spec_replicas: "gauge",
  kube_deployment_status_replicas: "gauge",
  keda_scaler_metrics_value: "gauge",
} as const;

interface Target {
  expr?: string;
  refId: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readText(DASHBOARD)) as {
  uid: string;
  title: string;
  templating: { list: Doc[] };
  panels: Panel[];
};
const variables = dashboard.templating.list.map((v) => String(v.name));
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== "row");

async function catalog(): Promise<Catalog> {
  return withExternal(await catalogFromRegistry(createMetrics().registry), EXTERNAL_METRICS);
}

function check(expr: string, cat: Catalog) {
  return checkDashboardQuery(expr, variables, cat);
}

test("dashboard: data source variable, unique panel ids, panels inside the grid without overlaps", () => {
  assert.ok(dashboard.uid && dashboard.title);
  const ds = dashboard.templating.list.find((v) => v.type === "datasource");
  assert.ok(ds, "no data source template variable");
  assert.equal(ds.query, "prometheus");
  const ref = `\${${ds.name}}`;
  const ids = allPanels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "duplicate panel ids");
  for (const p of queryPanels) {
    assert.equal(p.datasource?.uid, ref, `panel "${p.title}" does not use the ${ref} variable`);
    assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has no queries`);
    for (const t of p.targets) {
      assert.equal(t.datasource?.uid, ref, `panel "${p.title}" query ${t.refId} does not use ${ref}`);
      assert.ok(t.expr && t.expr.trim(), `panel "${p.title}" query ${t.refId} is empty`);
    }
  }
  const boxes = dashboard.panels.map((p) => ({ title: p.title, ...p.gridPos }));
  for (const b of boxes)
    assert.ok(b.x >= 0 && b.w > 0 && b.x + b.w <= 24 && b.h > 0, `panel "${b.title}" is outside the 24-column grid`);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i], boxes[j]];
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `panels "${a.title}" and "${b.title}" overlap`);
    }
  }
});

test("every dashboard query parses and selects only exported metrics, with functions that fit their types", async () => {
  const cat = await catalog();
  const problems: string[] = [];
  let queries = 0;
  for (const p of queryPanels) {
    for (const t of p.targets ?? []) {
      queries++;
      for (const problem of check(t.expr!, cat).problems) problems.push(`"${p.title}" ${t.refId}: ${problem}`);
    }
  }
  assert.ok(queries >= 20, `only ${queries} queries found`);
  assert.deepEqual(problems, []);
});

test("the query checker rejects bad queries (so the test above can fail)", async () => {
  const cat = await catalog();
  const bad: Array<[string, RegExp]> = [
    ["sum(rate(embed_chunks_totl[$__rate_interval]))", /embed_chunks_totl is not exported/],
    ["sum(rate(embed_chunks_total[$__rate_interval])", /syntax error/],
    ["sum by (lane) rate(embed_chunks_total[5m]))", /syntax error/],
    ["rate(embed_queue_jobs[5m])", /over gauge/],
    ["histogram_quantile(0.9, sum(rate(embed_job_latency_seconds_bucket[5m])))", /drops the le label/],
    ["histogram_quantile(0.9, rate(embed_chunks_total[5m]))", /not a histogram's _bucket/],
    ['embed_queue_jobs{status="waiting"}', /has no label "status"/],
    ['embed_queue_jobs{queue=~"$undefined_variable"}', /unknown Grafana variable \$undefined_variable/],
    ["sum(rate(embed_chunks_total[$undefined_interval]))", /unknown Grafana variable/],
    ['{__name__=~"embed_.*"}', /no fixed metric name/],
  ];
  for (const [expr, why] of bad) {
    const { problems } = check(expr, cat);
    assert.ok(
      problems.some((p) => why.test(p)),
      `${expr}: expected a problem matching ${why}, got ${JSON.stringify(problems)}`,
    );
  }
  const good =
    'histogram_quantile(0.99, sum by (stage, le) (rate(embed_stage_duration_seconds_bucket{stage="infer"}[$__rate_interval])))';
  assert.deepEqual(check(good, cat).problems, []);
});

test("every metric the worker exports is on the dashboard", async () => {
  const cat = await catalog();
  const used = new Set(
    queryPanels.flatMap((p) => (p.targets ?? []).flatMap((t) => check(t.expr!, cat).metrics.map((m) => m.family))),
  );
  const exported = (await createMetrics().registry.getMetricsAsJSON())
    .map((m) => m.name)
    .filter((n) => n.startsWith("embed_"));
  assert.ok(exported.length > 10);
  const missing = exported.filter((n) => !used.has(n));
  assert.deepEqual(missing, [], "worker metrics without a panel; add them to the dashboard");
  for (const name of ["nodejs_eventloop_lag_p99_seconds", ...Object.keys(EXTERNAL_METRICS)])
    assert.ok(used.has(name), `${name} is not on the dashboard`);
});

test("query variables use label_values() of an exported metric and label", async () => {
  const cat = await catalog();
  const queryVars = dashboard.templating.list.filter((v) => v.type === "query");
  assert.ok(queryVars.length > 0);
  for (const v of queryVars) {
    const q = typeof v.query === "string" ? v.query : String(v.query?.query ?? "");
    const lv = parseLabelValues(q);
    assert.ok(lv, `variable ${v.name}: "${q}" is not label_values(metric, label)`);
    const entry = cat.get(lv.metric);
    assert.ok(entry, `variable ${v.name}: metric ${lv.metric} is not exported`);
    assert.ok(entry.labels?.has(lv.label), `variable ${v.name}: ${lv.metric} has no label ${lv.label}`);
  }
});

const GRAFANA_SCHEMA = path.join(
  referenceRoot,
  "reference",
  "observability",
  "grafana-schema",
  "dashboard.jsonschema.json",
);

test(
  "dashboard validates against Grafana's dashboard JSON schema",
  {
    skip: existsSync(GRAFANA_SCHEMA)
      ? false
      : "skipped: Grafana's dashboard JSON schema (../shared/reference/observability/grafana-schema) is not present beside this checkout",
  },
  () => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(JSON.parse(readFileSync(GRAFANA_SCHEMA, "utf8")));
    const ok = validate(dashboard);
    assert.ok(ok, ajv.errorsText(validate.errors, { separator: "\n" }));
    assert.equal(
      validate({ ...dashboard, panels: [{ type: "timeseries", id: 1, unknownField: true }] }),
      false,
      "the schema accepted an unknown panel field",
    );
  },
);

test("provisioning: Prometheus data source and dashboard folder match the docker compose services", () => {
  const { services } = readCompose();
  const ds = readYaml("grafana/provisioning/datasources/prometheus.yaml");
  assert.equal(ds.apiVersion, 1);
  const prom = ds.datasources.find((d: Doc) => d.type === "prometheus");
  assert.ok(prom, "no prometheus data source");
  const url = new URL(prom.url);
  const promService = Object.entries(services).find(([, s]) => String(s.image ?? "").startsWith("prom/prometheus:"));
  assert.ok(promService, "no Prometheus service in docker-compose.yml");
  assert.equal(url.hostname, promService[0]);
  assert.ok(
    (promService[1].ports ?? []).some((p: string) => String(p).endsWith(`:${url.port}`)),
    `Prometheus does not listen on ${url.port}`,
  );

  const dp = readYaml("grafana/provisioning/dashboards/dashboards.yaml");
  const provider = dp.providers.find((p: Doc) => p.type === "file");
  assert.ok(provider, "no file dashboard provider");
  const grafana = Object.values(services).find((s) => String(s.image ?? "").startsWith("grafana/grafana:"));
  assert.ok(grafana, "no Grafana service in docker-compose.yml");
  const mounts = (grafana.volumes ?? []).map(composeVolume);
  const dashMount = mounts.find(
    (m: { source: string }) => path.normalize(m.source) === path.normalize("./grafana/dashboards"),
  );
  assert.ok(dashMount, "grafana/dashboards is not mounted into Grafana");
  assert.equal(
    dashMount.target,
    provider.options.path,
    "the dashboard provider reads a folder the dashboards are not mounted at",
  );
  for (const sub of ["datasources", "dashboards"]) {
    assert.ok(
      mounts.some(
        (m: { source: string; target: string }) =>
          path.normalize(m.source) === path.normalize(`./grafana/provisioning/${sub}`) &&
          m.target === `/etc/grafana/provisioning/${sub}`,
      ),
      `grafana/provisioning/${sub} is not mounted`,
    );
  }
});

/** promtool's lint findings on prom-client's default metrics, which this project does not name. */
const ACCEPTED_DEFAULT_METRIC_LINT = new Map([
  ["nodejs_active_handles_total", 'non-counter metrics should not have "_total" suffix'],
  ["nodejs_active_requests_total", 'non-counter metrics should not have "_total" suffix'],
  ["nodejs_active_resources_total", 'non-counter metrics should not have "_total" suffix'],
]);

/** The exposition blocks (HELP, TYPE and samples) of the families whose names start with `prefix`. */
function familiesWithPrefix(exposition: string, prefix: string): string {
  const out: string[] = [];
  let keep = false;
  for (const line of exposition.split("\n")) {
    const m = /^# (?:HELP|TYPE) (\S+)/.exec(line);
    if (m) keep = m[1].startsWith(prefix);
    if (keep && line) out.push(line);
  }
  return out.join("\n") + "\n";
}

test(
  "promtool check metrics accepts a running worker's /metrics",
  { skip: onPath("promtool") ? false : "promtool is not on PATH (install Prometheus' promtool to lint /metrics)" },
  async () => {
    const model = await testModel();
    const target = await qdrantTarget();
    const queueName = uniqueQueue("promtool");
    const cfg = testConfig({
      MODEL_DIR: model.dir,
      QUEUE_NAME: queueName,
      QDRANT_URL: target.url,
      QDRANT_API_KEY: target.apiKey,
      COLLECTION: `promtool_${queueName.replace(/-/g, "_")}`,
    });
    const connection = redisConnection(cfg.REDIS_URL);
    const queue = new Queue(queueName, { connection, prefix: cfg.QUEUE_PREFIX });
    const worker = await startWorker(cfg, { log: createLogger({ level: "silent" }), httpPort: 0 });
    try {
      // One real job, so histograms and labelled counters carry samples, not only HELP/TYPE lines.
      const data: EmbedJobData = {
        v: JOB_SCHEMA_VERSION,
        docId: "promtool-doc",
        part: 0,
        parts: 1,
        docHash: "h",
        enqueuedAt: Date.now(),
        metadata: {},
        chunks: [{ index: 0, text: "metrics for promtool", metadata: {} }],
      };
      await queue.add(JOB_NAME, data, { jobId: "promtool-doc-0" });
      await waitFor(
        async () => (await metricTotal(worker.metrics, "embed_jobs_total")) >= 1,
        20_000,
        "the job to finish",
      );
      const res = await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /^embed_stage_duration_seconds_bucket\{/m);

      const own = run("promtool", ["check", "metrics"], { input: familiesWithPrefix(text, "embed_") });
      assert.equal(own.status, 0, `promtool check metrics on the embed_ metrics:\n${own.stdout}${own.stderr}`);

      const all = run("promtool", ["check", "metrics"], { input: text });
      // Exit 3 = lint findings only; 1 = the exposition did not parse.
      assert.ok(all.status === 0 || all.status === 3, `promtool exit ${all.status}:\n${all.stdout}${all.stderr}`);
      const findings = `${all.stdout}\n${all.stderr}`
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean);
      for (const f of findings) {
        const name = f.split(" ")[0];
        assert.ok(
          ACCEPTED_DEFAULT_METRIC_LINT.get(name) && f.includes(ACCEPTED_DEFAULT_METRIC_LINT.get(name)!),
          `unexpected promtool finding: ${f}`,
        );
      }
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await connection.quit();
      await target.close();
    }
  },
);
