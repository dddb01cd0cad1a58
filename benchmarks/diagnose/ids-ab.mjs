/**
 * Diagnosis: an ids page on Postgres, the raw baseline's statement against `adapter.queryIds` and
 * `store.query({ where: { topic }, limit: 100, select: "ids" })`, alternated in rounds of 40 calls
 * (60 rounds); prints each contender's median round and the median of its per-round ratio to raw.
 * Runs on a schema a kept diagnose left (`KEEP=<schema> npx vite-node benchmarks/diagnose/postgres-ids.ts`),
 * against the built package in `DIST` (default this checkout's dist/), so two builds can be compared
 * on the same tables.
 *
 *   node benchmarks/diagnose/ids-ab.mjs <schema> [postgres://…]
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dist = resolve(process.env.DIST ?? new URL("../../dist", import.meta.url).pathname);
const load = (p) => import(pathToFileURL(resolve(dist, p)).href);
const { createStore } = await load("core/store.js");
const { postgresAdapter } = await load("adapters/postgres/index.js");
const { resolveQuery } = await load("core/query.js");
const { rawPgQueries } = await import(new URL("../../dist/benchmarks/tiers/queries-raw.js", import.meta.url).href);

const namespace = process.argv[2] ?? "diag_keep";
const url = process.argv[3] ?? process.env.DGENT_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const adapter = postgresAdapter({ url, namespace });
const store = createStore({ tiers: [adapter] });
await store.open();
const raw = await rawPgQueries(url, namespace);
const values = Array.from({ length: 20 }, (_, i) => `t${String(i).padStart(2, "0")}`);
const subjects = {
  raw: (v) => raw.ids(v, 100),
  "adapter.queryIds": (v) => adapter.queryIds(resolveQuery({ where: { topic: v }, limit: 100, select: "ids" })),
  "store.query": (v) => store.query({ where: { topic: v }, limit: 100, select: "ids" }),
};
const same = JSON.stringify(await subjects.raw(values[0])) === JSON.stringify((await subjects["store.query"](values[0])).items);
if (!same) throw new Error("dgent and the raw statement disagree");
const rounds = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
for (let round = 0; round < 60; round++) {
  for (const [name, run] of Object.entries(subjects)) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 40; i++) await run(values[(i + round) % values.length]);
    rounds[name].push(Number(process.hrtime.bigint() - t) / 40 / 1000);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const [name, r] of Object.entries(rounds)) {
  console.log(`${name.padEnd(18)} ${median(r).toFixed(1).padStart(7)} µs   ÷ raw (median of rounds) ${median(r.map((x, i) => x / rounds.raw[i])).toFixed(2)}×`);
}
await raw.close();
await store.close();
