/** Keeps the Kubernetes manifests deployable and true to the worker: every file parses, both
 *  overlays build with kustomize, the worker's environment passes the worker's own config
 *  schema, probes, ports, drain deadline and security settings agree, and the KEDA ScaledObject
 *  scales on BullMQ's real backlog: its Redis keys come from BullMQ for the configured queue, and
 *  its formula is evaluated against a real queue the way KEDA's redis scaler measures keys. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { Ajv } from "ajv";
import { Queue, QueueKeys, Worker } from "bullmq";
import { configShape, parseConfig, type Config } from "../../shared/config.js";
import { QueueSet } from "../../shared/queue-set.js";
import { queueShards } from "../../shared/queue-shards.js";
import { redisConnection } from "../../shared/redis.js";
import { referenceRoot, repoRoot, uniqueQueue } from "../../kit/harness.js";
import {
  listFiles,
  onPath,
  parseYamlDocs,
  readText,
  readYaml,
  readYamlDocs,
  repoPath,
  run,
  type Doc,
} from "../support/ops-files.js";

const SKIP_KUBECTL = onPath("kubectl") ? false : "kubectl is not on PATH (needed for `kubectl kustomize`)";
const KEDA_DIR = path.join(referenceRoot, "reference", "keda");
const KEDA_CRDS = ["keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"];
const SKIP_NO_KEDA_CRDS = KEDA_CRDS.every((f) => existsSync(path.join(KEDA_DIR, f)))
  ? false
  : "skipped: KEDA's CRDs (../shared/reference/keda/*.yaml) are not present beside this checkout";
const KEDA_REDIS_DOC = path.join(KEDA_DIR, "docs-2.20", "scalers_redis-lists.md");
const SKIP_NO_KEDA_DOC = existsSync(KEDA_REDIS_DOC)
  ? false
  : "skipped: KEDA's redis scaler docs (../shared/reference/keda/docs-2.20) are not present beside this checkout";

/** Environment variables the manifests set that are not worker configuration keys. */
const DEPLOYMENT_ONLY_KEYS = new Set([
  "REDIS_ADDRESS", // host:port for KEDA's redis triggers; REDIS_URL is built from it
  "REDIS_PASSWORD", // from the Secret; part of REDIS_URL
  "CUDA_CACHE_PATH", // CUDA's kernel cache (read-only root filesystem)
]);

const secretExample = readYaml("k8s/secret.example.yaml");

function baseDocs(): Doc[] {
  const k = readYaml("k8s/base/kustomization.yaml");
  return (k.resources as string[]).flatMap((r) => readYamlDocs(`k8s/base/${r}`));
}

const built = new Map<string, Doc[]>();
function buildOverlay(overlay: string): Doc[] {
  if (!built.has(overlay)) {
    const r = run("kubectl", ["kustomize", `k8s/overlays/${overlay}`]);
    assert.equal(r.status, 0, `kubectl kustomize k8s/overlays/${overlay} failed:\n${r.stderr}`);
    built.set(overlay, parseYamlDocs(r.stdout, `kustomize ${overlay}`));
  }
  return built.get(overlay)!;
}

function only(docs: Doc[], kind: string): Doc {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0];
}

function named(docs: Doc[], kind: string, name: string): Doc {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(d, `${kind} ${name} is referenced but not defined`);
  return d;
}

function isSubset(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The container's environment as the kubelet builds it: envFrom first, then env in order with
 *  $(VAR) expanded from what is already defined; Secret values from secret.example.yaml. */
function containerEnv(c: Doc, docs: Doc[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    assert.ok(from.configMapRef, "only configMapRef is expected in envFrom (secrets go through secretKeyRef)");
    Object.assign(env, named(docs, "ConfigMap", from.configMapRef.name).data);
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = String(e.value).replace(/\$\((\w+)\)/g, (all: string, n: string) => env[n] ?? all);
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      assert.equal(
        ref.name,
        secretExample.metadata.name,
        `${e.name} reads Secret ${ref.name}, not the one in secret.example.yaml`,
      );
      const v = secretExample.stringData?.[ref.key];
      assert.ok(v !== undefined || ref.optional, `${e.name}: key ${ref.key} is missing from secret.example.yaml`);
      if (v !== undefined) env[e.name] = v;
    } else {
      assert.fail(`${e.name}: unexpected env source ${JSON.stringify(e.valueFrom)}`);
    }
  }
  for (const [k, v] of Object.entries(env))
    assert.doesNotMatch(v, /\$\(\w+\)/, `${k}="${v}" references a variable defined after it or nowhere`);
  return env;
}

