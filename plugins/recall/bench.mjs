// The recall plugin's benchmark (ann-benchmarks style, one run): vectors you generate with a
// seed (random Gaussian and clustered), the plugin's exact search, its HNSW index (usearch) at
// several `expansionSearch` values, sqlite-vec's own KNN, and usearch used directly — recall@10
// against the exact top 10, queries per second (one thread, one query at a time), p50 latency,
// insert throughput, build vs load of the graph, and memory per vector.
//
//   npx tsc -p tsconfig.json && node plugins/recall/bench.mjs [--n 100000] [--dims 384]
//     [--queries 300] [--data random,clustered] [--ef 64,128,256] [--json out.json] [--raw-build]
//     [--quantization i8|f16|f32] [--rerank 4] [--sample 20] [--rounds 3]
//
// --sample: queries for the slow brute-force searches (the plugin's JS loop, sqlite-vec);
// --rounds: interleaved rounds of the plugin and usearch directly per ef. q/s is given by the
// clock and per CPU second of this process (the machine's other work slows the first, not the
// second). The JSON file is rewritten after each data set, with the command and load averages.
//
// usearch used directly searches the graph the plugin saved (loaded from its artefact), so the two
// search the same graph; --raw-build builds one more with usearch itself (the same call the plugin
// makes, so the same time: at 100 000 vectors on a loaded machine, tens of minutes).
//
// With --quantization i8 the plugin re-ranks the graph's k × rerank candidates with its f32
// vectors (--rerank, default the plugin's: 4); usearch directly searches the same i8 graph with
// the query quantized the same way (quantizeI8) and returns the graph's own top k, no re-rank.
//
// It imports the BUILT package (dist/), as a user's program would. README.md has the figures.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import usearch from "usearch";
import { createStore, makeDatum } from "dgent";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { recallPlugin, vectorMemory } from "dgent/plugins/recall";
import { quantizeI8 } from "../../dist/plugins/recall/ann.js";
import { readLatestArtefact } from "../../dist/plugins/recall/artefact.js";
import { modelKey } from "../../dist/plugins/recall/keys.js";
import { vectors as makeVectors } from "./bench-data.mjs";
/** The benchmark's vectors (bench-data.mjs) at this script's `D` dimensions. */
const vectors = (n, seed, clustered) => makeVectors(n, D, seed, clustered);

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "100000" },
    dims: { type: "string", default: "384" },
    queries: { type: "string", default: "300" },
    data: { type: "string", default: "random,clustered" },
    ef: { type: "string", default: "64,128,256" },
    json: { type: "string" },
    "raw-build": { type: "boolean", default: false },
    quantization: { type: "string", default: "i8" },
    rerank: { type: "string" },
    sample: { type: "string", default: "20" },
    rounds: { type: "string", default: "3" },
  },
});
const N = Number(values.n);
const D = Number(values.dims);
const Q = Number(values.queries);
const EFS = values.ef.split(",").map(Number);
const QUANT = values.quantization;
const RERANK = values.rerank === undefined ? {} : { rerank: Number(values.rerank) };
/** What usearch directly is given for a query: the graph's own coding. */
const rawQuery = QUANT === "i8" ? (q) => quantizeI8(q) : (q) => q;
const SAMPLE = Number(values.sample);
const ROUNDS = Number(values.rounds);
const K = 10;
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
const log = (line) => process.stdout.write(`${line}\n`);
const results = [];



const row = (m, i) => m.slice(i * D, i * D + D);
const quantizeMatrix = (m) => {
  const out = new Int8Array(m.length);
  for (let i = 0; i < m.length / D; i++) quantizeI8(m.subarray(i * D, i * D + D), out, i * D);
  return out;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 2) => (x >= 100 ? x.toFixed(0) : x.toFixed(d));

/**
 * Times `fn` over `queries`: p50 (ms), queries per second by the clock (sequential, one thread),
 * and queries per CPU second of this process (what one core gives when it is not shared: the
 * machine's other work inflates the clock, not this process's CPU time).
 */
