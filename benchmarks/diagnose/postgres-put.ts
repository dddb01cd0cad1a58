/**
 * Diagnosis: what a Postgres put and putMany(100) cost, piece by piece, on the harness's
 * throwaway cluster — a plain INSERT, the same wrapped in a CTE, dgent's put statement run raw
 * (CTE + the append-only comparison), and dgent stores with notify off, on, and notify + listen
 * (the default) — measured interleaved.
 *
 *   npx vite-node benchmarks/diagnose/postgres-put.ts
 */
import pg from "pg";
import type { Datum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { identifiers, statements } from "../../adapters/postgres/sql.js";
import { compare, type Subject } from "../measure.js";
import { postgresServer } from "../servers.js";
import { freshBatches, freshDatums, makePrefill } from "../workload.js";

const server = await postgresServer(process.env);
const url = server.url;
const plan = { budgetMs: 2500, warmupMs: 300, minWarmup: 100, minSamples: 30, maxSamples: 8000, rounds: 4 };
const prefill = makePrefill(10_000);

async function store(namespace: string, notify: boolean, listen: boolean): Promise<Store> {
  const s = createStore({ tiers: [postgresAdapter({ url, namespace, notify, listen })] });
  await s.open();
  for (let i = 0; i < prefill.datums.length; i += 1000) await s.putMany(prefill.datums.slice(i, i + 1000));
  return s;
}
const off = await store("diag_off", false, false);
const on = await store("diag_on", true, false);
const listening = await store("diag_listen", true, true);

const pool = new pg.Pool({ connectionString: url, max: 4 });
pool.on("error", () => undefined); // the cluster stops at the end; idle clients hear about it
await pool.query("DROP TABLE IF EXISTS public.diag_raw");
await pool.query(`CREATE TABLE public.diag_raw (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
await pool.query("CREATE INDEX ON public.diag_raw (created_at DESC, id DESC)");
await pool.query("CREATE INDEX ON public.diag_raw (causal_parent)");
const cols = "id, content, created_at, causal_parent, metadata";
const plain = { name: "diag_plain", text: `INSERT INTO public.diag_raw (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING` };
const cte = {
  name: "diag_cte",
  text: `WITH ins AS (INSERT INTO public.diag_raw AS t (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING RETURNING t.id) SELECT (SELECT count(*) FROM ins)::int AS inserted`,
};
const dgentSql = { name: "diag_dgent", text: statements(identifiers("diag_off", "data"), false).put.text.replaceAll('"diag_off"."data"', "public.diag_raw") };
// The shape proposed for dgent's put: no CTE, no comparison unless the id existed, notify in RETURNING.
const proposed = {
  name: "diag_proposed",
  text: `INSERT INTO public.diag_raw AS t (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING
         RETURNING pg_notify($6, json_build_object('op', 'put', 'id', t.id, 'origin', $7::text)::text)`,
};
const values = (d: Datum) => [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)];
const put = (name: string, run: (d: Datum) => unknown): Subject<unknown> => ({ name, args: freshDatums, run: (d) => run(d as Datum) });

const puts = await compare(
  [
    put("raw plain INSERT", (d) => pool.query({ ...plain, values: values(d) })),
    put("raw INSERT in a CTE", (d) => pool.query({ ...cte, values: values(d) })),
    put("raw dgent's put SQL", (d) => pool.query({ ...dgentSql, values: values(d) })),
    put("raw proposed put SQL (notify)", (d) => pool.query({ ...proposed, values: [...values(d), "dgent:diag", "diag"] })),
    put("dgent, notify off", (d) => off.put(d)),
    put("dgent, notify on", (d) => on.put(d)),
    put("dgent, notify + listen", (d) => listening.put(d)),
  ],
  plan,
);
for (const [k, v] of puts) console.log(`put      ${k.padEnd(30)} p50 ${v.p50.toFixed(1)} µs`);

const unnest = {
  name: "diag_unnest",
  text: `INSERT INTO public.diag_raw (${cols}) SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::text[], $5::jsonb[]) ON CONFLICT (id) DO NOTHING`,
};
// dgent's own putMany statement (notify off), sent alone on the pool: no BEGIN/COMMIT around it.
const dgentMany = { name: "diag_dgent_many", text: statements(identifiers("diag_off", "data"), false).batch(128, true).text.replaceAll('"diag_off"."data"', "public.diag_raw") };
// 100 rows as one multi-row VALUES: each content goes as its own parameter, in binary (pg sends
// a Buffer parameter as binary, but a bytea[] array as hex text, twice the bytes).
const valuesSql = {
  name: "diag_values",
  text: `INSERT INTO public.diag_raw (${cols}) VALUES ${Array.from({ length: 100 }, (_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5}::jsonb)`).join(", ")} ON CONFLICT (id) DO NOTHING`,
};
const many = (name: string, run: (ds: Datum[]) => unknown): Subject<unknown> => ({ name, args: freshBatches, run: (ds) => run(ds as Datum[]) });
const batches = await compare(
  [
    many("raw one INSERT … unnest", (ds) =>
      pool.query({ ...unnest, values: [ds.map((d) => d.id), ds.map((d) => d.content), ds.map((d) => d.createdAt), ds.map((d) => d.causalParent), ds.map((d) => JSON.stringify(d.metadata))] }),
    ),
    many("raw multi-row VALUES, binary", (ds) => pool.query({ ...valuesSql, values: ds.flatMap(values) })),
    // The batch statement is prepared for 128 rows; the rows past the batch are NULL padding it skips.
    many("dgent's putMany SQL, 1 stmt", (ds) => pool.query({ ...dgentMany, values: [...ds.flatMap(values), ...new Array((128 - ds.length) * 5).fill(null)] })),
    many("dgent, notify off", (ds) => off.putMany(ds)),
    many("dgent, notify on", (ds) => on.putMany(ds)),
    many("dgent, notify + listen", (ds) => listening.putMany(ds)),
  ],
  { ...plan, budgetMs: 2000, maxCalls: 400 },
);
for (const [k, v] of batches) console.log(`putMany  ${k.padEnd(30)} p50 ${(v.p50 / 1000).toFixed(2)} ms`);

await pool.query("DROP TABLE public.diag_raw");
for (const s of [off, on, listening]) await s.close();
const c = new pg.Client(url);
await c.connect();
for (const schema of ["diag_off", "diag_on", "diag_listen"]) await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
await c.end();
await pool.end();
await server.close();