function checkEnvKeys(env: Record<string, string>, what: string): Config {
  const unknown = Object.keys(env).filter((k) => !(k in configShape) && !DEPLOYMENT_ONLY_KEYS.has(k));
  assert.deepEqual(unknown, [], `${what}: variables the worker does not read (typo?)`);
  return parseConfig(env);
}

function quantity(q: string | number): number {
  const s = String(q);
  return s.endsWith("m") ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

/** Checks every worker resource of one build (or of the base files) and returns what overlays refine. */
function checkWorker(docs: Doc[], what: string) {
  assert.ok(
    !docs.some((d) => d.kind === "Secret"),
    `${what}: a Secret is part of the manifests; keep real secrets out of the repository`,
  );
  const deploy = only(docs, "Deployment");
  assert.equal(deploy.spec.replicas, undefined, "the Deployment sets replicas; KEDA owns the count");
  const pod = deploy.spec.template.spec;
  const podLabels = deploy.spec.template.metadata.labels as Record<string, string>;
  assert.ok(isSubset(deploy.spec.selector.matchLabels, podLabels));
  const c = pod.containers.find((x: Doc) => x.name === "worker");
  assert.ok(c, "no container named worker");
  const env = containerEnv(c, docs);
  const cfg = checkEnvKeys(env, what);

  const ports = new Map<string, number>((c.ports ?? []).map((p: Doc) => [p.name, p.containerPort]));
  assert.equal(ports.get("http"), cfg.HTTP_PORT, "the container port named http is not HTTP_PORT");
  const probes: Array<[string, string]> = [
    ["startupProbe", "/health/startup"],
    ["readinessProbe", "/health/ready"],
    ["livenessProbe", "/health/live"],
  ];
  for (const [probe, p] of probes) {
    const get = c[probe]?.httpGet;
    assert.ok(get, `${probe} is not an httpGet probe`);
    assert.equal(get.path, p, `${probe} path`);
    assert.ok(ports.has(get.port), `${probe} uses port ${get.port}, which the container does not name`);
  }
  const startupBudget = c.startupProbe.periodSeconds * c.startupProbe.failureThreshold;
  assert.ok(startupBudget >= 120, `the startup probe allows only ${startupBudget} s to load the model`);

  assert.ok(env.DRAIN_TIMEOUT_MS, "DRAIN_TIMEOUT_MS is not set in the ConfigMap");
  const drainMs = Number(env.DRAIN_TIMEOUT_MS);
  assert.ok(Number.isInteger(drainMs) && drainMs > 0);
  assert.ok(
    pod.terminationGracePeriodSeconds * 1000 >= drainMs + 10_000,
    `terminationGracePeriodSeconds=${pod.terminationGracePeriodSeconds} leaves no time after DRAIN_TIMEOUT_MS=${drainMs}`,
  );

  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.ok(pod.securityContext?.runAsUser > 0, "runAsUser must be a non-root uid");
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
  assert.ok(c.securityContext?.capabilities?.drop?.includes("ALL"), "capabilities are not dropped");

  const volumes = new Map<string, Doc>(pod.volumes.map((v: Doc) => [v.name, v]));
  const mounts = c.volumeMounts as Doc[];
  const tmp = mounts.find((m) => m.mountPath === "/tmp");
  assert.ok(tmp && volumes.get(tmp.name)?.emptyDir, "/tmp is not an emptyDir (the root filesystem is read-only)");
  const model = mounts.find((m) => m.mountPath === cfg.MODEL_DIR);
  assert.ok(model, `nothing is mounted at MODEL_DIR=${cfg.MODEL_DIR}`);
  assert.equal(model.readOnly, true);
  const claim = volumes.get(model.name)?.persistentVolumeClaim;
  assert.ok(claim, "the model volume is not a PersistentVolumeClaim");
  named(docs, "PersistentVolumeClaim", claim.claimName);

  assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, "cpu and memory requests");
  assert.ok(c.resources?.limits?.memory, "memory limit");

  const services = docs.filter((d) => d.kind === "Service");
  assert.deepEqual(services.map((s) => s.metadata.name).sort(), ["embed-query", "embed-worker-metrics"]);
  for (const svc of services) {
    assert.ok(isSubset(svc.spec.selector, podLabels), `the Service ${svc.metadata.name} selects no worker pod`);
    for (const p of svc.spec.ports)
      assert.ok(
        ports.has(p.targetPort),
        `Service ${svc.metadata.name} targetPort ${p.targetPort} is not a named container port`,
      );
  }
  // Search clients must reach only ready workers; Prometheus scrapes every pod, ready or not.
  assert.notEqual(services.find((s) => s.metadata.name === "embed-query")!.spec.publishNotReadyAddresses, true);
  assert.ok(cfg.QUERY_API === false, "the query API is off unless asked for");
  const pm = only(docs, "PodMonitor");
  assert.ok(isSubset(pm.spec.selector.matchLabels, podLabels), "the PodMonitor selects no worker pod");
  for (const ep of pm.spec.podMetricsEndpoints) {
    assert.ok(ports.has(ep.port), `PodMonitor port ${ep.port} is not a named container port`);
    assert.equal(ep.path, "/metrics");
  }
  const pdb = only(docs, "PodDisruptionBudget");
  assert.ok(isSubset(pdb.spec.selector.matchLabels, podLabels), "the PodDisruptionBudget selects no worker pod");
  assert.equal(pdb.spec.minAvailable, undefined, "minAvailable blocks node drains at one replica; use maxUnavailable");
  assert.ok(pdb.spec.maxUnavailable >= 1);

  const so = only(docs, "ScaledObject");
  assert.equal(so.spec.scaleTargetRef.name, deploy.metadata.name);
  const redisPassword = (c.env as Doc[]).find((e) => e.name === "REDIS_PASSWORD")?.valueFrom?.secretKeyRef;
  for (const trig of so.spec.triggers) {
    const ta = named(docs, "TriggerAuthentication", trig.authenticationRef?.name);
    const ref = ta.spec.secretTargetRef.find((r: Doc) => r.parameter === "password");
    assert.deepEqual(
      { name: ref?.name, key: ref?.key },
      { name: redisPassword?.name, key: redisPassword?.key },
      "KEDA and the worker read different Redis passwords",
    );
    assert.ok(
      env[trig.metadata.addressFromEnv],
      `addressFromEnv ${trig.metadata.addressFromEnv} is not in the worker's environment`,
    );
    assert.equal(
      `redis://:${env.REDIS_PASSWORD}@${env[trig.metadata.addressFromEnv]}/0`,
      env.REDIS_URL,
      "KEDA and the worker reach different Redis servers",
    );
  }
  return { deploy, pod, container: c, env, cfg };
}

