/**
 * Diagnosis: an ids page on SQLite, the raw baseline's statement against
 * `store.query({ where: { topic }, limit: 100, select: "ids" })` of one or two built packages, on
 * one kept database file, alternated in rounds of 40 calls (60 rounds, `ROUNDS=` to change);
 * prints each contender's median round and the median of its per-round ratio to raw, in wall time
 * and in the process's CPU time (steadier on a loaded machine: time spent waiting for a core is
 * not counted). The first
 * run fills `<dir>` with `--n` datums (default 1,000,000) through the package in `DIST`. `DIST`
 * (default this checkout's dist/) is contender "A"; `DIST_B`, when set, is contender "B" on the
 * same file, so two builds are compared in the same rounds.
 *
 *   node benchmarks/diagnose/sqlite-ids-ab.mjs <dir> [--n 1000000]
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const here = new URL("../../dist", import.meta.url).pathname;
const loader = (dist) => (p) => import(pathToFileURL(resolve(dist, p)).href);
const dirArg = process.argv[2];
if (dirArg === undefined || dirArg.startsWith("--")) throw new Error("usage: node benchmarks/diagnose/sqlite-ids-ab.mjs <dir> [--n 1000000]");
const dir = resolve(dirArg);
const at = process.argv.indexOf("--n");
const n = at >= 0 ? Number(process.argv[at + 1]) : 1_000_000;
const builds = { A: process.env.DIST ?? here, ...(process.env.DIST_B ? { B: process.env.DIST_B } : {}) };

const { QUERY_TAG, QUERY_VALUES, queryDatum } = await import(pathToFileURL(resolve(here, "benchmarks/workload.js")).href);
const { rawSqliteQueries } = await import(pathToFileURL(resolve(here, "benchmarks/tiers/queries-raw.js")).href);

const stores = {};
for (const [name, dist] of Object.entries(builds)) {
  const load = loader(dist);
  const { createStore } = await load("core/store.js");
  const { sqliteAdapter } = await load("adapters/sqlite/index.js");
  stores[name] = createStore({ tiers: [sqliteAdapter({ dataDir: dir, namespace: "q" })] });
}
const fill = !existsSync(resolve(dir, "q.db"));
for (const store of Object.values(stores)) await store.open();
if (fill) {
  const t0 = Date.now() - n;
  const t = Date.now();
  for (let s = 0; s < n; s += 5000) await stores.A.putMany(Array.from({ length: Math.min(5000, n - s) }, (_, k) => queryDatum(s + k, null, t0 + s + k)));
  console.log(`filled ${n} datums in ${((Date.now() - t) / 1000).toFixed(0)} s`);
}
const raw = rawSqliteQueries(resolve(dir, "q.db"));
const subjects = { raw: (v) => raw.ids(v, 100) };
for (const [name, store] of Object.entries(stores)) subjects[`store.query ${name}`] = (v) => store.query({ where: { [QUERY_TAG]: v }, limit: 100, select: "ids" });
for (const [name, run] of Object.entries(subjects)) {
  if (name === "raw") continue;
  const page = await run(QUERY_VALUES[0]);
  if (JSON.stringify(page.items) !== JSON.stringify(raw.ids(QUERY_VALUES[0], 100)) || page.cursor === null) throw new Error(`${name} and the raw statement disagree`);
}
const rounds = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
const cpu = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
const count = Number(process.env.ROUNDS ?? 60);
for (let round = 0; round < count; round++) {
  const order = Object.entries(subjects);
  if (round % 2 === 1) order.reverse();
  for (const [name, run] of order) {
    const c = process.cpuUsage();
    const t = process.hrtime.bigint();
    for (let i = 0; i < 40; i++) await run(QUERY_VALUES[(i + round) % QUERY_VALUES.length]);
    rounds[name].push(Number(process.hrtime.bigint() - t) / 40 / 1000);
    const d = process.cpuUsage(c);
    cpu[name].push((d.user + d.system) / 40);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const ratio = (of, name) => median(of[name].map((x, i) => x / of.raw[i])).toFixed(2);
for (const name of Object.keys(rounds)) {
  console.log(
    `${name.padEnd(16)} wall ${median(rounds[name]).toFixed(1).padStart(7)} µs, ÷ raw ${ratio(rounds, name)}×   ` +
      `CPU ${median(cpu[name]).toFixed(1).padStart(7)} µs, ÷ raw ${ratio(cpu, name)}×`,
  );
}
await raw.close();
for (const store of Object.values(stores)) await store.close();
