// usearch's HNSW parameters on their own (no dgent): for each [connectivity, quantization,
// expansion_add] a graph is built once (usearch's add on 2 threads; kept in /tmp/rs/ and reused
// when the file is there), then searched one query at a time on one thread at each ef: recall@10
// against usearch's exact search, p50, q/s by the clock and per CPU second of this process.
// Data: bench.mjs's generator and seeds.
//
//   node plugins/recall/bench-params.mjs N QUERIES '[[16,"f16",128],[16,"f32",128]]' '[40,48,56,64]' [clustered|random]
import usearch from "usearch";
import { vectors as makeVectors } from "./bench-data.mjs";
/** The benchmark's vectors (bench-data.mjs) at this script's `D` dimensions. */
const vectors = (n, seed, clustered) => makeVectors(n, D, seed, clustered);
const N = Number(process.argv[2] ?? 100000), D = 384, Q = Number(process.argv[3] ?? 1000), K = 10;
const configs = JSON.parse(process.argv[4] ?? '[[16,"f32",128]]');
const EFS = JSON.parse(process.argv[5] ?? "[16,24,32,48,64,96,128]");
const clustered = (process.argv[6] ?? "clustered") === "clustered";
const data = vectors(N, clustered ? 2 : 1, clustered), qm = vectors(Q, clustered ? 4 : 3, clustered);
const queries = Array.from({ length: Q }, (_, i) => qm.slice(i * D, i * D + D));
let t = performance.now();
const tm = usearch.exactSearch(data, qm, D, K, "cos", 0);
const truth = Array.from({ length: Q }, (_, i) => new Set(Array.from(tm.get(i).keys, Number)));
console.log(`truth ${((performance.now() - t) / 1000).toFixed(1)} s`);
const keys = BigUint64Array.from({ length: N }, (_, i) => BigInt(i));
for (const [M, quant, ea] of configs) {
  const mk = (ef) => new usearch.Index({ dimensions: D, metric: "cos", quantization: quant, connectivity: M, expansion_add: ea, expansion_search: ef, multi: false });
  const file = `/tmp/rs/g-${M}-${quant}-${ea}-${N}.usearch`;
  (await import("node:fs")).mkdirSync("/tmp/rs", { recursive: true });
  const fs0 = await import("node:fs"); let build = NaN; const rss0 = process.memoryUsage().rss;
  if (!fs0.existsSync(file)) { const idx = mk(64);
  t = performance.now(); idx.add(keys, data, 2); build = (performance.now() - t) / 1000;
  idx.save(file); }
  const fs = await import("node:fs"); const bytes = fs.statSync(file).size / N;
  console.log(`M=${M} ${quant} ea=${ea}: build ${build.toFixed(1)} s (2 threads) = ${(N / build).toFixed(0)} v/s; file ${bytes.toFixed(0)} B/vector; rss +${((process.memoryUsage().rss - rss0) / N).toFixed(0)} B/vector  load ${process.env.LA ?? ""}`);
  for (const ef of EFS) {
    const ix = mk(ef); ix.load(file);
    for (const q of queries.slice(0, 100)) ix.search(q, K, 1); // warm
    const times = []; let hit = 0; const cpu = process.cpuUsage(); const s = performance.now();
    for (let i = 0; i < Q; i++) { const a = performance.now(); const r = ix.search(queries[i], K, 1); times.push(performance.now() - a); for (const k of r.keys) if (truth[i].has(Number(k))) hit++; }
    const total = performance.now() - s; const u = process.cpuUsage(cpu); times.sort((a, b) => a - b);
    console.log(`  ef=${ef}: recall@10 ${(hit / Q / K).toFixed(3)}  p50 ${times[Q >> 1].toFixed(3)} ms  ${(Q / total * 1000).toFixed(0)} q/s clock  ${(Q / ((u.user + u.system) / 1e6)).toFixed(0)} q/s CPU  load ${(await import("node:os")).loadavg()[0].toFixed(1)}`);
  }
}
console.log((await import("node:os")).loadavg().map((x) => x.toFixed(2)).join(" "));
