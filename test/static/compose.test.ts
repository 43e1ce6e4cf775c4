/** Keeps docker-compose.yml runnable: references between services, volumes, bind mounts and
 *  build contexts resolve; images are pinned; host ports are distinct; the worker environments
 *  pass the worker's config schema and outlast its drain deadline; Prometheus scrapes the worker
 *  services on HTTP_PORT. Runs `docker-compose config` and `promtool check config` when installed. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { parseConfig } from "../../shared/config.js";
import {
  composeVolume,
  isBindSource,
  onPath,
  readCompose,
  readText,
  readYaml,
  repoPath,
  run,
  type Doc,
} from "../support/ops-files.js";

const { services, volumes } = readCompose();
const PROMETHEUS_CONFIG = "deploy/prometheus/prometheus.yml";

/** Services that run the worker: they set HTTP_PORT for /metrics and /health. */
const workerServices = Object.entries(services).filter(
  ([, s]) => s.environment?.HTTP_PORT !== undefined && !s.entrypoint,
);

function durationSeconds(d: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  assert.ok(m && (m[1] || m[2]), `cannot read duration ${d}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}

function dependsOn(s: Doc): Record<string, Doc> {
  if (!s.depends_on) return {};
  if (Array.isArray(s.depends_on))
    return Object.fromEntries(s.depends_on.map((n: string) => [n, { condition: "service_started" }]));
  return s.depends_on as Record<string, Doc>;
}

/** Whether the image a compose service builds declares a HEALTHCHECK. */
function builtImageHasHealthcheck(s: Doc): boolean {
  if (!s.build) return false;
  const dockerfile = path.join(s.build.context ?? ".", s.build.dockerfile ?? "Dockerfile");
  return /^HEALTHCHECK\s/m.test(readText(dockerfile));
}

test("docker-compose.yml: the expected services exist, workers among them", () => {
  for (const name of ["redis", "qdrant", "worker", "worker-gpu", "producer", "prometheus", "grafana"])
    assert.ok(services[name], `no ${name} service`);
  assert.deepEqual(workerServices.map(([n]) => n).sort(), ["worker", "worker-gpu"]);
  assert.equal(services.worker.profiles, undefined, "the CPU worker must start by default");
  assert.deepEqual(services["worker-gpu"].profiles, ["gpu"]);
  assert.deepEqual(services.producer.profiles, ["producer"]);
});

test("depends_on names existing services, and service_healthy waits only on services with a healthcheck", () => {
  for (const [name, s] of Object.entries(services)) {
    for (const [dep, cond] of Object.entries(dependsOn(s))) {
      assert.ok(services[dep], `${name} depends on ${dep}, which does not exist`);
      if (cond?.condition === "service_healthy") {
        assert.ok(
          services[dep].healthcheck || builtImageHasHealthcheck(services[dep]),
          `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`,
        );
      }
    }
  }
  for (const [name, s] of workerServices) {
    const deps = dependsOn(s);
    assert.ok(deps.redis && deps.qdrant, `${name} does not depend on redis and qdrant`);
  }
  for (const name of ["redis", "qdrant", "prometheus", "grafana"])
    assert.ok(services[name].healthcheck, `${name} has no healthcheck`);
  for (const [name, s] of workerServices) assert.ok(builtImageHasHealthcheck(s), `${name}'s image has no HEALTHCHECK`);
});

test("named volumes are declared, bind mounts and build contexts exist in the repository", () => {
  const declared = new Set(Object.keys(volumes ?? {}));
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const { source, target } = composeVolume(v);
      assert.ok(target.startsWith("/"), `${name}: volume target ${target} is not absolute`);
      if (!source) continue;
      if (isBindSource(source)) {
        assert.ok(!path.isAbsolute(source), `${name}: bind mount ${source} is an absolute host path`);
        assert.ok(
          existsSync(repoPath(source)),
          `${name}: bind mount source ${source} does not exist in the repository`,
        );
      } else {
        assert.ok(declared.has(source), `${name}: named volume ${source} is not declared under volumes:`);
      }
    }
    if (s.build) {
      const context = s.build.context ?? ".";
      assert.ok(existsSync(repoPath(context)), `${name}: build context ${context} does not exist`);
      assert.ok(
        existsSync(repoPath(path.join(context, s.build.dockerfile ?? "Dockerfile"))),
        `${name}: Dockerfile ${s.build.dockerfile} does not exist`,
      );
    }
  }
});

