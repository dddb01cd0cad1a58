// usearch graphs whose own copy of the vectors is i8 (quantized here, per vector, by its largest
// component: cosine does not see a vector's scale), searched for k' candidates that are then
// re-ranked exactly with the f32 vectors — against the f16 graph searched for k directly. Graphs
// are built once (usearch's add on 2 threads) and kept in $DIR (default /tmp/rq) for later runs.
// Interleaved rounds; q/s by the clock and per CPU second of this process (search + re-rank).
//
//   node plugins/recall/bench-quant.mjs --data clustered --n 100000 --queries 1000 \
//     --graphs 16:f16:128,16:i8:128 --plans f16/56,i8/40/20,i8/48/30 --rounds 3
//
// A plan is graph-quantization/ef[/k'] (and /M when several M are built): k' given = re-ranked.
// Quantization "i8u": an i8 graph given the f32 vectors, coded by usearch's own cast (each vector
// scaled to length 127), for comparison with "i8" (coded here, each to its largest component).
import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import { parseArgs } from "node:util";
import usearch from "usearch";
import { vectors as makeVectors } from "./bench-data.mjs";
/** The benchmark's vectors (bench-data.mjs) at this script's `D` dimensions. */
const vectors = (n, seed) => makeVectors(n, D, seed, clustered);

