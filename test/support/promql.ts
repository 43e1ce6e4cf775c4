/** Static checks of the PromQL in the Grafana dashboard, with Prometheus' own lezer grammar.
 *  A query passes when it parses, every metric it selects is in the catalog (the worker's
 *  registry plus named third-party metrics), its label matchers use labels the metric has,
 *  rate()/increase() see only counters or histogram series, and histogram_quantile() sees
 *  `_bucket` series with `le` kept through every aggregation. Performs no I/O. */
import { parser } from "@prometheus-io/lezer-promql";
import type { SyntaxNode } from "@lezer/common";
import type { Registry } from "prom-client";

export type MetricKind = "counter" | "gauge" | "histogram" | "summary";

export interface CatalogEntry {
  family: string;
  kind: MetricKind;
  /** Which series of the family this name is. */
  part: "value" | "bucket" | "sum" | "count";
  /** Label names the exporter sets; undefined = not known (third-party metrics). */
  labels?: Set<string>;
}

export type Catalog = Map<string, CatalogEntry>;

/** Labels Prometheus or the Prometheus Operator attach to every scraped series. */
export const TARGET_LABELS = new Set(["instance", "job", "namespace", "pod", "container", "service", "endpoint"]);

/** Every series name a registry exports, with `_bucket`/`_sum`/`_count` for histograms and summaries. */
export async function catalogFromRegistry(registry: Registry): Promise<Catalog> {
  const catalog: Catalog = new Map();
  for (const m of await registry.getMetricsAsJSON()) {
    const kind = String(m.type) as MetricKind;
    const metric = registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined;
    const labels = new Set(metric?.labelNames ?? []);
    if (kind === "histogram" || kind === "summary") {
      if (kind === "histogram")
        catalog.set(`${m.name}_bucket`, { family: m.name, kind, part: "bucket", labels: new Set([...labels, "le"]) });
      else catalog.set(m.name, { family: m.name, kind, part: "value", labels: new Set([...labels, "quantile"]) });
      catalog.set(`${m.name}_sum`, { family: m.name, kind, part: "sum", labels });
      catalog.set(`${m.name}_count`, { family: m.name, kind, part: "count", labels });
    } else {
      catalog.set(m.name, { family: m.name, kind, part: "value", labels });
    }
  }
  return catalog;
}

/** Adds third-party metrics (kube-state-metrics, KEDA) whose labels this project does not control. */
export function withExternal(catalog: Catalog, external: Record<string, MetricKind>): Catalog {
  const out = new Map(catalog);
  for (const [name, kind] of Object.entries(external)) out.set(name, { family: name, kind, part: "value" });
  return out;
}

const GRAFANA_DURATIONS: Record<string, string> = { __rate_interval: "5m", __interval: "1m", __range: "1h" };

/** Replaces Grafana's interval macros with durations and the dashboard's own variables with a
 *  placeholder that is valid inside a label matcher; names any other `$variable`. */
export function expandGrafanaVariables(expr: string, variables: string[]): { expr: string; unknown: string[] } {
  const unknown: string[] = [];
  const out = expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\$(\w+)/g,
    (all, braced: string | undefined, bare: string | undefined) => {
      const name = (braced ?? bare)!;
      if (GRAFANA_DURATIONS[name]) return GRAFANA_DURATIONS[name];
      if (variables.includes(name)) return "placeholder";
      unknown.push(name);
      return all;
    },
  );
  return { expr: out, unknown };
}

export interface SelectedMetric {
  name: string;
  family: string;
}

export interface PromqlReport {
  problems: string[];
  metrics: SelectedMetric[];
}

const RATE_FUNCTIONS = new Set(["Rate", "Irate", "Increase", "Resets"]);

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

