// The plugin A/B: the same vectors in stores whose graphs differ only in quantization (i8 with its
// exact re-rank, the default for cosine, against f16, the default before it), searched through
// `memory.search(q, { k: 10, index: "ann" })` in interleaved rounds — q/s by the clock and per CPU
// second of this process, p50, recall@10 against usearch's exact search. Each quantization's
// SQLite file (datums, vec0 rows, the saved graph) is built once and kept in --dir; each (graph,
// ef) store opens a copy of it (the graph loaded, not rebuilt).
//
//   npx tsc -p tsconfig.json && node plugins/recall/bench-ab.mjs --data clustered --n 100000 \
//     --queries 1000 --plans i8/56/4,f16/56,i8/64/4,f16/64 --rounds 10
//
// A plan is quantization/ef[/rerank] (rerank: the plugin's default when absent).
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import usearch from "usearch";
import { createStore, makeDatum } from "dgent";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { recallPlugin, vectorMemory } from "dgent/plugins/recall";
import { vectors as makeVectors } from "./bench-data.mjs";
/** The benchmark's vectors (bench-data.mjs) at this script's `D` dimensions. */
const vectors = (n, seed) => makeVectors(n, D, seed, clustered);

const { values } = parseArgs({ options: {
  n: { type: "string", default: "100000" }, queries: { type: "string", default: "1000" }, data: { type: "string", default: "clustered" },
  plans: { type: "string", default: "i8/56,f16/56,i8/64,f16/64" }, rounds: { type: "string", default: "10" },
  dir: { type: "string", default: "/tmp/rq" },
} });
const N = Number(values.n), D = 384, Q = Number(values.queries), K = 10, ROUNDS = Number(values.rounds);
const clustered = values.data === "clustered";
const la = () => os.loadavg().map((x) => x.toFixed(1)).join(" ");
const log = (line) => process.stdout.write(`${line}\n`);
// bench.mjs's generator and seeds.
const data = vectors(N, clustered ? 2 : 1), qm = vectors(Q, clustered ? 4 : 3);
const queries = Array.from({ length: Q }, (_, i) => qm.slice(i * D, i * D + D));
const idOf = (i) => `v/${String(i).padStart(7, "0")}`;
let t = performance.now();
const tm = usearch.exactSearch(data, qm, D, K, "cos", 0);
const truth = Array.from({ length: Q }, (_, i) => new Set(Array.from(tm.get(i).keys, (k) => idOf(Number(k)))));
log(`${values.data}: ${N} vectors of ${D} dims, ${Q} queries, k ${K}; truth ${((performance.now() - t) / 1000).toFixed(1)} s; load ${la()}`);
const embedder = { id: `bench-${values.data}-d${D}`, dimensions: D, embed: async () => { throw new Error("the benchmark gives its vectors"); } };
const options = (quantization, ef, rerank) => ({ embedder, ann: "auto", annThreshold: N, quantization, expansionSearch: ef, ...(rerank === undefined ? {} : { rerank }), saveEvery: 0, storage: "sqlite-vec" });
mkdirSync(values.dir, { recursive: true });
const plans = values.plans.split(",").map((p) => { const [quant, ef, rerank] = p.split("/"); return { quant, ef: Number(ef), rerank: rerank === undefined ? undefined : Number(rerank) }; });
const quants = [...new Set(plans.map((p) => p.quant))];
for (const quant of quants) {
  const path = `${values.dir}/ab-${values.data}-${N}-${quant}.db`;
  if (existsSync(path)) continue;
  const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin(options(quant, 64))] });
  const memory = await vectorMemory(store);
  t = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const items = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) items.push({ datum: makeDatum({ id: idOf(j), content: `item ${j}`, createdAt: 1_000_000 + j }), vector: data.slice(j * D, j * D + D) });
    await memory.add(items);
  }
  await memory.idle();
  await memory.save();
  log(`built ${path}: ${((performance.now() - t) / 1000).toFixed(0)} s (graph ${((memory.stats().ann.buildMs ?? 0) / 1000).toFixed(0)} s, 2 threads); load ${la()}`);
  await store.close();
}
const contenders = [];
for (const [n, { quant, ef, rerank }] of plans.entries()) {
  const copy = `${values.dir}/ab-${values.data}-${N}-${quant}-plan${n}.db`;
  for (const ext of ["", "-wal", "-shm"]) rmSync(copy + ext, { force: true });
  copyFileSync(`${values.dir}/ab-${values.data}-${N}-${quant}.db`, copy);
  const store = createStore({ tiers: [sqliteAdapter({ path: copy })], plugins: [recallPlugin(options(quant, ef, rerank))] });
  const memory = await vectorMemory(store);
  const st = memory.stats();
  if (!st.ann.loadedFromArtefact || st.ann.size !== N) throw new Error(`${copy}: the graph was not loaded`);
  contenders.push({ name: `${quant} ef ${ef}${st.ann.rerank > 1 ? ` ×${st.ann.rerank}` : ""}`, quant, ef, rerank, store, memory, rounds: [], copy });
}
for (const c of contenders) for (const q of queries.slice(0, 100)) await c.memory.search(q, { k: K, index: "ann" });
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (let r = 0; r < ROUNDS; r++) {
  for (const c of r % 2 ? [...contenders].reverse() : contenders) {
    const times = new Float64Array(Q); let hit = 0; const cpu = process.cpuUsage(); const s = performance.now();
    for (let i = 0; i < Q; i++) {
      const a = performance.now();
      const hits = await c.memory.search(queries[i], { k: K, index: "ann" });
      times[i] = performance.now() - a;
      for (const h of hits) if (truth[i].has(h.id)) hit++;
    }
    const wall = performance.now() - s; const u = process.cpuUsage(cpu); times.sort();
    c.rounds.push({ recall: hit / Q / K, p50: times[Q >> 1], qps: (Q / wall) * 1000, cpuQps: Q / ((u.user + u.system) / 1e6) });
  }
  log(`round ${r + 1}: ${contenders.map((c) => `${c.name} ${c.rounds.at(-1).cpuQps.toFixed(0)}`).join(", ")} q/s per CPU s; load ${la()}`);
}
log(`summary (${ROUNDS} rounds; load ${la()}):`);
for (const c of contenders) {
  const xs = c.rounds; const range = (f) => `${Math.min(...xs.map(f)).toFixed(0)}–${Math.max(...xs.map(f)).toFixed(0)} (median ${median(xs.map(f)).toFixed(0)})`;
  const base = contenders.find((b) => b.quant === "f16" && b.ef === c.ef && b.rerank === undefined) ?? contenders.find((b) => b.quant === "f16" && b.ef === c.ef);
  const ratios = base && base !== c ? xs.map((x, i) => x.cpuQps / base.rounds[i].cpuQps) : null;
  log(`  ${c.name.padEnd(12)} recall@10 ${xs[0].recall.toFixed(3)}  q/s per CPU s ${range((x) => x.cpuQps)}  clock q/s ${range((x) => x.qps)}  p50 ${median(xs.map((x) => x.p50)).toFixed(3)} ms${ratios ? `  ÷ ${base.name}, per round: ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} (median ${median(ratios).toFixed(2)})` : ""}`);
}
for (const c of contenders) await c.store.close();
for (const c of contenders) for (const ext of ["", "-wal", "-shm"]) rmSync(c.copy + ext, { force: true });