test("every Kubernetes manifest parses and every kustomization resource exists", () => {
  const files = listFiles("k8s", /\.ya?ml$/);
  assert.ok(files.length >= 10, `only ${files.length} YAML files under k8s/`);
  for (const f of files) {
    const docs = readYamlDocs(f);
    assert.ok(docs.length > 0, `${f} is empty`);
    for (const d of docs) assert.ok(d.kind && d.apiVersion, `${f}: a document without kind/apiVersion`);
    if (path.basename(f) === "kustomization.yaml") {
      for (const r of [...(docs[0].resources ?? []), ...(docs[0].patches ?? []).map((p: Doc) => p.path)]) {
        assert.ok(existsSync(path.join(repoRoot, path.dirname(f), r)), `${f}: ${r} does not exist`);
      }
    }
  }
});

test("base manifests: worker environment, probes, drain deadline, security, selectors (no kubectl needed)", () => {
  const { cfg } = checkWorker(baseDocs(), "base");
  assert.equal(cfg.EXECUTION_PROVIDER, "cpu");
});

test("kustomize builds each overlay with the properties its workers need", { skip: SKIP_KUBECTL }, async (t) => {
  await t.test("gpu", () => {
    const { pod, container, cfg, deploy } = checkWorker(buildOverlay("gpu"), "gpu overlay");
    assert.equal(cfg.EXECUTION_PROVIDER, "cuda");
    assert.equal(String(container.resources.limits["nvidia.com/gpu"]), "1", "the GPU worker does not request one GPU");
    assert.match(container.image, /:[\w.-]*cuda[\w.-]*$/, "the GPU worker does not run the CUDA image");
    assert.ok(Object.keys(pod.nodeSelector ?? {}).length > 0, "no nodeSelector for GPU nodes");
    assert.ok(
      (pod.tolerations ?? []).some((t: Doc) => t.key === "nvidia.com/gpu"),
      "no toleration for GPU node taints",
    );
    assert.equal(deploy.spec.strategy.rollingUpdate.maxSurge, 0, "a surge pod would wait for a spare GPU");
  });
  await t.test("cpu", () => {
    const { container, cfg } = checkWorker(buildOverlay("cpu"), "cpu overlay");
    assert.equal(cfg.EXECUTION_PROVIDER, "cpu");
    assert.doesNotMatch(JSON.stringify(container.resources), /nvidia/);
    assert.doesNotMatch(container.image, /cuda|:latest$/);
    assert.match(container.image, /:[\w.-]+$/, "image tag is not pinned");
    const cpuLimit = quantity(container.resources.limits.cpu);
    assert.ok(cfg.INTRA_OP_THREADS > 0, "INTRA_OP_THREADS=0 means one thread per node core, not per pod");
    assert.ok(
      cfg.INTRA_OP_THREADS + cfg.TOKENIZER_THREADS <= cpuLimit,
      `INTRA_OP_THREADS + TOKENIZER_THREADS exceed the CPU limit ${cpuLimit}`,
    );
  });
});

