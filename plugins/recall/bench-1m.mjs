// The recall plugin's in-process indexes at a million vectors, ann-benchmarks style, one run:
// exact search (the plugin's JS loop, and usearch's exactSearch on one thread), the plugin's HNSW
// index (its AnnIndex over usearch: id mapping, scores) and usearch used directly on the same
// graph, searched in interleaved rounds. No store: at 1M the store's inserts and restarts (see
// bench.mjs) would take longer than the graph itself on this machine; this measures the indexes.
//
//   npx tsc -p tsconfig.json && node plugins/recall/bench-1m.mjs [--n 1000000] [--queries 100]
//     [--ef 64,128] [--chunk 50000] [--deadline-min 40] [--quantization f16] [--rounds 2] [--json out.json]
//
// The graph is built with usearch's multi-threaded add (all cores) in chunks of --chunk vectors,
// logging progress; if --deadline-min minutes pass, the build stops and the searches run on the
// vectors added so far (reported as such). Data: bench.mjs's clustered generator and seeds.
import os from "node:os";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import usearch from "usearch";
import { AnnIndex } from "../../dist/plugins/recall/ann.js";
import { ExactIndex } from "../../dist/plugins/recall/exact.js";
import { vectors as makeVectors } from "./bench-data.mjs";
/** bench.mjs's clustered vectors (bench-data.mjs) at `D` dimensions. */
const vectors = (n, seed) => makeVectors(n, D, seed, true);

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "1000000" },
    queries: { type: "string", default: "100" },
    ef: { type: "string", default: "64,128" },
    chunk: { type: "string", default: "50000" },
    "deadline-min": { type: "string", default: "40" },
    quantization: { type: "string", default: "f16" },
    rounds: { type: "string", default: "2" },
    sample: { type: "string", default: "5" },
    json: { type: "string" },
  },
});
const N = Number(values.n), D = 384, Q = Number(values.queries), K = 10, QUANT = values.quantization;
const EFS = values.ef.split(",").map(Number), CHUNK = Number(values.chunk), ROUNDS = Number(values.rounds);
const deadline = performance.now() + Number(values["deadline-min"]) * 60_000;
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
const log = (line) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const fmt = (x, d = 2) => (x >= 100 ? x.toFixed(0) : x.toFixed(d));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = { command: `node plugins/recall/bench-1m.mjs ${process.argv.slice(2).join(" ")}`, cores: os.cpus().length, n: N, dims: D, queries: Q, quantization: QUANT, loadavgAtStart: loadavg() };
const save = () => values.json && writeFileSync(values.json, JSON.stringify(out, null, 2));

const idOf = (i) => `v/${String(i).padStart(7, "0")}`;

log(`clustered: ${N} vectors of ${D} dims, ${Q} queries, k=${K}, graph ${QUANT}; load average ${loadavg()}`);
const data = vectors(N, 2);
const qm = vectors(Q, 4);
const queries = Array.from({ length: Q }, (_, i) => qm.slice(i * D, i * D + D));

// The plugin's exact index (what it keeps in process), filled.
let t = performance.now();
const exact = new ExactIndex(D, N);
for (let i = 0; i < N; i++) exact.set(idOf(i), i, data.subarray(i * D, i * D + D));
out.exactFillPerSec = N / ((performance.now() - t) / 1000);
out.exactBytesPerVector = exact.bytes() / N;
log(`exact index filled: ${fmt(out.exactFillPerSec)} vectors/s, ${fmt(out.exactBytesPerVector)} bytes/vector`);

// Ground truth: usearch's exact search on all cores.
t = performance.now();
const tm = usearch.exactSearch(data, qm, D, K, "cos", 0);
const truth = Array.from({ length: Q }, (_, i) => Array.from(tm.get(i).keys, (k) => idOf(Number(k))));
out.truthSeconds = (performance.now() - t) / 1000;
log(`ground truth (usearch exactSearch, all cores): ${fmt(out.truthSeconds)} s; load average ${loadavg()}`);
save();
const recallOf = (got) => {
  let hit = 0;
  got.forEach((ids, i) => {
    const s = new Set(truth[i]);
    for (const id of ids.slice(0, K)) if (s.has(id)) hit++;
  });
  return hit / (got.length * K);
};
async function timeQueries(qs, fn) {
  const times = [];
  const res = [];
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (const q of qs) {
    const a = performance.now();
    res.push(await fn(q));
    times.push(performance.now() - a);
  }
  const total = performance.now() - start;
  const u = process.cpuUsage(cpu);
  return { times, qps: (qs.length / total) * 1000, cpuQps: qs.length / ((u.user + u.system) / 1e6), res };
}

