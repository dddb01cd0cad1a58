/**
 * A filtered list(100) on the Postgres tier at 10 000 and 1 000 000 datums (one tag, `role`, with
 * 20 distinct values), p50 in ms: the adapter's `query`, the store's `query` (cursor, hooks), and
 * raw `pg` sending the adapter's own statement (unnamed, so planned with its values, as the adapter
 * sends it; and as a named prepared statement). Contenders alternate within each round, so they
 * share the machine's load. Also: a page past a cursor in the middle, oldest first, and
 * `chainTail(head, 20)` on a 100 000-long chain against a 20-long one.
 *
 *   npx vite-node adapters/postgres/bench-queries.mjs -- [--sizes=10000,1000000] [--runs=300] [--reuse]
 *
 * Starts the tests' throwaway cluster (test/harness/postgres.ts: fsync off, shared_buffers 32 MB)
 * unless DGENT_TEST_POSTGRES_URL names a server; `--reuse` keeps and reuses the loaded schemas
 * `bench_q_<size>` there (otherwise they are loaded afresh and dropped at the end). Loading uses
 * the adapter's putMany (multi-row INSERT of 8 192 datums per statement).
 */
import pg from "pg";
import { makeDatum } from "../../core/datum.ts";
import { encodeCursor, resolveQuery } from "../../core/query.ts";
import { createStore } from "../../core/store.ts";
import { startPostgres } from "../../test/harness/postgres.ts";
import { postgresAdapter } from "./index.ts";
import { pageSql } from "./queries.ts";
import { identifiers } from "./sql.ts";

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const SIZES = arg("sizes", "10000,1000000").split(",").map(Number);
const RUNS = Number(arg("runs", 300));
const REUSE = process.argv.includes("--reuse");
const BACKFILL = process.argv.includes("--backfill");
const CHAIN = 100_000;

const server = await startPostgres();
const raw = new pg.Client({ connectionString: server.url });
await raw.connect();

const datum = (i, extra = {}) =>
  makeDatum({
    id: `m/${String(i).padStart(8, "0")}`,
    content: `message ${i} `.padEnd(256, "."),
    createdAt: 1.7e12 + Math.floor(i / 3),
    metadata: { role: `v${(i * 7919 + (i >> 7)) % 20}` },
    ...extra,
  });