// ---- KEDA ----

const baseConfigMap = named(baseDocs(), "ConfigMap", "embed-worker-config").data as Record<string, string>;
const scaledObject = readYaml("k8s/base/scaledobject.yaml");
const triggerAuth = readYaml("k8s/base/triggerauthentication.yaml");
const triggers = scaledObject.spec.triggers as Doc[];

/** BullMQ's key for each state of the configured queue, and the state a key name belongs to. */
function bullmqKeys(prefix: string, queue: string): Record<string, string> {
  return new QueueKeys(prefix).getKeys(queue);
}
function stateOfKey(key: string): string | undefined {
  const keys = bullmqKeys(baseConfigMap.QUEUE_PREFIX, baseConfigMap.QUEUE_NAME);
  return Object.keys(keys).find((state) => state !== "" && keys[state] === key);
}

test("ScaledObject: Redis keys are BullMQ's keys for the configured queue, and cover waiting, prioritized and active jobs", () => {
  assert.ok(
    baseConfigMap.QUEUE_NAME && baseConfigMap.QUEUE_PREFIX,
    "QUEUE_NAME and QUEUE_PREFIX must be set in the ConfigMap",
  );
  const states = new Map<string, string>();
  for (const t of triggers) {
    assert.equal(t.type, "redis");
    const state = stateOfKey(t.metadata.listName);
    assert.ok(
      state,
      `trigger ${t.name}: ${t.metadata.listName} is not a BullMQ key of queue ${baseConfigMap.QUEUE_PREFIX}:${baseConfigMap.QUEUE_NAME}`,
    );
    states.set(state, t.name);
  }
  for (const s of ["wait", "prioritized", "active", "delayed"])
    assert.ok(states.has(s), `no trigger reads BullMQ's ${s} key`);
  const spec = scaledObject.spec;
  assert.equal(spec.minReplicaCount, 0, "scale to zero");
  assert.ok(spec.maxReplicaCount >= 1 && spec.minReplicaCount <= spec.maxReplicaCount);
  assert.ok(spec.cooldownPeriod >= 60, "cooldownPeriod too short for a model that takes tens of seconds to load");
  const mod = spec.advanced.scalingModifiers;
  assert.ok(mod.formula && mod.target && mod.activationTarget !== undefined);
  const triggerNames = new Set(triggers.map((t) => t.name));
  const used = new Set(mod.formula.match(/[A-Za-z_]\w*/g));
  assert.deepEqual([...used].sort(), [...triggerNames].sort(), "the formula must use every trigger and nothing else");
  const down = spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown;
  assert.ok(down.stabilizationWindowSeconds >= 300, "scale-down is not slow");
  assert.ok(
    down.policies.every((p: Doc) => (p.type === "Pods" ? p.value <= 2 : p.value <= 50)),
    "scale-down removes too many workers at once",
  );
});

/** How KEDA's redis scaler measures a key: by its type, ZCARD for a sorted set, LLEN for a list
 *  (0 for a missing key). Other types would be a wrong key here, so they raise an error. */
const KEDA_KEY_LENGTH = `
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'zset' then return redis.call('ZCARD', KEYS[1]) end
if t == 'list' or t == 'none' then return redis.call('LLEN', KEYS[1]) end
return redis.error_reply('unexpected key type ' .. t .. ' for ' .. KEYS[1])`;

/** Evaluates the scalingModifiers formula: arithmetic, comparisons and ?: over trigger values. */
function evaluateFormula(formula: string, values: Record<string, number>): number {
  assert.match(formula, /^[\w\s+\-*/().?:<>=!]+$/, "the formula uses more than arithmetic, comparisons and ?:");
  for (const n of formula.match(/[A-Za-z_]\w*/g) ?? [])
    assert.ok(n in values, `the formula names ${n}, which is no trigger`);
  return Function(...Object.keys(values), `"use strict"; return (${formula});`)(...Object.values(values)) as number;
}

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const connection = redisConnection(redisUrl);
after(() => connection.quit());