const { values } = parseArgs({ options: {
  n: { type: "string", default: "100000" }, queries: { type: "string", default: "1000" }, data: { type: "string", default: "clustered" },
  graphs: { type: "string", default: "16:f16:128,16:i8:128" }, plans: { type: "string", default: "f16/56,i8/48/30" },
  rounds: { type: "string", default: "3" }, dir: { type: "string", default: "/tmp/rq" }, build: { type: "boolean", default: true },
} });
const N = Number(values.n), D = 384, Q = Number(values.queries), K = 10, ROUNDS = Number(values.rounds);
const clustered = values.data === "clustered";
const la = () => os.loadavg()[0].toFixed(1);
/** Each vector scaled so its largest |component| is 127, rounded. */
function toI8(m, n) { const out = new Int8Array(n * D); for (let i = 0; i < n; i++) { let max = 0; for (let j = 0; j < D; j++) max = Math.max(max, Math.abs(m[i * D + j])); const s = max > 0 ? 127 / max : 0; for (let j = 0; j < D; j++) out[i * D + j] = Math.round(m[i * D + j] * s); } return out; }
const data = vectors(N, clustered ? 2 : 1), qm = vectors(Q, clustered ? 4 : 3);
const norms = new Float64Array(N); for (let i = 0; i < N; i++) { let s = 0; for (let j = 0; j < D; j++) s += data[i * D + j] ** 2; norms[i] = Math.sqrt(s); }
const queries = Array.from({ length: Q }, (_, i) => qm.slice(i * D, i * D + D));
let t = performance.now();
const tm = usearch.exactSearch(data, qm, D, K, "cos", 0);
const truth = Array.from({ length: Q }, (_, i) => new Set(Array.from(tm.get(i).keys, Number)));
console.log(`${values.data} n=${N} q=${Q}: truth ${((performance.now() - t) / 1000).toFixed(1)} s, load ${la()}`);
const i8data = toI8(data, N), i8q = toI8(qm, Q);
const i8queries = Array.from({ length: Q }, (_, i) => i8q.slice(i * D, i * D + D));
const keys = BigUint64Array.from({ length: N }, (_, i) => BigInt(i));
mkdirSync(values.dir, { recursive: true });
const graphs = new Map();
for (const g of values.graphs.split(",")) {
  const [M, quant, ea] = g.split(":"); const m = Number(M);
  const mk = (ef) => new usearch.Index({ dimensions: D, metric: "cos", quantization: quant === "i8u" ? "i8" : quant, connectivity: m, expansion_add: Number(ea), expansion_search: ef, multi: false });
  const file = `${values.dir}/${values.data}-${N}-M${M}-${quant}-${ea}.usearch`;
  if (!existsSync(file)) {
    if (!values.build) throw new Error(`${file} missing`);
    const ix = mk(64); t = performance.now(); ix.add(keys, quant === "i8" ? i8data : data, 2);
    console.log(`built ${file}: ${((performance.now() - t) / 1000).toFixed(0)} s (2 threads), load ${la()}`); ix.save(file);
  }
  graphs.set(`${quant}:${M}`, { mk, file, quant });
}
/** Exact cosine of data row `r` and query `q` (qn: its norm), the loop exact.ts uses. */
function cos(q, qn, r) { const o = r * D; let s0 = 0, s1 = 0, s2 = 0, s3 = 0; for (let j = 0; j < D; j += 4) { s0 += data[o + j] * q[j]; s1 += data[o + j + 1] * q[j + 1]; s2 += data[o + j + 2] * q[j + 2]; s3 += data[o + j + 3] * q[j + 3]; } return (s0 + s1 + s2 + s3) / (norms[r] * qn); }
const plans = values.plans.split(",").map((p) => { const [quant, ef, kp, M] = p.split("/"); return { name: p, quant, ef: Number(ef), kp: kp ? Number(kp) : null, M: M ?? "16" }; });
const loaded = new Map();
for (const p of plans) { const g = graphs.get(`${p.quant}:${p.M}`); const ix = g.mk(p.ef); ix.load(g.file); loaded.set(p.name, ix); }
function run(p) {
  const ix = loaded.get(p.name); const i8 = p.quant === "i8";
  const times = new Float64Array(Q); let hit = 0; const cpu = process.cpuUsage(); const s = performance.now();
  for (let i = 0; i < Q; i++) {
    const a = performance.now();
    let top;
    if (p.kp === null) top = ix.search(i8 ? i8queries[i] : queries[i], K, 1).keys;
    else {
      const r = ix.search(i8 ? i8queries[i] : queries[i], p.kp, 1).keys; const q = queries[i];
      let qn = 0; for (let j = 0; j < D; j++) qn += q[j] * q[j]; qn = Math.sqrt(qn);
      const sc = []; for (const k of r) { const row = Number(k); sc.push([row, cos(q, qn, row)]); }
      sc.sort((x, y) => y[1] - x[1]); top = sc.slice(0, K).map((x) => x[0]);
    }
    times[i] = performance.now() - a;
    for (const k of top) if (truth[i].has(Number(k))) hit++;
  }
  const wall = performance.now() - s; const u = process.cpuUsage(cpu); times.sort();
  return { recall: hit / Q / K, p50: times[Q >> 1], qps: Q / wall * 1000, cpuQps: Q / ((u.user + u.system) / 1e6) };
}
for (const p of plans) for (let i = 0; i < 100; i++) loaded.get(p.name).search(p.quant === "i8" ? i8queries[i] : queries[i], p.kp ?? K, 1);
const acc = new Map(plans.map((p) => [p.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 ? [...plans].reverse() : plans;
  for (const p of order) { const x = run(p); acc.get(p.name).push(x); console.log(`round ${r + 1} ${p.name.padEnd(14)} recall@10 ${x.recall.toFixed(3)}  p50 ${x.p50.toFixed(3)} ms  ${x.qps.toFixed(0)} q/s clock  ${x.cpuQps.toFixed(0)} q/s CPU  load ${la()}`); }
}
console.log(`summary (${values.data}, ${ROUNDS} rounds, load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}):`);
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (const p of plans) {
  const xs = acc.get(p.name); const r = (f) => `${Math.min(...xs.map(f)).toFixed(0)}–${Math.max(...xs.map(f)).toFixed(0)} (median ${median(xs.map(f)).toFixed(0)})`;
  // Paired with the f16 plan of the same ef, round by round (the same minute of the machine).
  const base = plans.find((b) => b.quant === "f16" && b.ef === p.ef && b.M === p.M);
  const ratios = base && base !== p ? xs.map((x, i) => x.cpuQps / acc.get(base.name)[i].cpuQps) : null;
  console.log(`  ${p.name.padEnd(14)} recall ${xs[0].recall.toFixed(3)}  CPU q/s ${r((x) => x.cpuQps)}  clock q/s ${r((x) => x.qps)}  p50 ${median(xs.map((x) => x.p50)).toFixed(3)} ms${ratios ? `  ÷ ${base.name} per round: ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} (median ${median(ratios).toFixed(2)})` : ""}`);
}