async function load(namespace, n, make) {
  const a = postgresAdapter({ url: server.url, namespace, listen: false, notify: false });
  await a.open();
  const have = (await raw.query(`SELECT count(*)::int AS n FROM ${identifiers(namespace, "data").table}`)).rows[0].n;
  if (have !== n) {
    if (have !== 0) throw new Error(`${namespace} holds ${have} datums, not ${n}: drop it`);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 8192) await a.putMany(Array.from({ length: Math.min(8192, n - i) }, (_, k) => make(i + k)));
    await raw.query(`VACUUM ANALYZE ${identifiers(namespace, "data").table}`);
    await raw.query(`VACUUM ANALYZE ${identifiers(namespace, "data").tags}`);
    console.error(`loaded ${n} into ${namespace} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return a;
}

/** p50 (ms) of each contender, alternating within each of RUNS rounds after 20 warm-up rounds. */
async function p50s(contenders) {
  const names = Object.keys(contenders);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < RUNS + 20; i++) {
    for (const n of names) {
      const t0 = performance.now();
      const rows = await contenders[n]();
      const t = performance.now() - t0;
      if (rows !== 100 && rows !== 20) throw new Error(`${n} returned ${rows} rows`);
      if (i >= 20) times[n].push(t);
    }
  }
  return Object.fromEntries(names.map((n) => [n, +times[n].sort((x, y) => x - y)[Math.floor(times[n].length / 2)].toFixed(3)]));
}

function contenders(n, a, store, q, options) {
  const sql = pageSql(identifiers(a.schema, a.table), q);
  const name = `bench_${Math.random().toString(36).slice(2)}`;
  return {
    [`adapter @${n}`]: async () => (await a.query(q)).length,
    [`store @${n}`]: async () => (await store.query(options)).items.length,
    [`raw pg @${n}`]: async () => (await raw.query(sql.text, sql.values)).rowCount,
    [`raw pg, prepared @${n}`]: async () => (await raw.query({ name, text: sql.text, values: sql.values })).rowCount,
  };
}

const results = { runs: RUNS, sizes: SIZES, pages: {}, chain: {} };
const made = [];
const stores = [];
const newest = {};
const past = {};
for (const n of SIZES) {
  const namespace = `bench_q_${n}`;
  const a = await load(namespace, n, datum);
  const store = createStore({ tiers: [a] });
  await store.open();
  made.push(namespace);
  stores.push(store);
  const middle = { createdAt: 1.7e12 + Math.floor(n / 6), id: `m/${String(Math.floor(n / 2)).padStart(8, "0")}` };
  const first = { where: { role: "v7" }, limit: 100 };
  const later = { ...first, order: "oldest", cursor: encodeCursor(resolveQuery(first), middle) };
  Object.assign(newest, contenders(n, a, store, resolveQuery(first), first));
  Object.assign(past, contenders(n, a, store, resolveQuery(later), later));
}
// Every size and contender in the same rounds: the ratios compare like with like.
results.pages["filtered list(100), newest"] = await p50s(newest);
console.error("newest", JSON.stringify(results.pages["filtered list(100), newest"]));
results.pages["filtered list(100), oldest, past a cursor mid-way"] = await p50s(past);
console.error("past a cursor", JSON.stringify(results.pages["filtered list(100), oldest, past a cursor mid-way"]));
for (const store of stores) await store.close();
// The server's own part: Execution Time of EXPLAIN ANALYZE of the same statement (p50 of RUNS).
results.serverMs = {};
for (const n of SIZES) {
  const sql = pageSql(identifiers(`bench_q_${n}`, "data"), resolveQuery({ where: { role: "v7" }, limit: 100 }));
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await raw.query(`EXPLAIN (ANALYZE, TIMING OFF) ${sql.text}`, sql.values);
    times.push(Number(/Execution Time: ([\d.]+)/.exec(r.rows.map((x) => x["QUERY PLAN"]).join("\n"))[1]));
  }
  results.serverMs[n] = +times.sort((x, y) => x - y)[Math.floor(times.length / 2)].toFixed(3);
}
console.error("server execution, newest", JSON.stringify(results.serverMs));

// --backfill: how long migration 4 takes on the largest namespace (taken back to version 3 first).
if (BACKFILL) {
  const namespace = `bench_q_${Math.max(...SIZES)}`;
  const ids = identifiers(namespace, "data");
  await raw.query(`DROP TABLE ${ids.tags} CASCADE`);
  for (const { fn } of Object.values(ids.tagsSync)) await raw.query(`DROP FUNCTION ${fn}() CASCADE`);
  await raw.query(`DROP INDEX ${ids.schema}.${ids.childrenIndex}`);
  await raw.query(`DELETE FROM ${ids.migrations} WHERE version = 4`);
  const a = postgresAdapter({ url: server.url, namespace, listen: false });
  const t0 = performance.now();
  await a.open();
  results.backfill = { datums: Math.max(...SIZES), seconds: +((performance.now() - t0) / 1000).toFixed(1), applied: (await a.stats()).migrationsApplied };
  console.error("migration 4 on", JSON.stringify(results.backfill));
  await a.close();
}

// chainTail(head, 20): a 20-long chain and a 100 000-long one, alternately.
const chains = {};
for (const length of [20, CHAIN]) {
  const namespace = `bench_chain_${length}`;
  const a = await load(namespace, length, (i) => datum(i, { causalParent: i === 0 ? null : `m/${String(i - 1).padStart(8, "0")}` }));
  made.push(namespace);
  const head = `m/${String(length - 1).padStart(8, "0")}`;
  chains[length] = async () => (await a.chainTail(head, 20)).length;
  chains[`close ${length}`] = () => a.close();
}
results.chain = await p50s({ [`chain of 20`]: chains[20], [`chain of ${CHAIN}`]: chains[CHAIN] });
await chains["close 20"]();
await chains[`close ${CHAIN}`]();
console.error("chainTail(head, 20) by chain length", JSON.stringify(results.chain));
console.log(JSON.stringify(results, null, 1));
if (!REUSE) for (const s of made) await raw.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`);
await raw.end();
await server.close();