test("the scaling formula equals BullMQ's backlog on a real queue, and stays above zero while jobs are active or delayed", async () => {
  const prefix = baseConfigMap.QUEUE_PREFIX;
  const mod = scaledObject.spec.advanced.scalingModifiers;
  const activation = Number(mod.activationTarget);

  async function measure(queueName: string) {
    const keys = bullmqKeys(prefix, queueName);
    const values: Record<string, number> = {};
    for (const t of triggers)
      values[t.name] = Number(await connection.eval(KEDA_KEY_LENGTH, 1, keys[stateOfKey(t.metadata.listName)!]));
    return { values, formula: evaluateFormula(mod.formula, values) };
  }

  async function scenario(setup: (queue: Queue, take: () => Promise<void>) => Promise<void>) {
    const name = uniqueQueue("keda");
    const queue = new Queue(name, { connection, prefix });
    const workerConnection = redisConnection(redisUrl);
    const worker = new Worker(name, null, { connection: workerConnection, prefix, autorun: false });
    try {
      await setup(queue, async () => {
        assert.ok(await worker.getNextJob("keda-test-token", { block: false }), "no job to take");
      });
      const counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
      return { counts, ...(await measure(name)) };
    } finally {
      await worker.close();
      await workerConnection.quit();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }

  const mixed = await scenario(async (queue, take) => {
    for (let i = 0; i < 4; i++) await queue.add("embed", { i });
    for (let i = 0; i < 2; i++) await queue.add("embed", { i }, { priority: 3 });
    await queue.add("embed", { later: true }, { delay: 60_000 });
    await take();
  });
  const c = mixed.counts;
  assert.ok(
    c.waiting > 0 && c.prioritized > 0 && c.active === 1 && c.delayed === 1,
    `scenario did not reach every state: ${JSON.stringify(c)}`,
  );
  assert.equal(
    mixed.formula,
    c.waiting + c.prioritized + c.active + 1,
    `formula ${mod.formula} with ${JSON.stringify(mixed.values)} vs BullMQ counts ${JSON.stringify(c)}`,
  );
  const byState = Object.fromEntries(triggers.map((t) => [stateOfKey(t.metadata.listName)!, mixed.values[t.name]]));
  assert.deepEqual(byState, { wait: c.waiting, prioritized: c.prioritized, active: c.active, delayed: c.delayed });

  const activeOnly = await scenario(async (queue, take) => {
    await queue.add("embed", { i: 0 });
    await take();
  });
  assert.deepEqual(activeOnly.counts, { waiting: 0, prioritized: 0, active: 1, delayed: 0 });
  assert.ok(activeOnly.formula > activation, "KEDA would scale to zero while a job is being processed");

  const delayedOnly = await scenario(async (queue) => {
    await queue.add("embed", { i: 0 }, { delay: 60_000 });
  });
  assert.ok(
    delayedOnly.formula > activation,
    "KEDA would scale to zero with retries waiting in delayed (only a worker moves them back)",
  );

  const empty = await scenario(async () => {});
  assert.equal(empty.formula, 0);
  assert.ok(!(empty.formula > activation), "KEDA would not scale an empty queue to zero");
});

/** A CRD's openAPIV3Schema as JSON Schema for ajv: objects with listed properties reject unknown
 *  fields (as `kubectl apply` does with strict field validation), int-or-string fields accept both. */
function crdSchema(file: string): Doc {
  const crd = parseYamlDocs(readFileSync(path.join(KEDA_DIR, file), "utf8"), file)[0];
  const version = crd.spec.versions.find((v: Doc) => v.storage) ?? crd.spec.versions[0];
  const convert = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(convert);
    if (!s || typeof s !== "object") return s;
    const out: Doc = {};
    for (const [k, v] of Object.entries(s as Doc)) if (!k.startsWith("x-kubernetes-")) out[k] = convert(v);
    const src = s as Doc;
    if (src["x-kubernetes-int-or-string"]) {
      delete out.type;
      out.anyOf = [{ type: "integer" }, { type: "string" }];
    }
    if (
      src.type === "object" &&
      src.properties &&
      src.additionalProperties === undefined &&
      !src["x-kubernetes-preserve-unknown-fields"]
    )
      out.additionalProperties = false;
    return out;
  };
  return convert(version.schema.openAPIV3Schema) as Doc;
}

