// DgentSaver next to LangGraph's own savers on one workload (README "Speed"): a 3-node graph
// with 5 channels, 100 supersteps per thread, 10 threads, on each saver; then getTuple (latest,
// and by id) and list (limit 10, and a metadata filter) on the finished threads. The savers take
// turns (thread by thread, call by call; who goes first rotates, as the one after the memory
// savers pays for their garbage collection), so a busy machine slows them alike; each call is timed
// in wall time and in this process's CPU time (`process.cpuUsage`), which other processes do not
// inflate.
//
// The Postgres savers (dgent's Postgres tier and LangGraph's `PostgresSaver`) run against
// DGENT_BENCH_POSTGRES_URL, else a throwaway cluster (benchmarks/pg-cluster.mjs), each in its own
// schema.
//
//   npm run build && node integrations/langgraph/bench.mjs [--threads 10] [--steps 100] [--savers dgent-sqlite,sqlite-saver,…]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Annotation, END, MemorySaver, START, StateGraph } from "@langchain/langgraph";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { createStore, memoryAdapter, sqliteAdapter } from "dgent";
import { postgresAdapter } from "dgent/adapters/postgres";
import { throwawayCluster } from "../../benchmarks/pg-cluster.mjs";
import { DgentSaver } from "dgent/integrations/langgraph";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const THREADS = Number(arg("threads", 10));
const STEPS = Number(arg("steps", 100));
const dir = mkdtempSync(join(tmpdir(), "dgent-lg-bench-"));

const names = arg("savers", "dgent-sqlite,dgent-sqlite-ref,sqlite-saver,dgent-postgres,postgres-saver,dgent-memory,memory-saver").split(",");
const needsPg = names.some((n) => n.includes("postgres"));
const cluster = needsPg && !process.env.DGENT_BENCH_POSTGRES_URL ? await throwawayCluster() : null;
const pgUrl = process.env.DGENT_BENCH_POSTGRES_URL ?? cluster?.url;
const run = `b${process.pid}`;
const makers = {
  "dgent-sqlite": () => new DgentSaver({ store: createStore({ tiers: [sqliteAdapter({ path: join(dir, "dgent.db") })] }) }),
  "dgent-sqlite-ref": () => new DgentSaver({ store: createStore({ tiers: [sqliteAdapter({ path: join(dir, "dgent-ref.db") })] }), latest: "ref" }),
  "sqlite-saver": () => SqliteSaver.fromConnString(join(dir, "official.db")),
  "dgent-postgres": () =>
    new DgentSaver({ store: createStore({ tiers: [postgresAdapter({ url: pgUrl, namespace: `lg_${run}` })] }) }),
  "postgres-saver": () => PostgresSaver.fromConnString(pgUrl, { schema: `lgo_${run}` }),
  "dgent-memory": () => new DgentSaver({ store: createStore({ tiers: [memoryAdapter()] }) }),
  "memory-saver": () => new MemorySaver(),
};
const savers = Object.fromEntries(names.map((n) => [n, makers[n]()]));
for (const n of names) await savers[n].setup?.();

const State = Annotation.Root({
  step: Annotation(),
  log: Annotation({ reducer: (a, b) => a.concat(b), default: () => [] }),
  a: Annotation(),
  b: Annotation(),
  c: Annotation(),
});

const samples = {}; // saver → label → { wall: [], cpu: [] }
const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
function record(saver, label, wall, cpu) {
  const s = ((samples[saver] ??= {})[label] ??= { wall: [], cpu: [] });
  s.wall.push(wall);
  if (cpu !== null) s.cpu.push(cpu);
}

/** Times the saver's own calls made by the graph (wall time only: the graph works in between). */
function instrument(name, saver) {
  for (const method of ["put", "putWrites", "getTuple"]) {
    const original = saver[method].bind(saver);
    saver[method] = async (...args) => {
      const t0 = performance.now();
      try {
        return await original(...args);
      } finally {
        record(name, `${method} (in the run)`, (performance.now() - t0) * 1000, null);
      }
    };
  }
  return saver;
}

function graphOn(checkpointer) {
  return new StateGraph(State)
    .addNode("plan", (s) => ({ step: (s.step ?? 0) + 1, a: `plan ${s.step}`, log: [`p${s.step}`] }))
    .addNode("act", (s) => ({ step: s.step + 1, b: { result: s.step, detail: "x".repeat(64) }, log: [`a${s.step}`] }))
    .addNode("check", (s) => ({ step: s.step + 1, c: s.step % 7 === 0, log: [`c${s.step}`] }))
    .addEdge(START, "plan")
    .addEdge("plan", "act")
    .addEdge("act", "check")
    .addConditionalEdges("check", (s) => (s.step < STEPS - 1 ? "plan" : END))
    .compile({ checkpointer });
}

// The workload: thread t on every saver, then thread t + 1.
const graphs = Object.fromEntries(names.map((n) => [n, graphOn(instrument(n, savers[n]))]));
/** The savers in turn order for round `i`: the first one rotates. */
const turn = (i) => names.map((_, k) => names[(i + k) % names.length]);
for (let t = 0; t < THREADS; t++) {
  for (const n of turn(t)) {
    const [w0, c0] = [performance.now(), cpuNow()];
    await graphs[n].invoke({ step: 0 }, { configurable: { thread_id: `t${t}` }, recursionLimit: STEPS + 10 });
    record(n, "graph run, one thread (ms)", performance.now() - w0, (cpuNow() - c0) / 1000);
  }
}

// Reads on the finished threads, the savers taking turns call by call.
const thread = (i) => ({ configurable: { thread_id: `t${i % THREADS}`, checkpoint_ns: "" } });
const ids = Object.fromEntries(names.map((n) => [n, []]));
for (const n of names) for (let t = 0; t < THREADS; t++) for await (const tuple of savers[n].list(thread(t), { limit: 20 })) ids[n].push(tuple.config);
const drain = async (gen) => {
  let k = 0;
  for await (const _ of gen) k++;
  return k;
};
const reads = {
  "getTuple latest": (s, i) => s.getTuple(thread(i)),
  "getTuple by id": (s, i, n) => s.getTuple(ids[n][(i * 7) % ids[n].length]),
  "list limit 10": (s, i) => drain(s.list(thread(i), { limit: 10 })),
  "list filter {step: 50}": (s, i) => drain(s.list(thread(i), { filter: { step: 50 } })),
};
for (const [label, fn] of Object.entries(reads)) {
  for (let i = 0; i < 400; i++) {
    for (const n of turn(i)) {
      const [w0, c0] = [performance.now(), cpuNow()];
      await fn(savers[n], i, n);
      record(n, label, (performance.now() - w0) * 1000, cpuNow() - c0);
    }
  }
}
for (const n of names) {
  await savers[n].end?.();
  if (savers[n] instanceof DgentSaver) await (await savers[n].store()).close(); // a store passed in stays open after end()
}
rmSync(dir, { recursive: true, force: true });
await cluster?.stop();

const p50 = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const cell = (x) => (x === null ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
console.log(`${THREADS} threads × ${STEPS} supersteps, a 3-node graph with 5 channels; p50 (µs unless marked), wall / CPU\n`);
const labels = Object.keys(samples[names[0]]);
console.log(["".padEnd(30), ...names.map((n) => n.padStart(19))].join(" "));
for (const label of labels) {
  const row = names.map((n) => {
    const s = samples[n][label];
    return `${cell(p50(s.wall))} / ${cell(p50(s.cpu))}`.padStart(19);
  });
  console.log([label.padEnd(30), ...row].join(" "));
}
