// sqlite-vec at 100 000 vectors: the plugin's `index: "native"` searches on a SQLite tier, before
// and after the cells, in one run, interleaved — recall@10 against the exact top 10, p50 by the
// clock and CPU milliseconds per query of this process (the machine's other work inflates the
// first, far less the second).
//
//   npm run build && node plugins/recall/bench-sqlite-vec.mjs [--n 100000] [--dims 384]
//     [--queries 200] [--sample 30] [--rounds 3] [--data clustered,random] [--json out.json]
//
// Contenders, on the same file and the same queries:
//   before     the previous storage's query: sqlite-vec's KNN over the whole vec0 table, on a
//              connection without a memory map (what the plugin's own connection was) — exact;
//   exact+mmap the same KNN through a memory-mapped connection — exact (what filtered searches
//              over many candidates and tables below CELLS_FROM vectors now cost);
//   cells      the plugin (`index: "native"`) after its save trained the cells: a KNN in the
//              cells nearest the query, as many as the save's tuning chose (at least PROBES; all
//              of them, the exact KNN, when fewer do not reach TARGET_RECALL).
// plus a 1 % filter (1 000 candidates, scored one by one) against the previous `rowid IN (…)`
// KNN without the map. `before` and `exact+mmap` run on --sample queries (they are the slow ones).
//
// Data: bench.mjs's generator and seeds (random Gaussian; 100 Gaussian centres). The truth is
// usearch's exact search. It imports the BUILT package (dist/), as a user's program would.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import usearch from "usearch";
import { createStore, makeDatum } from "dgent";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { recallPlugin, vectorMemory } from "dgent/plugins/recall";
import { modelKey } from "../../dist/plugins/recall/keys.js";
import { PROBES, tableNames } from "../../dist/plugins/recall/sqlite-vec.js";
import { recallOf as recallAt, vectors as makeVectors } from "./bench-data.mjs";
/** The benchmark's vectors (bench-data.mjs) at this script's `D` dimensions. */
const vectors = (n, seed, clustered) => makeVectors(n, D, seed, clustered);

const require = createRequire(import.meta.url);
const Database = require("better-sqlite3");
const sqliteVec = require("sqlite-vec");

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "100000" },
    dims: { type: "string", default: "384" },
    queries: { type: "string", default: "200" },
    sample: { type: "string", default: "30" },
    rounds: { type: "string", default: "3" },
    data: { type: "string", default: "clustered,random" },
    json: { type: "string" },
  },
});
const N = Number(values.n);
const D = Number(values.dims);
const Q = Number(values.queries);
const SAMPLE = Math.min(Q, Number(values.sample));
const ROUNDS = Number(values.rounds);
const K = 10;
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
const log = (line) => process.stdout.write(`${line}\n`);
const results = [];


const row = (m, i) => m.slice(i * D, i * D + D);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 2) => (x >= 100 ? x.toFixed(0) : x.toFixed(d));
const recallOf = (got, truth) => recallAt(got, truth, K);

/** One pass of `fn` over `queries`: per-query clock times, CPU ms per query, the ids. */
async function pass(queries, fn) {
  const times = [];
  const out = [];
  const cpu = process.cpuUsage();
  for (const q of queries) {
    const t = performance.now();
    out.push(await fn(q));
    times.push(performance.now() - t);
  }
  const used = process.cpuUsage(cpu);
  return { times, cpuMs: (used.user + used.system) / 1000 / queries.length, out };
}

/** ROUNDS rounds of every contender ([queries, fn]), alternated: p50 over all queries, CPU ms per query per round. */
async function interleaved(contenders) {
  const acc = Object.fromEntries(Object.keys(contenders).map((name) => [name, { times: [], cpu: [], out: null }]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, [queries, fn]] of Object.entries(contenders)) {
      const res = await pass(queries, fn);
      acc[name].times.push(...res.times);
      acc[name].cpu.push(res.cpuMs);
      acc[name].out = res.out;
    }
  }
  return Object.fromEntries(Object.entries(acc).map(([name, a]) => [name, { p50: median(a.times), cpuMs: a.cpu, out: a.out }]));
}

