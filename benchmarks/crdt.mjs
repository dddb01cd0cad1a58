/**
 * CRDT speed (patterns/crdt): two measurements, each with its contender in the same run.
 *
 * 1. Increments under contention on Postgres: 16 writers (16 stores, 16 replicas) add 1 to one
 *    counter at once — as a PN-Counter (one insert per increment, never a conflict) and as a
 *    counter moved by compare-and-set on a ref (`store.refs.update`: read, put, move expecting the
 *    version read, retry on DGENT_REF_CONFLICT). Rounds alternate the two. Goal: CRDT ≥ 5× CAS.
 * 2. A merged read of a PN-Counter with 10,000 deltas since its snapshot, on SQLite: `read()`
 *    cold (the first read in a process: query every delta and snapshot, decode, join) and warm
 *    (the reader has read before; 0, 1, 10 or 100 new deltas written since by another connection).
 *    Goal: ≤ 5 ms.
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

const only = process.argv.find((a) => a.startsWith("--only="))?.split("=")[1];
const arg = (name, fallback) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const WRITERS = arg("writers", 16);
const CRDT_OPS = arg("crdt-ops", 100);
const CAS_OPS = arg("cas-ops", 20);
const DELTAS = arg("deltas", 10_000);
/** The SQLite tier's `mmapSize` for the reads (default: the adapter's). */
const MMAP = process.argv.some((a) => a.startsWith("--sqlite-mmap=")) ? arg("sqlite-mmap", 0) : undefined;
const ROUNDS = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- 1. contention on Postgres (`--only=read` skips it, and writes no results file)
const crdt = [];
const cas = [];
if (only !== "read") {
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

  for (let r = 0; r < ROUNDS; r++) {
    crdt.push(await crdtRound(r));
    cas.push(await casRound(r));
    console.log(`round ${r + 1}: CRDT ${crdt[r].toFixed(0)} increments/s, CAS ${cas[r].opsPerSec.toFixed(0)} increments/s (${cas[r].attemptsPerOp.toFixed(1)} attempts each)`);
  }
  for (const s of stores) await s.close();
  await cluster.stop();
}

// ---- 2. merged read on SQLite
// Wall time and the process's CPU time (user + system) of each read: on a shared machine the wall
// time includes the time the process waited for a core; the CPU time is what the read itself cost.
const dbDir = mkdtempSync(join(tmpdir(), "dgent-bench-crdt-"));
const dbPath = join(dbDir, "read.db");
const openLocal = async (mmap = MMAP) => {
  const s = createStore({ tiers: [sqliteAdapter({ path: dbPath, ...(mmap === undefined ? {} : { mmapSize: mmap }) })], upgrader: false });
  await s.open();
  return s;
};
const timed = async (f) => {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const r = await f();
  const wall = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { r, wall, cpu: (used.user + used.system) / 1000 };
};
const summary = (xs) => ({ medianMs: Number(median(xs.map((x) => x.wall)).toFixed(2)), minMs: Number(Math.min(...xs.map((x) => x.wall)).toFixed(2)), cpuMedianMs: Number(median(xs.map((x) => x.cpu)).toFixed(2)), samples: xs.length });
const local = await openLocal();
const writers = Array.from({ length: 16 }, (_, w) => pnCounter(local, { name: "reads", replica: `w${w}`, compactEvery: Infinity }));
for (const c of writers) await c.increment(5);
await writers[0].compact();
await Promise.all(writers.map(async (c, w) => { for (let i = w; i < DELTAS; i += writers.length) await c.increment(1); }));
let expectedValue = 16 * 5 + DELTAS;

// Cold: the first read of the value in a process (a new store, so a new view): every delta and the snapshot.
const coldReads = async (mmap) => {
  const xs = [];
  for (let i = 0; i < 7; i++) {
    const s = await openLocal(mmap);
    const reader = pnCounter(s, { name: "reads", compactEvery: Infinity });
    const x = await timed(() => reader.read());
    if (x.r.via !== "full" || x.r.deltas.length !== DELTAS || x.r.snapshots.length !== 1) throw new Error(`a cold read found ${x.r.deltas.length} deltas via ${x.r.via}`);
    xs.push(x);
    await s.close();
  }
  return summary(xs);
};
const cold = await coldReads(MMAP);
const coldNoMmap = await coldReads(0);