function descendants(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  const walk = (n: SyntaxNode) => {
    for (const c of children(n)) {
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

function functionName(call: SyntaxNode): string | undefined {
  return call.getChild("FunctionIdentifier")?.firstChild?.name;
}

function matcherLabels(
  selector: SyntaxNode,
  text: (n: SyntaxNode) => string,
): Array<{ label: string; op: string; value: string }> {
  const matchers = selector.getChild("LabelMatchers");
  if (!matchers) return [];
  return children(matchers)
    .filter((m) => m.name === "UnquotedLabelMatcher" || m.name === "QuotedLabelMatcher")
    .map((m) => {
      const labelNode = m.getChild("LabelName") ?? m.getChild("QuotedLabelName");
      const label = labelNode ? text(labelNode).replace(/^"|"$/g, "") : "";
      const op = m.getChild("MatchOp") ? text(m.getChild("MatchOp")!) : "";
      const strings = m.getChildren("StringLiteral");
      const value = strings.length > 0 ? text(strings[strings.length - 1]).slice(1, -1) : "";
      return { label, op, value };
    });
}

function selectorName(selector: SyntaxNode, text: (n: SyntaxNode) => string): string | undefined {
  const id = selector.getChild("Identifier") ?? selector.getChild("MetricName");
  if (id) return text(id);
  return matcherLabels(selector, text).find((m) => m.label === "__name__" && m.op === "=")?.value;
}

/** Checks one PromQL expression (Grafana variables already expanded) against a catalog. */
export function checkPromql(expr: string, catalog: Catalog): PromqlReport {
  const problems: string[] = [];
  const metrics: SelectedMetric[] = [];
  const tree = parser.parse(expr);
  const text = (n: SyntaxNode) => expr.slice(n.from, n.to);
  tree.iterate({
    enter: (n) => {
      if (n.type.isError)
        problems.push(
          `syntax error at offset ${n.from}: ${JSON.stringify(expr.slice(Math.max(0, n.from - 15), n.from + 15))}`,
        );
    },
  });
  if (problems.length > 0) return { problems, metrics };

  const top = tree.topNode;
  // Keyed by position: lezer hands out a new SyntaxNode object on every access.
  const entries = new Map<number, CatalogEntry>();
  const entryOf = (n: SyntaxNode) => entries.get(n.from);
  for (const sel of descendants(top, "VectorSelector")) {
    const name = selectorName(sel, text);
    if (!name) {
      problems.push(`selector ${text(sel)} has no fixed metric name`);
      continue;
    }
    const entry = catalog.get(name);
    if (entry) entries.set(sel.from, entry);
    if (!entry) {
      problems.push(`metric ${name} is not exported by the worker nor in the allow-list`);
      continue;
    }
    metrics.push({ name, family: entry.family });
    if (entry.labels) {
      for (const m of matcherLabels(sel, text)) {
        if (m.label !== "__name__" && !entry.labels.has(m.label) && !TARGET_LABELS.has(m.label)) {
          problems.push(`${name} has no label "${m.label}" (it has: ${[...entry.labels].join(", ") || "none"})`);
        }
      }
    }
  }

  for (const call of descendants(top, "FunctionCall")) {
    const fn = functionName(call);
    const selectors = descendants(call, "VectorSelector").filter((s) => entryOf(s));
    if (fn && RATE_FUNCTIONS.has(fn)) {
      for (const s of selectors) {
        const e = entryOf(s)!;
        if (e.kind === "gauge")
          problems.push(
            `${text(call.getChild("FunctionIdentifier")!)}() over gauge ${text(s)}: use the value or deriv()`,
          );
      }
    }
    if (fn === "HistogramQuantile") {
      for (const s of selectors) {
        const e = entryOf(s)!;
        if (e.kind !== "histogram" || e.part !== "bucket")
          problems.push(
            `histogram_quantile() over ${e.family} (${e.kind} ${e.part}), not a histogram's _bucket series`,
          );
      }
      for (const agg of descendants(call, "AggregateExpr")) {
        const mod = agg.getChild("AggregateModifier");
        const labels = mod ? descendants(mod, "LabelName").map(text) : [];
        const keepsLe = mod?.getChild("By")
          ? labels.includes("le")
          : mod?.getChild("Without")
            ? !labels.includes("le")
            : false;
        if (!keepsLe) problems.push(`histogram_quantile(): ${text(agg).slice(0, 40)}... drops the le label`);
      }
    }
  }
  return { problems, metrics };
}

/** Checks a dashboard query: its variables must be the dashboard's, then as checkPromql(). */
export function checkDashboardQuery(expr: string, variables: string[], catalog: Catalog): PromqlReport {
  const expanded = expandGrafanaVariables(expr, variables);
  const report = checkPromql(expanded.expr, catalog);
  return {
    ...report,
    problems: [...expanded.unknown.map((v) => `unknown Grafana variable $${v}`), ...report.problems],
  };
}

/** The metric and label of a Grafana `label_values(metric, label)` variable query. */
export function parseLabelValues(query: string): { metric: string; label: string } | undefined {
  const m =
    /^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{[^}]*\})?\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(
      query,
    );
  return m ? { metric: m[1], label: m[2] } : undefined;
}