// Exact: the plugin's JS loop and usearch's exactSearch on one thread, on a sample.
const sample = queries.slice(0, Number(values.sample));
const ex = await timeQueries(sample, (q) => exact.search(q, K, "cosine").map((h) => h.id));
const uex = await timeQueries(sample, (q) => Array.from(usearch.exactSearch(data, q, D, K, "cos", 1).keys, (k) => idOf(Number(k))));
out.exact = { p50: median(ex.times), cpuQps: ex.cpuQps, recall: recallOf(ex.res) };
out.usearchExact = { p50: median(uex.times), cpuQps: uex.cpuQps, recall: recallOf(uex.res) };
log(`exact, plugin JS loop: p50 ${fmt(out.exact.p50)} ms (${fmt(ex.cpuQps)} q/s per CPU second), agrees with the truth ${fmt(out.exact.recall, 3)}`);
log(`exact, usearch exactSearch one thread: p50 ${fmt(out.usearchExact.p50)} ms (${fmt(uex.cpuQps)} q/s per CPU second)`);
save();

// The plugin's ANN index, built with usearch's multi-threaded add, in chunks.
const settings = { connectivity: 16, expansionAdd: 128, expansionSearch: EFS[0], quantization: QUANT, buildThreads: 0 };
const lib = usearch;
const ann = new AnnIndex(lib, D, "cosine", settings);
const rss0 = process.memoryUsage().rss;
t = performance.now();
let built = 0;
for (; built < N && performance.now() < deadline; built += CHUNK) {
  const entries = [];
  for (let i = built; i < Math.min(N, built + CHUNK); i++) entries.push({ id: idOf(i), vector: data.subarray(i * D, i * D + D) });
  ann.addMany(entries);
  log(`graph: ${Math.min(N, built + CHUNK)} vectors in ${fmt((performance.now() - t) / 1000)} s; load average ${loadavg()}`);
}
built = Math.min(built, N);
out.graph = { vectors: built, complete: built === N, buildSeconds: (performance.now() - t) / 1000, threads: os.cpus().length, rssBytesPerVector: (process.memoryUsage().rss - rss0) / built };
out.graph.vectorsPerSec = built / out.graph.buildSeconds;
log(`graph built: ${built} vectors in ${fmt(out.graph.buildSeconds)} s (${fmt(out.graph.vectorsPerSec)} vectors/s, usearch add on ${out.graph.threads} threads); RSS +${fmt(out.graph.rssBytesPerVector)} bytes/vector`);
save();
if (built < N) log(`deadline reached: searches below run on the first ${built} vectors; recall is against the truth over all ${N}, so it is a lower bound`);

// The same graph for usearch directly, and a loader for the plugin's index at each ef.
const dir = mkdtempSync(join(os.tmpdir(), "dgent-recall-1m-"));
const { graph, keys } = ann.serialize();
const file = join(dir, "graph.usearch");
writeFileSync(file, graph);
out.graph.fileBytesPerVector = statSync(file).size / built;
const idOfKey = new Map(keys.map(([id, key]) => [key, id]));
out.ann = [];
for (const ef of EFS) {
  const plugin = new AnnIndex(lib, D, "cosine", { ...settings, expansionSearch: ef });
  plugin.restore(graph, keys);
  const raw = new usearch.Index({ dimensions: D, metric: "cos", quantization: QUANT, connectivity: 16, expansion_add: 128, expansion_search: ef, multi: false });
  raw.load(file);
  const la = loadavg();
  const acc = { plugin: { times: [], qps: [], cpuQps: [], res: null }, raw: { times: [], qps: [], cpuQps: [], res: null } };
  const fns = { plugin: (q) => plugin.search(q, K).map((h) => h.id), raw: (q) => Array.from(raw.search(q, K, 1).keys, (k) => idOfKey.get(k)) };
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of ["plugin", "raw"]) {
      const res = await timeQueries(queries, fns[name]);
      acc[name].times.push(...res.times);
      acc[name].qps.push(res.qps);
      acc[name].cpuQps.push(res.cpuQps);
      acc[name].res = res.res;
    }
  }
  const row = { ef, loadavg: la };
  for (const name of ["plugin", "raw"]) row[name] = { recall: recallOf(acc[name].res), p50: median(acc[name].times), qps: median(acc[name].qps), cpuQps: median(acc[name].cpuQps) };
  out.ann.push(row);
  for (const name of ["plugin", "raw"]) log(`HNSW ef=${ef} ${name === "plugin" ? "plugin (AnnIndex)" : "usearch directly"}: recall@10 ${fmt(row[name].recall, 3)}, p50 ${fmt(row[name].p50, 3)} ms, ${fmt(row[name].qps)} q/s by the clock, ${fmt(row[name].cpuQps)} q/s per CPU second; load average ${la} → ${loadavg()}`);
  save();
}
rmSync(dir, { recursive: true, force: true });