test("ScaledObject and TriggerAuthentication validate against KEDA's CRD schemas", { skip: SKIP_NO_KEDA_CRDS }, () => {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const [so, ta] = KEDA_CRDS.map((f) => ajv.compile(crdSchema(f)));
  assert.ok(so(scaledObject), `ScaledObject: ${ajv.errorsText(so.errors, { separator: "\n" })}`);
  assert.ok(ta(triggerAuth), `TriggerAuthentication: ${ajv.errorsText(ta.errors, { separator: "\n" })}`);
  // The CRD's CEL rule, which ajv cannot run.
  assert.ok(scaledObject.spec.minReplicaCount <= (scaledObject.spec.maxReplicaCount ?? 100));
  // The validators reject what the API server would.
  const typo = structuredClone(scaledObject);
  typo.spec.cooldownPeriods = 300;
  assert.equal(so(typo), false, "an unknown field passed validation");
  const numeric = structuredClone(scaledObject);
  numeric.spec.triggers[0].metadata.listLength = 128;
  assert.equal(so(numeric), false, "a non-string trigger metadata value passed validation");
});

test("redis trigger metadata uses only parameters KEDA's redis scaler documents", { skip: SKIP_NO_KEDA_DOC }, () => {
  const doc = readFileSync(KEDA_REDIS_DOC, "utf8");
  const params = new Set([...doc.matchAll(/^- `(\w+)`/gm)].map((m) => m[1]));
  for (const p of ["listName", "listLength", "addressFromEnv", "password"])
    assert.ok(params.has(p), `could not read ${p} from the KEDA docs`);
  for (const t of triggers)
    for (const k of Object.keys(t.metadata))
      assert.ok(params.has(k), `trigger ${t.name}: ${k} is not a redis scaler parameter`);
  for (const r of triggerAuth.spec.secretTargetRef)
    assert.ok(params.has(r.parameter), `TriggerAuthentication parameter ${r.parameter} is not documented`);
});

// ---- backfill Job and Secret example ----

