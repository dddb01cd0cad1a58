/**
 * Diagnosis: where an ids page (`store.query({ where: { topic }, limit: 100, select: "ids" })`)
 * spends its time on Postgres, layer by layer, against the raw baseline's named statement on the
 * same tables: the raw statement, the same with `created_at` on every row, dgent's own statement
 * sent raw, `adapter.queryIds`, `store.query`. The twin of sqlite-ids.ts; builds one store of
 * `--n` datums (default 100,000) in a fresh schema, vacuumed, and drops it at the end.
 *
 *   DGENT_BENCH_POSTGRES_URL=postgres://… npx vite-node benchmarks/diagnose/postgres-ids.ts -- [--n 100000]
 *   (without the variable: the harness's throwaway cluster)
 */
import pg from "pg";
import { resolveQuery } from "../../core/query.js";
import { createStore } from "../../core/store.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { idsSql } from "../../adapters/postgres/queries.js";
import { identifiers } from "../../adapters/postgres/sql.js";
import { compare } from "../measure.js";
import { postgresServer } from "../servers.js";
import { rawPgQueries } from "../tiers/queries-raw.js";
import { QUERY_TAG, QUERY_VALUES, cycling, queryDatum } from "../workload.js";

const at = process.argv.indexOf("--n");
const n = at >= 0 ? Number(process.argv[at + 1]) : 100_000;
const server = await postgresServer(process.env);
const namespace = process.env.KEEP ?? `diag_ids_${process.pid}`;
const adapter = postgresAdapter({ url: server.url, namespace });
const store = createStore({ tiers: [adapter] });
const pool = new pg.Pool({ connectionString: server.url, max: 4 });
pool.on("error", () => undefined);
try {
  await store.open();
  const t0 = Date.now() - n;
  const loaded = process.env.KEEP !== undefined && (await store.count({})) >= n; // a kept schema is reused
  if (!loaded) for (let s = 0; s < n; s += 5000) await store.putMany(Array.from({ length: Math.min(5000, n - s) }, (_, k) => queryDatum(s + k, null, t0 + s + k)));
  const schema = pg.escapeIdentifier(namespace);
  for (const t of ["data", "data_tags"]) await pool.query(`VACUUM ANALYZE ${schema}.${t}`);
  const raw = await rawPgQueries(server.url, namespace);
  const withCreated = { name: "diag_ids_created", text: `SELECT id, created_at FROM ${schema}.data_tags WHERE key = '${QUERY_TAG}' AND value = $1 ORDER BY created_at DESC, id DESC LIMIT $2` };
  const tags = `${schema}.data_tags`;
  const probe = `(SELECT 1 FROM ${tags} e WHERE e.key = 'dgent.expiresAt' LIMIT 1)`;
  const page = `SELECT t1.created_at, t1.id FROM ${tags} t1 WHERE t1.key = '${QUERY_TAG}' AND t1.value = $1 ORDER BY t1.created_at DESC, t1.id DESC LIMIT 100`;
  const variants = {
    shape: `SELECT t1.created_at, t1.id, ${probe} AS expiring FROM ${tags} t1 WHERE t1.key = '${QUERY_TAG}' AND t1.value = $1 ORDER BY t1.created_at DESC, t1.id DESC LIMIT 100`,
    agg: `SELECT json_agg(k.id) AS ids, min(k.created_at) AS last, ${probe} AS expiring FROM (${page}) k`,
    aggOrdered: `SELECT json_agg(k.id ORDER BY k.created_at DESC, k.id DESC) AS ids, min(k.created_at) AS last, ${probe} AS expiring FROM (${page}) k`,
    window: `SELECT k.id, CASE WHEN lead(k.id) OVER (ORDER BY k.created_at DESC, k.id DESC) IS NULL THEN k.created_at END AS last, ${probe} AS expiring FROM (${page}) k ORDER BY k.created_at DESC, k.id DESC`,
  };
  const variant = (k: keyof typeof variants) => async (v: string) => (await pool.query({ name: `diag_ids_${k}`, text: variants[k], values: [v] })).rows;
  const ids = (v: string) => resolveQuery({ where: { [QUERY_TAG]: v }, limit: 100, select: "ids" });
  const dgentSql = (v: string) => idsSql(identifiers(namespace, "data"), ids(v)) as pg.QueryConfig;
  const prebuilt = { name: "diag_ids_prebuilt", text: dgentSql(QUERY_VALUES[0] as string).text };
  const subject = (name: string, run: (v: string) => unknown) => ({ name, args: cycling(QUERY_VALUES), run: run as (v: unknown) => unknown });
  console.log(dgentSql(QUERY_VALUES[0] as string).text);
  for (const [k, text] of Object.entries(variants)) console.log(k, JSON.stringify((await pool.query({ text: `EXPLAIN ANALYZE ${text}`, values: [QUERY_VALUES[0]] })).rows.slice(-2)));
  console.log(JSON.stringify((await variant("agg")(QUERY_VALUES[0] as string))[0]).slice(0, 200));
  const stats = await compare(
    [
      subject("raw ids", (v) => raw.ids(v, 100)),
      subject("raw [id, created_at]", async (v) => (await pool.query({ ...withCreated, values: [v, 100] })).rows),
      subject("shape (created_at, id, probe)", variant("shape")),
      subject("json_agg + min + probe", variant("agg")),
      subject("json_agg ORDER BY + min + probe", variant("aggOrdered")),
      subject("window lead + probe", variant("window")),
      subject("dgent's statement prebuilt, raw", async (v) => (await pool.query({ ...prebuilt, values: [QUERY_TAG, v] })).rows),
      subject("dgent's statement, raw", async (v) => (await pool.query(dgentSql(v))).rows),
      subject("adapter.queryIds", (v) => adapter.queryIds(ids(v))),
      subject("store.query ids", (v) => store.query({ where: { [QUERY_TAG]: v }, limit: 100, select: "ids" })),
    ],
    { budgetMs: 1500, warmupMs: 300, minWarmup: 100, minSamples: 30, maxSamples: 20_000, rounds: Number(process.env.ROUNDS ?? 4) },
    () => undefined,
  );
  for (const [name, s] of stats) console.log(`${name.padEnd(28)} p50 ${s.p50.toFixed(1)} µs  p95 ${s.p95.toFixed(1)} µs`);
  await raw.close();
} finally {
  if (process.env.KEEP === undefined) await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(namespace)} CASCADE`).catch(() => undefined);
  await pool.end();
  await store.close();
  await server.close();
}
