/**
 * CRDT speed (patterns/crdt): two measurements, each with its contender in the same run.
 *
 * 1. Increments under contention on Postgres: 16 writers (16 stores, 16 replicas) add 1 to one
 *    counter at once — as a PN-Counter (one insert per increment, never a conflict) and as a
 *    counter moved by compare-and-set on a ref (`store.refs.update`: read, put, move expecting the
 *    version read, retry on DGENT_REF_CONFLICT). Rounds alternate the two. Goal: CRDT ≥ 5× CAS.
 * 2. A merged read of a PN-Counter with 10,000 deltas since its snapshot, on SQLite: `read()`
 *    (query every delta and snapshot, decode, join). Goal: ≤ 5 ms.
 *
 *   npm run build && node benchmarks/crdt.mjs [--writers=16] [--crdt-ops=100] [--cas-ops=20] [--deltas=10000]
 *
 * Uses DGENT_BENCH_POSTGRES_URL (or DGENT_TEST_POSTGRES_URL) when set; otherwise starts a
 * throwaway cluster (fsync off, like the tests). Writes benchmarks/results/crdt.{json,md}.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createStore, makeDatum } from "dgent";
import { postgresAdapter } from "dgent/adapters/postgres";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { pnCounter } from "dgent/patterns";
import { throwawayCluster } from "./pg-cluster.mjs";

const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const WRITERS = arg("writers", 16);
const CRDT_OPS = arg("crdt-ops", 100);
const CAS_OPS = arg("cas-ops", 20);
const DELTAS = arg("deltas", 10_000);
const ROUNDS = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- 1. contention on Postgres
const external = process.env.DGENT_BENCH_POSTGRES_URL ?? process.env.DGENT_TEST_POSTGRES_URL;
const cluster = external ? { url: external, stop: async () => undefined } : await throwawayCluster();
const namespace = `bench_crdt_${randomBytes(4).toString("hex")}`;
const stores = [];
for (let w = 0; w < WRITERS; w++) {
  const store = createStore({ tiers: [postgresAdapter({ url: cluster.url, namespace, listen: false, notify: false })], upgrader: false });
  await store.open();
  stores.push(store);
}

async function crdtRound(round) {
  const counters = stores.map((s, w) => pnCounter(s, { name: `c${round}`, replica: `w${w}`, compactEvery: Infinity }));
  await Promise.all(counters.map((c) => c.value())); // first reads out of the timing
  const t = performance.now();
  await Promise.all(counters.map(async (c) => { for (let i = 0; i < CRDT_OPS; i++) await c.increment(); }));
  const ms = performance.now() - t;
  const value = await counters[0].value();
  if (value !== WRITERS * CRDT_OPS) throw new Error(`CRDT counter ended at ${value}, not ${WRITERS * CRDT_OPS}`);
  return (WRITERS * CRDT_OPS) / (ms / 1000);
}

async function casRound(round) {
  const name = `cas/${round}`;
  let attempts = 0;
  const step = (store) => store.refs.update(name, ({ datum }) => {
    attempts++;
    const n = datum === null ? 0 : Number(Buffer.from(datum.content).toString());
    return makeDatum({ content: String(n + 1) });
  }, { attempts: 1000 });
  const t = performance.now();
  await Promise.all(stores.map(async (s) => { for (let i = 0; i < CAS_OPS; i++) await step(s); }));
  const ms = performance.now() - t;
  const ref = await stores[0].refs.get(name);
  const value = Number(Buffer.from((await stores[0].get(ref.target)).content).toString());
  if (value !== WRITERS * CAS_OPS) throw new Error(`CAS counter ended at ${value}, not ${WRITERS * CAS_OPS}`);
  return { opsPerSec: (WRITERS * CAS_OPS) / (ms / 1000), attemptsPerOp: attempts / (WRITERS * CAS_OPS) };
}

const crdt = [];
const cas = [];
for (let r = 0; r < ROUNDS; r++) {
  crdt.push(await crdtRound(r));
  cas.push(await casRound(r));
  console.log(`round ${r + 1}: CRDT ${crdt[r].toFixed(0)} increments/s, CAS ${cas[r].opsPerSec.toFixed(0)} increments/s (${cas[r].attemptsPerOp.toFixed(1)} attempts each)`);
}
for (const s of stores) await s.close();
await cluster.stop();

// ---- 2. merged read on SQLite
const dbDir = mkdtempSync(join(tmpdir(), "dgent-bench-crdt-"));
const local = createStore({ tiers: [sqliteAdapter({ path: join(dbDir, "read.db") })], upgrader: false });
await local.open();
const writers = Array.from({ length: 16 }, (_, w) => pnCounter(local, { name: "reads", replica: `w${w}`, compactEvery: Infinity }));
for (const c of writers) await c.increment(5);
await writers[0].compact();
await Promise.all(writers.map(async (c, w) => { for (let i = w; i < DELTAS; i += writers.length) await c.increment(1); }));
const reader = pnCounter(local, { name: "reads", compactEvery: Infinity });
const first = await reader.read();
if (first.deltas.length !== DELTAS || first.snapshots.length !== 1) throw new Error(`expected ${DELTAS} deltas and 1 snapshot, found ${first.deltas.length} and ${first.snapshots.length}`);
const readMs = [];
for (let i = 0; i < 15; i++) {
  const t = performance.now();
  const r = await reader.read();
  readMs.push(performance.now() - t);
  if (r.deltas.length !== DELTAS) throw new Error("the read lost deltas");
}
const expectedValue = 16 * 5 + DELTAS;
if ((await reader.value()) !== expectedValue) throw new Error(`merged value ${await reader.value()}, not ${expectedValue}`);
const t = performance.now();
await reader.compact();
const compactMs = performance.now() - t;
const t2 = performance.now();
await reader.read();
const afterCompactMs = performance.now() - t2;
await local.close();
rmSync(dbDir, { recursive: true, force: true });

const results = {
  when: new Date().toISOString(),
  machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))) },
  contention: {
    backend: "postgres",
    writers: WRITERS,
    crdtIncrementsPerSec: Math.round(median(crdt)),
    casIncrementsPerSec: Math.round(median(cas.map((c) => c.opsPerSec))),
    casAttemptsPerIncrement: Number(median(cas.map((c) => c.attemptsPerOp)).toFixed(2)),
    ratio: Number((median(crdt) / median(cas.map((c) => c.opsPerSec))).toFixed(1)),
    goal: "ratio ≥ 5",
  },
  mergedRead: {
    backend: "sqlite",
    deltasSinceSnapshot: DELTAS,
    medianMs: Number(median(readMs).toFixed(1)),
    minMs: Number(Math.min(...readMs).toFixed(1)),
    compactMs: Number(compactMs.toFixed(1)),
    afterCompactionMs: Number(afterCompactMs.toFixed(2)),
    goal: "≤ 5 ms",
  },
};
const out = fileURLToPath(new URL("./results/", import.meta.url));
writeFileSync(join(out, "crdt.json"), `${JSON.stringify(results, null, 2)}\n`);
const c = results.contention;
const m = results.mergedRead;
writeFileSync(
  join(out, "crdt.md"),
  `# CRDT benchmark

\`node benchmarks/crdt.mjs\` on ${results.when.slice(0, 10)}, ${results.machine.cpus} CPUs, load average ${results.machine.loadavg.join(" / ")} (a shared machine: ratios within one run are what to read).

| measurement | result | goal | met |
|---|---|---|---|
| PN-Counter increments, ${c.writers} concurrent writers on Postgres | ${c.crdtIncrementsPerSec}/s | | |
| the same counter by compare-and-set on a ref (\`refs.update\`) | ${c.casIncrementsPerSec}/s, ${c.casAttemptsPerIncrement} attempts per increment | | |
| CRDT ÷ CAS | **${c.ratio}×** | ≥ 5× | ${c.ratio >= 5 ? "yes" : "no"} |
| merged read (\`read()\`) of a counter with ${m.deltasSinceSnapshot} deltas since its snapshot, SQLite (median of 15) | **${m.medianMs} ms** (best ${m.minMs} ms) | ≤ 5 ms | ${m.medianMs <= 5 ? "yes" : "no"} |
| compaction of those deltas into one snapshot | ${m.compactMs} ms | | |
| the read after compaction | ${m.afterCompactionMs} ms | | |

Medians of ${ROUNDS} alternating rounds (CRDT: ${CRDT_OPS} increments per writer; CAS: ${CAS_OPS}).
`,
);
console.log(JSON.stringify(results, null, 2));