// `value()`: a counter's merged value, read as one delta per replica (checked by counting the
// deltas; the path `read()` above takes when the counts disagree). Cold: a new store each time.
const coldValues = async () => {
  const xs = [];
  for (let i = 0; i < 7; i++) {
    const s = await openLocal();
    const x = await timed(() => pnCounter(s, { name: "reads", compactEvery: Infinity }).value());
    if (x.r !== expectedValue) throw new Error(`a cold value() read ${x.r}, not ${expectedValue}`);
    xs.push(x);
    await s.close();
  }
  return summary(xs);
};
const coldValue = await coldValues();
console.log(`cold value(): ${coldValue.medianMs} ms (CPU ${coldValue.cpuMedianMs} ms)`);

// Warm: a reader that has read before, while another connection to the file (as another process
// would) writes n new deltas between two reads. Once with the reader's store as configured, once
// with `mmapSize: 0` (after another connection wrote, SQLite's memory map costs page faults).
const other = await openLocal(MMAP);
const writer = pnCounter(other, { name: "reads", replica: "other", compactEvery: Infinity });
await writer.value();
const warmReads = async (readerStore, label) => {
  const reader = pnCounter(readerStore, { name: "reads", compactEvery: Infinity });
  await reader.read();
  const out = {};
  for (const n of [0, 1, 10, 100]) {
    const xs = [];
    for (let i = 0; i < 15; i++) {
      for (let k = 0; k < n; k++) await writer.increment(1);
      expectedValue += n;
      const x = await timed(() => reader.read());
      if (x.r.via !== "incremental") throw new Error(`a warm read went ${x.r.via}`);
      xs.push(x);
    }
    out[n] = summary(xs);
    console.log(`warm read (${label}), ${n} new deltas: ${out[n].medianMs} ms (CPU ${out[n].cpuMedianMs} ms)`);
  }
  return out;
};
const warm = await warmReads(local, "as configured");
// `value()` again after another connection wrote one delta (the handle keeps no view for it: the
// same one-delta-per-replica read, now with 17 replicas).
const warmValue = await (async () => {
  const valuer = pnCounter(local, { name: "reads", compactEvery: Infinity });
  await valuer.value();
  const xs = [];
  for (let i = 0; i < 15; i++) {
    await writer.increment(1);
    expectedValue += 1;
    const x = await timed(() => valuer.value());
    if (x.r !== expectedValue) throw new Error(`a warm value() read ${x.r}, not ${expectedValue}`);
    xs.push(x);
  }
  return summary(xs);
})();
console.log(`warm value(), 1 new delta: ${warmValue.medianMs} ms (CPU ${warmValue.cpuMedianMs} ms)`);
const noMmapStore = await openLocal(0);
const warmNoMmap = await warmReads(noMmapStore, "mmapSize 0");
await noMmapStore.close();
const reader = pnCounter(local, { name: "reads", compactEvery: Infinity });
const deltasNow = (await reader.read()).deltas.length;
if ((await reader.value()) !== expectedValue) throw new Error(`merged value ${await reader.value()}, not ${expectedValue}`);
const t = performance.now();
await reader.compact();
const compactMs = performance.now() - t;
const afterCompact = await timed(async () => {
  const s = await openLocal();
  try {
    return await pnCounter(s, { name: "reads", compactEvery: Infinity }).read();
  } finally {
    await s.close();
  }
});
await other.close();
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
    casAttemptsPerIncrement: cas.length ? Number(median(cas.map((c) => c.attemptsPerOp)).toFixed(2)) : null,
    ratio: cas.length ? Number((median(crdt) / median(cas.map((c) => c.opsPerSec))).toFixed(1)) : null,
    goal: "ratio ≥ 5",
  },
  mergedRead: {
    backend: "sqlite",
    mmapSize: MMAP ?? "the adapter's default",
    deltasSinceSnapshot: DELTAS,
    coldValue,
    warmValue,
    cold,
    warm,
    coldMmap0: coldNoMmap,
    warmMmap0: warmNoMmap,
    deltasAtCompaction: deltasNow,
    compactMs: Number(compactMs.toFixed(1)),
    coldAfterCompactionMs: Number(afterCompact.wall.toFixed(2)),
    goal: "≤ 5 ms",
  },
};
if (only === "read") {
  console.log(JSON.stringify(results.mergedRead, null, 2));
  process.exit(0);
}
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
| merged value (\`value()\`) of a PN-Counter with ${m.deltasSinceSnapshot} deltas since its snapshot over 16 replicas, SQLite, **cold**: the first read in a process (a new store) | **${m.coldValue.medianMs} ms** (CPU ${m.coldValue.cpuMedianMs} ms, best ${m.coldValue.minMs} ms) | ≤ 5 ms | ${m.coldValue.medianMs <= 5 ? "yes" : "no"} |
| the same \`value()\` again after another connection wrote 1 delta (17 replicas) | **${m.warmValue.medianMs} ms** (CPU ${m.warmValue.cpuMedianMs} ms, best ${m.warmValue.minMs} ms) | ≤ 5 ms | ${m.warmValue.medianMs <= 5 ? "yes" : "no"} |
| merged state with every delta's id (\`read()\`, the inspection read) of the same counter, SQLite, **warm**: the reader has read before, 1 new delta since (another connection wrote it) | **${m.warm[1].medianMs} ms** (CPU ${m.warm[1].cpuMedianMs} ms, best ${m.warm[1].minMs} ms) | — (reference) | |
| the same, 0 / 10 / 100 new deltas since | ${m.warm[0].medianMs} / ${m.warm[10].medianMs} / ${m.warm[100].medianMs} ms (CPU ${m.warm[0].cpuMedianMs} / ${m.warm[10].cpuMedianMs} / ${m.warm[100].cpuMedianMs} ms) | — (reference) | |
| the same read **cold**: the first in a process (a new store), every delta and the snapshot | **${m.cold.medianMs} ms** (CPU ${m.cold.cpuMedianMs} ms, best ${m.cold.minMs} ms) | — (reference) | |
| with the reader's SQLite store at \`mmapSize: 0\`: warm, 0 / 1 / 10 / 100 new deltas | ${[0, 1, 10, 100].map((k) => m.warmMmap0[k].medianMs).join(" / ")} ms (CPU ${[0, 1, 10, 100].map((k) => m.warmMmap0[k].cpuMedianMs).join(" / ")} ms) | — (reference) | |
| … cold | ${m.coldMmap0.medianMs} ms (CPU ${m.coldMmap0.cpuMedianMs} ms, best ${m.coldMmap0.minMs} ms) | — (reference) | |
| compaction of the ${m.deltasAtCompaction} deltas into one snapshot | ${m.compactMs} ms | | |
| a cold read after that compaction (opening the store included) | ${m.coldAfterCompactionMs} ms | | |

Contention: medians of ${ROUNDS} alternating rounds (CRDT: ${CRDT_OPS} increments per writer; CAS: ${CAS_OPS}).
Reads: medians of ${m.cold.samples} cold reads (each in a new store) and of ${m.warm[1].samples} warm reads per row; "CPU" is the
process's user + system time during the read (the wall time on a loaded machine also holds the time
the process waited for a core). The SQLite stores use the adapter's default options (\`mmapSize\`
${m.mmapSize}) except in the two \`mmapSize: 0\` rows, where the reader's store maps nothing: after
another connection wrote, reading the index pages again through the memory map costs the reader
more CPU than reading them into SQLite's page cache.

What the rows measure: \`value()\` is an agent's merged read of the counter. A counter's delta of
write n covers its replica's writes 1..n, so \`value()\` reads each replica's marker, its newest
delta and how many deltas it has, then the snapshots — about two queries per replica, whatever the
number of deltas — and checks that the deltas under the marked replicas add up to every delta
stored (else it reads everything, as \`read()\` does). \`read()\` returns the merged state *with the
id of every delta it joins*, so it reads every delta: cold, the first read of a value in a process,
costs every delta since the snapshot (bounded by \`compactEvery\`, default 1000); warm, only the
deltas that arrived since, after checking the snapshot ids and counting the deltas in the \`crdt\`
tag's index.
`,
);
console.log(JSON.stringify(results, null, 2));
