// CPU per read call, dgent's SQLite saver against LangGraph's SqliteSaver in one process, rounds of
// 100 calls taking turns (README "Speed"): the bench.mjs workload (10 threads × 100 supersteps),
// then getTuple latest, getTuple by id and list with a metadata filter; medians of the rounds.
//
//   npm run build && node integrations/langgraph/bench-reads-cpu.mjs [saver] [rounds]
//   (OPS=latest,byId,filter picks operations; PROF=<dir> writes a CPU profile of the reads)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { createStore, sqliteAdapter } from "dgent";
import { DgentSaver } from "dgent/integrations/langgraph";
const dir = mkdtempSync(join(tmpdir(), "gt-"));
const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "d.db") })] });
const savers = { dgent: new DgentSaver({ store }), official: SqliteSaver.fromConnString(join(dir, "o.db")) };
const State = Annotation.Root({ step: Annotation(), log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }), a: Annotation(), b: Annotation(), c: Annotation() });
const g = (cp) => new StateGraph(State)
  .addNode("plan", (s) => ({ step: (s.step ?? 0) + 1, a: `plan ${s.step}`, log: [`p${s.step}`] }))
  .addNode("act", (s) => ({ step: s.step + 1, b: { result: s.step, detail: "x".repeat(64) }, log: [`a${s.step}`] }))
  .addNode("check", (s) => ({ step: s.step + 1, c: s.step % 7 === 0, log: [`c${s.step}`] }))
  .addEdge(START, "plan").addEdge("plan", "act").addEdge("act", "check")
  .addConditionalEdges("check", (s) => (s.step < 99 ? "plan" : END)).compile({ checkpointer: cp });
for (const [n, s] of Object.entries(savers)) { const gg = g(s); for (let t = 0; t < 10; t++) await gg.invoke({ step: 0 }, { configurable: { thread_id: `t${t}` }, recursionLimit: 110 }); }
const ids = {};
for (const [n, s] of Object.entries(savers)) { ids[n] = []; for (let t = 0; t < 10; t++) for await (const x of s.list({ configurable: { thread_id: `t${t}`, checkpoint_ns: "" } }, { limit: 20 })) ids[n].push(x.config); }
const thread = (i) => ({ configurable: { thread_id: `t${i % 10}`, checkpoint_ns: "" } });
const drain = async (gen) => { let k = 0; for await (const _ of gen) k++; return k; };
const ops = {
  latest: (s, i) => s.getTuple(thread(i)),
  byId: (s, i, n) => s.getTuple(ids[n][(i * 7) % ids[n].length]),
  filter: (s, i) => drain(s.list(thread(i), { filter: { step: 50 } })),
};
const only = process.argv[2];
const inspector = await import("node:inspector/promises");
const sess = new inspector.Session(); sess.connect();
if (process.env.PROF) { await sess.post("Profiler.enable"); await sess.post("Profiler.start"); }
const opsOnly = process.env.OPS?.split(",");
for (const k of Object.keys(ops)) if (opsOnly && !opsOnly.includes(k)) delete ops[k];
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const R = Number(process.argv[3] ?? 20), N = 100;
const res = {};
for (let r = 0; r < R; r++) for (const [op, f] of Object.entries(ops)) for (const [n, s] of Object.entries(savers)) {
  if (only && n !== only) continue;
  const c = cpu(); for (let i = 0; i < N; i++) await f(s, r * N + i, n); ((res[op] ??= {})[n] ??= []).push((cpu() - c) / N);
}
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
for (const [op, v] of Object.entries(res)) console.log(op.padEnd(8), Object.entries(v).map(([n, xs]) => `${n} ${med(xs.slice(2)).toFixed(1)}`).join("  "), v.dgent && v.official ? `ratio ${(med(v.dgent.slice(2)) / med(v.official.slice(2))).toFixed(2)}` : "");
if (process.env.PROF) { const { profile } = await sess.post("Profiler.stop"); (await import("node:fs")).mkdirSync(process.env.PROF, { recursive: true }); (await import("node:fs")).writeFileSync(process.env.PROF + "/x.cpuprofile", JSON.stringify(profile)); }
await store.close();
savers.official.db.close();
rmSync(dir, { recursive: true, force: true });