async function timeQueries(queries, fn) {
  const times = [];
  const out = [];
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (const q of queries) {
    const t = performance.now();
    out.push(await fn(q));
    times.push(performance.now() - t);
  }
  const total = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { p50: median(times), qps: (queries.length / total) * 1000, cpuQps: queries.length / ((used.user + used.system) / 1e6), out, times };
}

/**
 * `ROUNDS` rounds of each of `contenders` (name → query fn) over all queries, interleaved (A B A B…)
 * so both see the same machine: p50 over every query, clock q/s and CPU q/s as the median of the rounds.
 */
async function interleaved(queries, contenders) {
  const acc = Object.fromEntries(Object.keys(contenders).map((name) => [name, { times: [], qps: [], cpuQps: [], out: null }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(contenders)) {
      const res = await timeQueries(queries, fn);
      const a = acc[name];
      a.times.push(...res.times);
      a.qps.push(res.qps);
      a.cpuQps.push(res.cpuQps);
      a.out = res.out;
    }
  }
  return Object.fromEntries(Object.entries(acc).map(([name, a]) => [name, { p50: median(a.times), qps: median(a.qps), cpuQps: median(a.cpuQps), out: a.out }]));
}

const recallOf = (got, truth) => {
  let hit = 0;
  got.forEach((hits, i) => {
    const t = new Set(truth[i]);
    for (const h of hits.slice(0, K)) if (t.has(h)) hit++;
  });
  return hit / (truth.length * K);
};

async function run(kind) {
  const clustered = kind === "clustered";
  log(`\n## ${kind}: ${N} vectors of ${D} dims, ${Q} queries, k=${K}, graph ${QUANT}, ${ROUNDS} interleaved rounds; load average ${loadavg()}`);
  const data = vectors(N, clustered ? 2 : 1, clustered);
  const qm = vectors(Q, clustered ? 4 : 3, clustered);
  const queries = Array.from({ length: Q }, (_, i) => row(qm, i));
  const idOf = (i) => `v/${String(i).padStart(7, "0")}`;
  const groupOf = (i) => String(i % 100);

  // Ground truth: usearch's exact search (SIMD, all cores); checked against the plugin's own exact search below.
  let t = performance.now();
  const truthMatches = usearch.exactSearch(data, qm, D, K, "cos", 0);
  const truth = Array.from({ length: Q }, (_, i) => Array.from(truthMatches.get(i).keys, (k) => idOf(Number(k))));
  log(`ground truth (usearch exactSearch, all cores): ${fmt((performance.now() - t) / 1000)} s`);

  const dir = mkdtempSync(join(tmpdir(), "dgent-recall-bench-"));
  const path = join(dir, "bench.db");
  const embedder = { id: `bench-${kind}-d${D}`, dimensions: D, embed: async () => { throw new Error("the benchmark gives its vectors"); } };
  const options = (ef) => ({ embedder, ann: "auto", annThreshold: N, expansionSearch: ef, saveEvery: 0, buildThreads: 0, quantization: QUANT, ...RERANK });
  const r = { kind, n: N, dims: D, queries: Q, quantization: QUANT, ...RERANK, rounds: ROUNDS, loadavgAtStart: loadavg() };

  // 1. Inserts through the store: put + vec0 row + exact index, in batches of 1000 (putMany).
  let store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin(options(EFS[0]))] });
  let memory = await vectorMemory(store);
  const heapBefore = process.memoryUsage().heapUsed;
  t = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const items = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) items.push({ datum: makeDatum({ id: idOf(j), content: `item ${j}`, createdAt: 1_000_000 + j, metadata: { group: groupOf(j) } }), vector: row(data, j) });
    await memory.add(items);
  }
  await memory.idle(); // the graph is built (all cores) when the N-th vector arrives
  const stats = memory.stats();
  r.insertPerSec = N / ((performance.now() - t - (stats.ann.buildMs ?? 0)) / 1000);
  r.buildSeconds = (stats.ann.buildMs ?? 0) / 1000;
  r.exactBytesPerVector = stats.exactBytes / N;
  log(`insert through the store (SQLite + sqlite-vec, putMany of 1000): ${fmt(r.insertPerSec)} vectors/s; HNSW build (usearch, all cores): ${fmt(r.buildSeconds)} s = ${fmt(N / r.buildSeconds)} vectors/s`);
  log(`exact index: ${fmt(r.exactBytesPerVector)} bytes/vector (heap grew ${fmt((process.memoryUsage().heapUsed - heapBefore) / N)} bytes/vector, datums included)`);

  // 2. Exact search, the plugin's JS loop (a sample: it is the slow one), and its agreement with the truth.
  const sample = queries.slice(0, Math.min(SAMPLE, Q));
  const exact = await timeQueries(sample, (q) => memory.search(q, { k: K, index: "exact" }));
  r.exact = { p50: exact.p50, qps: exact.qps, recall: recallOf(exact.out.map((hits) => hits.map((h) => h.id)), truth.slice(0, sample.length)) };
  log(`exact (plugin, JS loop): p50 ${fmt(exact.p50)} ms, ${fmt(exact.qps)} q/s, agrees with the truth: ${fmt(r.exact.recall, 4)}`);

  // 3. sqlite-vec's own KNN (brute force in SQLite).
  const native = await timeQueries(sample, (q) => memory.search(q, { k: K, index: "native" }));
  r.sqliteVec = { p50: native.p50, qps: native.qps, recall: recallOf(native.out.map((hits) => hits.map((h) => h.id)), truth.slice(0, sample.length)) };
  log(`sqlite-vec KNN (native, brute force): p50 ${fmt(native.p50)} ms, ${fmt(native.qps)} q/s, recall ${fmt(r.sqliteVec.recall, 3)}`);

  // 4. Save the graph; usearch used directly gets the same graph (or, with --raw-build, one it builds itself).
  t = performance.now();
  await memory.save();
  r.saveSeconds = (performance.now() - t) / 1000;
  await store.close();
  r.dbBytesPerVector = statSync(path).size / N;
  const file = join(dir, "raw.usearch");
  let keyToId = (k) => idOf(Number(k));
  if (values["raw-build"]) {
    const rssBefore = process.memoryUsage().rss;
    const raw = new usearch.Index({ dimensions: D, metric: "cos", quantization: QUANT, connectivity: 16, expansion_add: 128, expansion_search: EFS[0], multi: false });
    t = performance.now();
    raw.add(BigUint64Array.from({ length: N }, (_, i) => BigInt(i)), QUANT === "i8" ? quantizeMatrix(data) : data, 0);
    r.rawBuildSeconds = (performance.now() - t) / 1000;
    r.rawRssBytesPerVector = (process.memoryUsage().rss - rssBefore) / N;
    raw.save(file);
    log(`usearch directly: build ${fmt(r.rawBuildSeconds)} s (all cores); RSS grew ${fmt(r.rawRssBytesPerVector)} bytes/vector`);
  } else {
    store = createStore({ tiers: [sqliteAdapter({ path })] });
    const artefact = await readLatestArtefact(store, modelKey(embedder.id), D, log);
    await store.close();
    (await import("node:fs")).writeFileSync(file, artefact.graph);
    const ids = new Map(artefact.records.map((rec) => [rec.key, rec.id]));
    keyToId = (k) => ids.get(k);
  }
  r.graphBytesPerVector = statSync(file).size / N;
  log(`save of the graph: ${fmt(r.saveSeconds)} s; graph file ${fmt(r.graphBytesPerVector)} bytes/vector; database file ${fmt(r.dbBytesPerVector)} bytes/vector (datum + vec0 row + saved graph)`);

  // 5. A restart per ef (vec0 rows + the saved graph loaded, not rebuilt); the plugin and usearch
  //    directly (same graph, same ef) searched in interleaved rounds.
  r.ann = [];
  r.raw = [];
  for (const ef of EFS) {
    t = performance.now();
    store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin(options(ef))] });
    memory = await vectorMemory(store);
    const loadSeconds = (performance.now() - t) / 1000;
    const st = memory.stats();
    if (!st.ann.loadedFromArtefact) throw new Error("the graph was not loaded from the artefact");
    const breakdown = { loadSeconds: (st.loadMs ?? 0) / 1000, graphSeconds: (st.ann.buildMs ?? 0) / 1000, catchUpSeconds: (st.lastCatchUp?.ms ?? 0) / 1000 };
    log(`restart: ${fmt(loadSeconds)} s = vectors and graph loaded in ${fmt(breakdown.loadSeconds)} s (of which the graph ${fmt(breakdown.graphSeconds)} s) + catch-up over the datums' headers ${fmt(breakdown.catchUpSeconds)} s`);
    const index = new usearch.Index({ dimensions: D, metric: "cos", quantization: QUANT, connectivity: 16, expansion_add: 128, expansion_search: ef, multi: false });
    const rssBefore = process.memoryUsage().rss;
    t = performance.now();
    index.load(file);
    const rawLoadSeconds = (performance.now() - t) / 1000;
    const rssPerVector = (process.memoryUsage().rss - rssBefore) / N;
    const la = loadavg();
    const res = await interleaved(queries, {
      plugin: (q) => memory.search(q, { k: K, index: "ann" }),
      raw: (q) => Array.from(index.search(rawQuery(q), K, 1).keys, keyToId),
    });
    const recall = recallOf(res.plugin.out.map((hits) => hits.map((h) => h.id)), truth);
    const rawRecall = recallOf(res.raw.out, truth);
    // A 1 % filter: exact over the 1 000 datums of one group (candidates from the tier's tag index).
    const filteredQueries = queries.slice(0, 50);
    const filtered = await timeQueries(filteredQueries, (q) => memory.search(q, { k: K, filter: { where: { group: "42" } } }));
    const allK = filtered.out.every((hits) => hits.length === K);
    const groupTruth = await Promise.all(filteredQueries.map(async (q) => (await memory.search(q, { k: K, filter: { where: { group: "42" } }, index: "exact" })).map((h) => h.id)));
    const filteredRecall = recallOf(filtered.out.map((hits) => hits.map((h) => h.id)), groupTruth);
    const { out: _o, ...plugin } = res.plugin;
    const { out: _r, ...raw } = res.raw;
    r.ann.push({ ef, loadSeconds, breakdown, ...plugin, recall, loadavg: la, filtered: { p50: filtered.p50, recall: filteredRecall, allK } });
    r.raw.push({ ef, loadSeconds: rawLoadSeconds, rssPerVector, ...raw, recall: rawRecall, loadavg: la });
    log(`HNSW ef=${ef} (plugin): recall@10 ${fmt(recall, 3)}, p50 ${fmt(plugin.p50, 3)} ms, ${fmt(plugin.qps)} q/s by the clock, ${fmt(plugin.cpuQps)} q/s per CPU second; 1 % filter: p50 ${fmt(filtered.p50)} ms, recall ${fmt(filteredRecall, 3)}, k results every time: ${allK}`);
    log(`usearch directly ef=${ef}, same graph: recall@10 ${fmt(rawRecall, 3)}, p50 ${fmt(raw.p50, 3)} ms, ${fmt(raw.qps)} q/s by the clock, ${fmt(raw.cpuQps)} q/s per CPU second (load ${fmt(rawLoadSeconds)} s, RSS +${fmt(rssPerVector)} bytes/vector); load average ${la} → ${loadavg()}`);
    await store.close();
  }
  rmSync(dir, { recursive: true, force: true });
  results.push(r);
  if (values.json) (await import("node:fs")).writeFileSync(values.json, JSON.stringify({ command: `node plugins/recall/bench.mjs ${process.argv.slice(2).join(" ")}`, cores: os.cpus().length, results }, null, 2));
}

for (const kind of values.data.split(",")) await run(kind);