test("backfill Job: the worker's image, ConfigMap, Secret and model volume; a producer CLI command", async (t) => {
  const job = only(readYamlDocs("k8s/jobs/backfill-job.yaml"), "Job");
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, "Never");
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  const c = pod.containers[0];
  const cpuImage = readYaml("k8s/overlays/cpu/kustomization.yaml").images[0];
  assert.equal(c.image, `${cpuImage.newName}:${cpuImage.newTag}`, "the Job runs another image than the CPU workers");
  const cfg = checkEnvKeys(containerEnv(c, baseDocs()), "backfill Job");
  const script = c.command.find((a: string) => a.endsWith(".js"));
  assert.ok(script?.startsWith("dist/"), "the command does not run a compiled script");
  assert.ok(
    existsSync(repoPath(script.replace(/^dist\//, "").replace(/\.js$/, ".ts"))),
    `${script} has no source in the repository`,
  );
  assert.equal(c.args[0], "backfill");
  const mounts = new Map<string, Doc>((c.volumeMounts as Doc[]).map((m) => [m.mountPath, m]));
  assert.ok(mounts.get(cfg.MODEL_DIR)?.readOnly, "the tokenizer (MODEL_DIR) is not mounted read-only");
  const modelVolume = pod.volumes.find((v: Doc) => v.name === mounts.get(cfg.MODEL_DIR)!.name);
  assert.equal(modelVolume.persistentVolumeClaim?.claimName, readYaml("k8s/base/model-pvc.yaml").metadata.name);

  const hasBackfill = /\.command\("backfill"\)/.test(readText("producer/cli.ts"));
  await t.test(
    "the producer CLI accepts the Job's options",
    { skip: hasBackfill ? false : "producer/cli.ts has no backfill command in this checkout" },
    () => {
      const help = run("node", [path.join("dist", "producer", "cli.js"), "backfill", "--help"]);
      assert.equal(help.status, 0, help.stderr);
      for (const opt of (c.args as string[]).filter((a) => a.startsWith("--")))
        assert.ok(help.stdout.includes(opt), `backfill --help does not list ${opt}`);
    },
  );
});

test("secret.example.yaml holds placeholders only and no kustomization deploys it", () => {
  assert.equal(secretExample.kind, "Secret");
  for (const [k, v] of Object.entries(secretExample.stringData as Record<string, string>))
    assert.match(v, /^replace-with-/, `${k} does not look like a placeholder`);
  for (const f of listFiles("k8s", /^kustomization\.yaml$/)) {
    const k = readYaml(f);
    for (const r of [...(k.resources ?? []), ...(k.patches ?? []).map((p: Doc) => p.path)])
      assert.doesNotMatch(String(r), /secret/i, `${f} includes ${r}`);
    assert.equal(k.secretGenerator, undefined, `${f} generates a Secret`);
  }
});

const CLUSTER_SO = "k8s/examples/scaledobject-redis-cluster.yaml";
const KEDA_CLUSTER_DOC = path.join(KEDA_DIR, "docs-2.20", "scalers_redis-cluster-lists.md");

test(
  "Redis Cluster variant: validates against KEDA's CRD, uses only documented redis-cluster parameters, and differs from the base ScaledObject only in its triggers' type, address and hash-tagged keys",
  {
    skip:
      SKIP_NO_KEDA_CRDS ||
      (existsSync(KEDA_CLUSTER_DOC) ? false : "skipped: KEDA's redis-cluster scaler docs are not present"),
  },
  () => {
    const variant = readYaml(CLUSTER_SO);
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const so = ajv.compile(crdSchema(KEDA_CRDS[0]));
    assert.ok(so(variant), `${CLUSTER_SO}: ${ajv.errorsText(so.errors, { separator: "\n" })}`);
    const params = new Set([...readFileSync(KEDA_CLUSTER_DOC, "utf8").matchAll(/^- `(\w+)`/gm)].map((m) => m[1]));
    for (const p of ["addressesFromEnv", "listName", "listLength", "activationListLength", "password"])
      assert.ok(params.has(p), `could not read ${p} from the KEDA docs`);
    const prefix = "{bull}";
    const cfg = parseConfig({ ...baseConfigMap, REDIS_CLUSTER_NODES: "redis-0:6379", QUEUE_PREFIX: prefix });
    const keys = bullmqKeys(cfg.QUEUE_PREFIX, cfg.QUEUE_NAME);
    const vTriggers = variant.spec.triggers as Doc[];
    assert.deepEqual(
      vTriggers.map((t) => t.name),
      triggers.map((t) => t.name),
    );
    vTriggers.forEach((t, i) => {
      assert.equal(t.type, "redis-cluster");
      for (const k of Object.keys(t.metadata)) assert.ok(params.has(k), `trigger ${t.name}: ${k} is not documented`);
      assert.equal(t.metadata.addressesFromEnv, "REDIS_CLUSTER_NODES", "KEDA must read the workers' node list");
      const state = stateOfKey(triggers[i].metadata.listName)!;
      assert.equal(t.metadata.listName, keys[state], `trigger ${t.name}: not BullMQ's ${state} key under ${prefix}`);
      const { addressFromEnv: _a, listName: _l, ...baseRest } = triggers[i].metadata;
      const { addressesFromEnv: _b, listName: _m, ...rest } = t.metadata;
      assert.deepEqual(rest, baseRest, `trigger ${t.name}: thresholds differ from the base ScaledObject`);
      assert.deepEqual(t.authenticationRef, triggers[i].authenticationRef);
    });
    assert.deepEqual({ ...variant.spec, triggers: [] }, { ...scaledObject.spec, triggers: [] });
    assert.deepEqual(variant.metadata, scaledObject.metadata);
  },
);

const SHARDED_SO = "k8s/examples/scaledobject-redis-cluster-sharded.yaml";
const STATES = ["wait", "prioritized", "active", "delayed"] as const;

test(
  "sharded Redis Cluster variant: validates against KEDA's CRD, one documented redis-cluster trigger per shard and state on the shards' BullMQ keys, and a formula that sums the shards' backlog on a real sharded queue",
  {
    skip:
      SKIP_NO_KEDA_CRDS ||
      (existsSync(KEDA_CLUSTER_DOC) ? false : "skipped: KEDA's redis-cluster scaler docs are not present"),
  },
  async () => {
    const variant = readYaml(SHARDED_SO);
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const so = ajv.compile(crdSchema(KEDA_CRDS[0]));
    assert.ok(so(variant), `${SHARDED_SO}: ${ajv.errorsText(so.errors, { separator: "\n" })}`);
    const params = new Set([...readFileSync(KEDA_CLUSTER_DOC, "utf8").matchAll(/^- `(\w+)`/gm)].map((m) => m[1]));
    const n = Number(/QUEUE_SHARDS=(\d+)/.exec(readFileSync(repoPath(SHARDED_SO), "utf8"))?.[1]);
    assert.ok(n > 1, `${SHARDED_SO} does not say its QUEUE_SHARDS`);
    const cfg = parseConfig({
      ...baseConfigMap,
      REDIS_CLUSTER_NODES: "redis-0:6379",
      QUEUE_PREFIX: "{bull}",
      QUEUE_SHARDS: String(n),
    });
    const shards = queueShards(cfg);
    const vTriggers = variant.spec.triggers as Doc[];
    const place = new Map<string, { shard: number; state: (typeof STATES)[number] }>();
    const base = triggers[0];
    for (const t of vTriggers) {
      assert.equal(t.type, "redis-cluster");
      for (const k of Object.keys(t.metadata)) assert.ok(params.has(k), `trigger ${t.name}: ${k} is not documented`);
      assert.equal(t.metadata.addressesFromEnv, "REDIS_CLUSTER_NODES", "KEDA must read the workers' node list");
      const at = shards.flatMap((sh) =>
        STATES.filter((st) => bullmqKeys(sh.prefix, cfg.QUEUE_NAME)[st] === t.metadata.listName).map((state) => ({
          shard: sh.id,
          state,
        })),
      );
      assert.equal(at.length, 1, `trigger ${t.name}: ${t.metadata.listName} is no shard's BullMQ key`);
      place.set(t.name, at[0]);
      const { addressFromEnv: _a, listName: _l, ...baseRest } = base.metadata;
      const { addressesFromEnv: _b, listName: _m, ...rest } = t.metadata;
      assert.deepEqual(rest, baseRest, `trigger ${t.name}: thresholds differ from the base ScaledObject`);
      assert.deepEqual(t.authenticationRef, base.authenticationRef);
    }
    const covered = new Set([...place.values()].map((p) => `${p.shard}:${p.state}`));
    assert.equal(covered.size, 4 * n, "every shard needs one trigger per state, each once");
    assert.equal(place.size, vTriggers.length);
    const mod = variant.spec.advanced.scalingModifiers;
    const used = new Set(mod.formula.match(/[A-Za-z_]\w*/g));
    assert.deepEqual([...used].sort(), [...place.keys()].sort(), "the formula must use every trigger and nothing else");
    const { scalingModifiers: _s, ...advanced } = variant.spec.advanced;
    const { scalingModifiers: baseMod, ...baseAdvanced } = scaledObject.spec.advanced;
    assert.deepEqual(advanced, baseAdvanced);
    assert.deepEqual({ ...mod, formula: "" }, { ...baseMod, formula: "" });
    assert.deepEqual(
      { ...variant.spec, triggers: [], advanced: {} },
      { ...scaledObject.spec, triggers: [], advanced: {} },
    );

    // The formula on a real sharded queue (one Redis: the same keys under a test queue name).
    const name = uniqueQueue("keda-shards");
    const set = new QueueSet({ QUEUE_NAME: name, QUEUE_PREFIX: cfg.QUEUE_PREFIX, QUEUE_SHARDS: n }, connection);
    const workerConnection = redisConnection(redisUrl);
    const worker = new Worker(name, null, { connection: workerConnection, prefix: shards[0].prefix, autorun: false });
    try {
      await set.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: "embed", data: { docId: `w-${i}` } })));
      await set.addBulk(
        Array.from({ length: 6 }, (_, i) => ({ name: "embed", data: { docId: `p-${i}` }, opts: { priority: 3 } })),
      );
      await set.addBulk([{ name: "embed", data: { docId: "later" }, opts: { delay: 60_000 } }]);
      assert.ok(await worker.getNextJob("keda-test-token", { block: false }), "shard 0 has no job to take");
      const values: Record<string, number> = {};
      for (const [trigger, p] of place)
        values[trigger] = Number(
          await connection.eval(KEDA_KEY_LENGTH, 1, bullmqKeys(shards[p.shard].prefix, name)[p.state]),
        );
      const perShard = await set.countsByShard("waiting", "prioritized", "active", "delayed");
      const backlog = perShard.map((c) => c.waiting + c.prioritized + c.active);
      assert.equal(perShard.filter((c) => c.waiting + c.prioritized > 0).length, n, "a shard got no job");
      assert.equal(
        evaluateFormula(mod.formula, values),
        backlog.reduce((a, b) => a + b, 0) + 1,
        `formula ${mod.formula} with ${JSON.stringify(values)} vs BullMQ counts ${JSON.stringify(perShard)}`,
      );
      assert.ok(evaluateFormula(mod.formula, values) > Math.max(...backlog) + 1, "the formula scales on one shard");
    } finally {
      await worker.close();
      await workerConnection.quit();
      for (const sh of set.shards) await sh.queue.obliterate({ force: true });
      await set.close();
    }
  },
);