test("every image is pinned to an explicit version tag", () => {
  const images = Object.entries(services).filter(([, s]) => s.image);
  assert.ok(images.length >= 5);
  for (const [name, s] of images) {
    const image = String(s.image);
    const m = /^(?<repo>[^@]+?)(?::(?<tag>[^:/@]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(image);
    assert.ok(m?.groups?.tag || image.includes("@sha256:"), `${name}: image ${image} has no tag`);
    assert.notEqual(m!.groups!.tag, "latest", `${name}: image ${image} uses latest`);
    if (!s.build) assert.match(m!.groups!.tag ?? "", /\d/, `${name}: image ${image} is not pinned to a version`);
  }
  const built = Object.entries(services).filter(([, s]) => s.build && !s.image);
  assert.deepEqual(
    built.map(([n]) => n),
    [],
    "built services without an image tag",
  );
});

test("host ports are distinct across services and profiles", () => {
  const seen = new Map<string, string>();
  for (const [name, s] of Object.entries(services)) {
    for (const p of s.ports ?? []) {
      const parts = String(p).split(":");
      assert.ok(parts.length >= 2, `${name}: port ${p} publishes on a random host port`);
      const host = parts.slice(0, -1).join(":");
      assert.ok(!seen.has(host), `host port ${host} is used by ${seen.get(host)} and ${name}`);
      seen.set(host, name);
    }
  }
});

test("worker environments pass the worker's config schema and the stop grace period outlasts the drain deadline", () => {
  for (const [name, s] of workerServices) {
    const env = Object.fromEntries(
      Object.entries(s.environment as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
    );
    const cfg = parseConfig(env);
    assert.equal(cfg.EXECUTION_PROVIDER, name === "worker-gpu" ? "cuda" : "cpu");
    const drainMs = Number(env.DRAIN_TIMEOUT_MS);
    assert.ok(drainMs > 0, `${name}: DRAIN_TIMEOUT_MS is not set`);
    assert.ok(s.stop_grace_period, `${name}: no stop_grace_period (the default 10 s kills in-flight jobs)`);
    assert.ok(
      durationSeconds(s.stop_grace_period) * 1000 >= drainMs + 10_000,
      `${name}: stop_grace_period ${s.stop_grace_period} does not outlast DRAIN_TIMEOUT_MS=${drainMs}`,
    );
    assert.ok(
      (s.volumes ?? [])
        .map(composeVolume)
        .some((v: { target: string; readOnly: boolean }) => cfg.MODEL_DIR.startsWith(v.target + "/") && v.readOnly),
      `${name}: MODEL_DIR ${cfg.MODEL_DIR} is not on a read-only mount`,
    );
  }
  const gpu = services["worker-gpu"];
  assert.equal(gpu.build.dockerfile, "Dockerfile.cuda");
  const devices = gpu.deploy?.resources?.reservations?.devices ?? [];
  assert.ok(
    devices.some((d: Doc) => d.driver === "nvidia" && d.capabilities?.includes("gpu")),
    "worker-gpu reserves no NVIDIA GPU",
  );
  assert.deepEqual(
    parseConfig(services.producer.environment).QUEUE_NAME,
    parseConfig(services.worker.environment).QUEUE_NAME,
    "producer and worker use different queues",
  );
});

test("Prometheus config is mounted and scrapes every worker service on HTTP_PORT", () => {
  const prom = services.prometheus;
  const configFlag = (prom.command as string[]).find((a) => a.startsWith("--config.file="));
  assert.ok(configFlag, "prometheus has no --config.file");
  const mount = (prom.volumes as string[])
    .map(composeVolume)
    .find((v) => path.normalize(v.source) === path.normalize(`./${PROMETHEUS_CONFIG}`));
  assert.ok(mount, `${PROMETHEUS_CONFIG} is not mounted into prometheus`);
  assert.equal(mount.target, configFlag.split("=")[1]);

  const cfg = readYaml(PROMETHEUS_CONFIG);
  const targets: string[] = cfg.scrape_configs.flatMap((sc: Doc) =>
    (sc.static_configs ?? []).flatMap((s: Doc) => s.targets),
  );
  for (const [name, s] of workerServices) {
    const t = `${name}:${s.environment.HTTP_PORT}`;
    assert.ok(targets.includes(t), `Prometheus does not scrape ${t}`);
  }
  const workerJobs = cfg.scrape_configs.filter((sc: Doc) =>
    (sc.static_configs ?? []).some((s: Doc) =>
      s.targets.some((t: string) => workerServices.some(([n]) => t.startsWith(`${n}:`))),
    ),
  );
  for (const sc of workerJobs) assert.equal(sc.metrics_path ?? "/metrics", "/metrics");
  for (const t of targets) {
    const host = t.split(":")[0];
    assert.ok(host === "localhost" || services[host], `scrape target ${t} names no compose service`);
  }
});

test(
  "docker-compose config accepts the file with each profile",
  { skip: onPath("docker-compose") ? false : "docker-compose is not on PATH" },
  () => {
    for (const profiles of [[], ["gpu"], ["producer"], ["gpu", "producer"]]) {
      const args = ["-f", "docker-compose.yml", ...profiles.flatMap((p) => ["--profile", p]), "config", "-q"];
      const r = run("docker-compose", args);
      assert.equal(r.status, 0, `docker-compose ${args.join(" ")}:\n${r.stderr}`);
    }
  },
);

test(
  "promtool check config accepts the Prometheus config",
  { skip: onPath("promtool") ? false : "promtool is not on PATH" },
  () => {
    const r = run("promtool", ["check", "config", PROMETHEUS_CONFIG]);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  },
);