async function run(kind) {
  const clustered = kind === "clustered";
  log(`\n## ${kind}: ${N} vectors of ${D} dims, ${Q} queries (${SAMPLE} for the brute-force ones), k=${K}, ${ROUNDS} interleaved rounds; load average ${loadavg()}`);
  const data = vectors(N, clustered ? 2 : 1, clustered);
  const qm = vectors(Q, clustered ? 4 : 3, clustered);
  const queries = Array.from({ length: Q }, (_, i) => row(qm, i));
  const sample = queries.slice(0, SAMPLE);
  const idOf = (i) => `v/${String(i).padStart(7, "0")}`;
  const truthMatches = usearch.exactSearch(data, qm, D, K, "cos", 0);
  const truth = Array.from({ length: Q }, (_, i) => Array.from(truthMatches.get(i).keys, (k) => idOf(Number(k))));

  const dir = mkdtempSync(join(tmpdir(), "dgent-bench-sqlite-vec-"));
  const path = join(dir, "bench.db");
  const embedder = { id: `bench-${kind}-d${D}`, dimensions: D, embed: async () => { throw new Error("the benchmark gives its vectors"); } };
  const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "sqlite-vec", ann: false, saveEvery: 0 })] });
  const r = { kind, n: N, dims: D, queries: Q, sample: SAMPLE, rounds: ROUNDS, minProbes: PROBES, loadavgAtStart: loadavg() };
  try {
    const memory = await vectorMemory(store);
    let t = performance.now();
    for (let i = 0; i < N; i += 1000) {
      const items = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) items.push({ datum: makeDatum({ id: idOf(j), content: `item ${j}`, createdAt: 1_000_000 + j, metadata: { group: String(j % 100) } }), vector: row(data, j) });
      await memory.add(items);
    }
    r.insertPerSec = N / ((performance.now() - t) / 1000);
    t = performance.now();
    await memory.reindex(); // trains the cells (a save never does)
    r.trainSeconds = (performance.now() - t) / 1000;
    log(`insert through the store (putMany of 1000): ${fmt(r.insertPerSec)} vectors/s; reindex with the cells' training: ${fmt(r.trainSeconds)} s`);

    const names = tableNames(modelKey(embedder.id));
    const rawDb = (mmap) => {
      const db = new Database(path, { readonly: true });
      sqliteVec.load(db);
      db.pragma(`mmap_size = ${mmap}`);
      return db;
    };
    const plain = rawDb(0);
    const mapped = rawDb(2 ** 31);
    const cellRow = plain.prepare(`SELECT count(*) AS c, max(probes) AS p FROM "${names.cells}"`).get();
    r.cellCount = cellRow.c;
    r.probes = cellRow.p;
    const knnSql = `SELECT i.id, knn.distance FROM (SELECT rowid, distance FROM "${names.vec}" WHERE embedding MATCH ? AND k = ?) knn JOIN "${names.ids}" i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`;
    const knnInSql = `SELECT i.id, knn.distance FROM (SELECT rowid, distance FROM "${names.vec}" WHERE embedding MATCH ? AND k = ? AND rowid IN (SELECT rowid FROM "${names.ids}" WHERE id IN (SELECT value FROM json_each(?)))) knn JOIN "${names.ids}" i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`;
    const before = plain.prepare(knnSql).raw(true);
    const exactMapped = mapped.prepare(knnSql).raw(true);
    const beforeIn = plain.prepare(knnInSql).raw(true);
    const blob = (q) => Buffer.from(q.buffer, q.byteOffset, q.byteLength);
    const group = JSON.stringify(Array.from({ length: N / 100 }, (_, i) => idOf(i * 100 + 42)));
    const groupTruth = await Promise.all(sample.map(async (q) => (await memory.search(q, { k: K, index: "exact", filter: { where: { group: "42" } } })).map((h) => h.id)));

    const la = loadavg();
    const res = await interleaved({
      before: [sample, (q) => before.all(blob(q), K).map((x) => x[0])],
      exactMmap: [sample, (q) => exactMapped.all(blob(q), K).map((x) => x[0])],
      cells: [queries, async (q) => (await memory.search(q, { k: K, index: "native" })).map((h) => h.id)],
      filteredBefore: [sample, (q) => beforeIn.all(blob(q), K, group).map((x) => x[0])],
      filtered: [sample, async (q) => (await memory.search(q, { k: K, index: "native", filter: { where: { group: "42" } } })).map((h) => h.id)],
    });
    const truthOf = (name) => (name.startsWith("filtered") ? groupTruth : name === "cells" ? truth : truth.slice(0, SAMPLE));
    r.loadavg = `${la} → ${loadavg()}`;
    for (const [name, x] of Object.entries(res)) {
      const recall = recallOf(x.out, truthOf(name));
      const allK = x.out.every((ids) => ids.length === K);
      r[name] = { p50: x.p50, cpuMsPerRound: x.cpuMs, recall, allK };
      log(`${name.padEnd(14)} p50 ${fmt(x.p50)} ms; CPU ms/query per round ${x.cpuMs.map((c) => fmt(c)).join(" / ")}; recall@10 ${fmt(recall, 3)}; k results every time: ${allK}`);
    }
    log(`cells: ${r.cellCount}, ${r.probes} probed a query (tuned at training${r.probes >= r.cellCount ? ": all of them, i.e. the exact KNN" : ""}); load average ${r.loadavg}`);
    plain.close();
    mapped.close();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  results.push(r);
  if (values.json) writeFileSync(values.json, JSON.stringify({ command: `node plugins/recall/bench-sqlite-vec.mjs ${process.argv.slice(2).join(" ")}`, cores: os.cpus().length, date: new Date().toISOString(), results }, null, 2));
}

for (const kind of values.data.split(",")) await run(kind);
