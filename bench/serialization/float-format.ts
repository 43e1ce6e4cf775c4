/** `npm run bench:float-format`: nanoseconds per float of the shortest float32 formatter
 *  (`worker/core/float32-format.ts`, bytes and string forms) against what JavaScript offers
 *  (`String(x)`, `x.toPrecision(9)`, `JSON.stringify` of a `number[]`), on two sets of float32
 *  values: the coordinates of random unit-norm 1024-d vectors (what dense and ColBERT vectors
 *  hold) and random finite bit patterns (every exponent). Each method runs `--rounds` times over
 *  the whole set after a warm-up round; the median round of process CPU time is reported. Prints the machine and
 *  method, and writes them with every figure to bench/results/serialization/float-format/. Timings on a shared machine are noisy: compare within one run. */
import os from "node:os";
import { Command } from "commander";
import { formatFloat32, writeFloat32 } from "../../worker/core/float32-format.js";
import { benchReport } from "./report.js";

const opts = new Command()
  .option("--floats <n>", "floats per set", (v) => Number(v), 1 << 20)
  .option("--rounds <n>", "timed rounds per method (median reported)", (v) => Number(v), 5)
  .parse()
  .opts<{ floats: number; rounds: number }>();

/** A seeded 32-bit generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function unitVectorValues(n: number): Float32Array {
  const next = random(1);
  const out = new Float32Array(n);
  for (let o = 0; o < n; o += 1024) {
    const v = new Float64Array(Math.min(1024, n - o));
    let s = 0;
    for (let i = 0; i < v.length; i++) {
      // Box-Muller: a Gaussian direction, normalised, like a real embedding's coordinates.
      const g = Math.sqrt(-2 * Math.log((next() + 1) / 2 ** 32)) * Math.cos((2 * Math.PI * next()) / 2 ** 32);
      v[i] = g;
      s += g * g;
    }
    for (let i = 0; i < v.length; i++) out[o + i] = v[i] / Math.sqrt(s);
  }
  return out;
}

function bitPatterns(n: number): Float32Array {
  const next = random(2);
  const u = new Uint32Array(n);
  const f = new Float32Array(u.buffer);
  for (let i = 0; i < n; i++) {
    do u[i] = next();
    while (!Number.isFinite(f[i]));
  }
  return f;
}

let sink = 0; // keeps results alive so no method is optimised away
const buf = new Uint8Array(32);
const out = new Uint8Array(16 * (opts.floats + 1));
const methods: Record<string, (v: Float32Array) => number> = {
  "writeFloat32 (bytes, this project)": (v) => {
    let p = 0;
    for (let i = 0; i < v.length; i++) {
      p = writeFloat32(out, p, v[i]);
      out[p++] = 44;
    }
    return p;
  },
  "formatFloat32 (string, this project)": (v) => {
    let n = 0;
    for (let i = 0; i < v.length; i++) n += formatFloat32(v[i]).length + 1;
    return n;
  },
  "String(x)": (v) => {
    let n = 0;
    for (let i = 0; i < v.length; i++) n += String(v[i]).length + 1;
    return n;
  },
  "x.toPrecision(9)": (v) => {
    let n = 0;
    for (let i = 0; i < v.length; i++) n += v[i].toPrecision(9).length + 1;
    return n;
  },
  "JSON.stringify(Array.from(v))": (v) => JSON.stringify(Array.from(v)).length,
  "JSON.stringify + TextEncoder.encode": (v) => new TextEncoder().encode(JSON.stringify(Array.from(v))).length,
};

/** CPU time of this process (user + system), milliseconds: wall time on a loaded machine would
 *  count waiting for a core. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const report = benchReport("float-format");
const say = report.say;
const m = report.machine;
const figures: Record<string, Record<string, { nsPerFloat: number; bytesPerFloat: number }>> = {};
say(`bench:float-format — ${m.cpus} x ${m.cpuModel}, Node ${m.node}, load average ${os.loadavg()[0].toFixed(2)}`);
say(
  `method: ${opts.floats} float32 values per set, ${opts.rounds} timed rounds per method after one warm-up round, ` +
    "median round of process CPU time (user + system); one thread. The machine may be shared: compare within one run.",
);
for (const [setName, values] of [
  ["coordinates of random unit-norm 1024-d vectors", unitVectorValues(opts.floats)],
  ["random finite float32 bit patterns (every exponent)", bitPatterns(opts.floats)],
] as const) {
  say(`\n${setName}:`);
  say("  ns/float  bytes/float  method");
  for (const [name, fn] of Object.entries(methods)) {
    let bytes = fn(values);
    const times: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const t = cpuMs();
      bytes = fn(values);
      times.push(cpuMs() - t);
    }
    sink += bytes;
    const ns = (median(times) * 1e6) / values.length;
    (figures[setName] ??= {})[name] = { nsPerFloat: ns, bytesPerFloat: bytes / values.length };
    say(`  ${ns.toFixed(1).padStart(8)}  ${(bytes / values.length).toFixed(2).padStart(11)}  ${name}`);
  }
}
sink += writeFloat32(buf, 0, Math.fround(0.1));
say(`\n(load average at the end ${os.loadavg()[0].toFixed(2)}; checksum ${sink})`);
console.log(`results: ${report.finish({ options: opts, unit: "ns of process CPU per float", sets: figures })}`);
