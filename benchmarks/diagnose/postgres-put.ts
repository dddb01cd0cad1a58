/**
 * Diagnosis: what a Postgres put and putMany(100) cost, piece by piece, on the harness's
 * throwaway cluster, measured interleaved:
 *
 * - p50 of one caller's put: a plain INSERT, dgent's put statement run raw on dgent's own
 *   schemas without and with its change-log row (the tags trigger included), the same in a CTE,
 *   and dgent stores with notify off, on, and notify + listen (the default);
 * - CPU per put (this process's and every process of the cluster's, so the listeners a NOTIFY
 *   wakes count too) and wall time per put, at 1 and 64 callers (`DIAG_CALLERS=1,16,64`):
 *   the raw statements, dgent with notify off and notify + listen, and with
 *   `DIAG_BEFORE=<another build's dist>` that build's store too (an A/B in the same rounds;
 *   `DIAG_AFTER=<a build's dist>` takes dgent's stores of this part from that build instead of
 *   the sources, so that both sides run compiled code);
 * - putMany(100) the same way (`DIAG_PUTMANY=0` skips it; `DIAG_P50=0` skips the first part).
 *
 *   npx vite-node benchmarks/diagnose/postgres-put.ts
 *   DIAG_BEFORE=/path/to/other/checkout/dist DIAG_P50=0 DIAG_PUTMANY=0 npx vite-node benchmarks/diagnose/postgres-put.ts
 *   DIAG_BEFORE=/old/dist DIAG_AFTER=$PWD/dist DIAG_CALLERS=1,16 DIAG_P50=0 DIAG_PUTMANY=0 npx vite-node benchmarks/diagnose/postgres-put.ts
 */
import { join } from "node:path";
import pg from "pg";
import type { Datum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { identifiers, statements } from "../../adapters/postgres/sql.js";
import { compare, type Subject } from "../measure.js";
import { postgresServer } from "../servers.js";
import { freshBatches, freshDatums, makePrefill } from "../workload.js";
import { clusterCpuMeter } from "./cluster-cpu.js";

const server = await postgresServer(process.env);
const url = server.url;
const plan = { budgetMs: 2500, warmupMs: 300, minWarmup: 100, minSamples: 30, maxSamples: 8000, rounds: 4 };
const prefill = makePrefill(10_000);

type Opener = (options: Record<string, unknown>) => Store;
/** The stores of the build in `dist` (a directory holding `core/` and `adapters/`). */
async function build(dist: string): Promise<Opener> {
  const core = (await import(/* @vite-ignore */ join(dist, "core/store.js"))) as { createStore: (o: unknown) => Store };
  const adapter = (await import(/* @vite-ignore */ join(dist, "adapters/postgres/index.js"))) as { postgresAdapter: (o: unknown) => unknown };
  return (options) => core.createStore({ tiers: [adapter.postgresAdapter(options)] });
}
const before = process.env.DIAG_BEFORE;
const beforeStore: Opener | null = before ? await build(before) : null;
const after = process.env.DIAG_AFTER;
const afterStore: Opener | null = after ? await build(after) : null;
async function store(namespace: string, notify: boolean, listen: boolean): Promise<Store> {
  const s = createStore({ tiers: [postgresAdapter({ url, namespace, notify, listen })] });
  // A store listens only for someone (a tap on externalChange, as the cache plugin makes).
  if (listen) s.hooks.externalChange.tap("diag", () => undefined);
  await s.open();
  for (let i = 0; i < prefill.datums.length; i += 1000) await s.putMany(prefill.datums.slice(i, i + 1000));
  return s;
}
const off = await store("diag_off", false, false);
const on = await store("diag_on", true, false);
const listening = await store("diag_listen", true, true);
const previous = beforeStore ? beforeStore({ url, namespace: "diag_before_p50" }) : null;
if (previous) {
  previous.hooks.externalChange.tap("diag", () => undefined); // "notify + listen", as its label says
  await previous.open();
  for (let i = 0; i < prefill.datums.length; i += 1000) await previous.putMany(prefill.datums.slice(i, i + 1000));
}

const pool = new pg.Pool({ connectionString: url, max: 4 });
pool.on("error", () => undefined); // the cluster stops at the end; idle clients hear about it
await pool.query("DROP TABLE IF EXISTS public.diag_raw");
await pool.query(`CREATE TABLE public.diag_raw (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
await pool.query("CREATE INDEX ON public.diag_raw (created_at DESC, id DESC)");
await pool.query("CREATE INDEX ON public.diag_raw (causal_parent)");
const cols = "id, content, created_at, causal_parent, metadata";
// The concurrency part's raw contender (benchmarks/tiers/postgres.ts): the same table and indexes
// as dgent's, the tags written by a CTE of the insert.
await pool.query("DROP TABLE IF EXISTS public.diag_rawtags, public.diag_rawtags_tags");
await pool.query(`CREATE TABLE public.diag_rawtags (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
await pool.query("CREATE INDEX ON public.diag_rawtags (created_at DESC, id DESC)");
await pool.query("CREATE INDEX ON public.diag_rawtags (causal_parent, created_at, id)");
await pool.query(`CREATE TABLE public.diag_rawtags_tags (key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, created_at DOUBLE PRECISION NOT NULL, id TEXT COLLATE "C" NOT NULL)`);
await pool.query("CREATE INDEX ON public.diag_rawtags_tags (key, value, created_at, id)");
const rawTags = {
  name: "diag_rawtags",
  text: `WITH ins AS (INSERT INTO public.diag_rawtags (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id, created_at, metadata)
    INSERT INTO public.diag_rawtags_tags (key, value, created_at, id) SELECT DISTINCT left(e.key, 64), left(e.value, 256), ins.created_at, ins.id FROM ins, jsonb_each_text(ins.metadata) e`,
};
const plain = { name: "diag_plain", text: `INSERT INTO public.diag_raw (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING` };
const cte = {
  name: "diag_cte",
  text: `WITH ins AS (INSERT INTO public.diag_raw AS t (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING RETURNING t.id) SELECT (SELECT count(*) FROM ins)::int AS inserted`,
};
const dgentSql = { name: "diag_dgent", text: statements(identifiers("diag_off", "data")).put.text.replaceAll('"diag_off"."data"', "public.diag_raw") };
const values = (d: Datum) => [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)];
const put = (name: string, run: (d: Datum) => unknown): Subject<unknown> => ({ name, args: freshDatums, run: (d) => run(d as Datum) });

// dgent's own put statement run raw on the stores' schemas (tags trigger included): without and
// with the change-log row (the trigger writes it for a session with `dgent.origin` set while the
// table has a listener row; one is planted). Their difference is what the log row costs the server.
const offSql = statements(identifiers("diag_off", "data")).put;
const onSql = statements(identifiers("diag_on", "data")).put;
const onIds = identifiers("diag_on", "data");
await pool.query(`INSERT INTO ${onIds.listeners} (pid, origin) VALUES (pg_backend_pid(), 'diag')`);
const logging = new pg.Pool({ connectionString: url, max: 4, options: "-c dgent.origin=diag" });
logging.on("error", () => undefined);
const puts = process.env.DIAG_P50 === "0" ? new Map() : await compare(
  [
    put("raw plain INSERT", (d) => pool.query({ ...plain, values: values(d) })),
    put("raw dgent put SQL, no log", (d) => pool.query({ ...offSql, values: values(d) })),
    put("raw dgent put SQL + log row", (d) => logging.query({ ...onSql, values: values(d) })),
    put("raw INSERT in a CTE", (d) => pool.query({ ...cte, values: values(d) })),
    put("raw dgent's put SQL", (d) => pool.query({ ...dgentSql, values: values(d) })),
    put("dgent, notify off", (d) => off.put(d)),
    put("dgent, notify on", (d) => on.put(d)),
    put("dgent, notify + listen", (d) => listening.put(d)),
    ...(previous ? [put("DIAG_BEFORE, notify + listen", (d) => previous.put(d))] : []),
  ],
  plan,
);
for (const [k, v] of puts) console.log(`put      ${k.padEnd(30)} p50 ${v.p50.toFixed(1)} µs`);

/**
 * CPU per put, which the machine's load does not move the way it moves latency: this process's
 * CPU time (`process.cpuUsage`) plus that of every process of the cluster (the postmaster's
 * children, from /proc: backends, the listeners woken by NOTIFYs, the WAL writer), over
 * `per` puts from `callers` concurrent loops, each subject in turn, `rounds` times (the order
 * rotating); and the wall time per put. Needs the harness's own cluster on this machine (Linux).
 * Each subject has its own pool or store of `callers` connections, as the concurrency part gives.
 * `DIAG_BEFORE=<a build's dist directory>` adds a store of that build (e.g. /other/checkout/dist)
 * with notifications on, for an A/B in the same rounds.
 */
const admin = new pg.Client(url);
await admin.connect();
const dataDir = ((await admin.query<{ data_directory: string }>("SHOW data_directory")).rows[0] as { data_directory: string }).data_directory;
await admin.end();
/** CPU time of the cluster's processes so far, µs (cluster-cpu.ts). */
const serverCpuUs = clusterCpuMeter(dataDir);
serverCpuUs();
const clientCpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
type Putter = { name: string; run: (d: Datum) => Promise<unknown> };
async function cpuPerPut(subjects: Putter[], callers: number, per: number, rounds: number) {
  const acc = new Map(subjects.map((x) => [x.name, { n: 0, client: 0, server: 0, wall: 0 }]));
  // Untimed: opens every pool's connections and plans the statements.
  for (const x of subjects) await Promise.all(freshDatums(callers * 4).map((d) => x.run(d)));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < subjects.length; k++) {
      const x = subjects[(k + r) % subjects.length] as Putter;
      const ds = freshDatums(per);
      let next = 0;
      const c0 = clientCpuUs();
      const s0 = serverCpuUs();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: callers }, async () => {
          while (next < ds.length) await x.run(ds[next++] as Datum);
        }),
      );
      const wall = performance.now() - t0;
      await new Promise((resolve) => setTimeout(resolve, 50)); // the last announcement goes out
      const a = acc.get(x.name) as { n: number; client: number; server: number; wall: number };
      a.n += per;
      a.client += clientCpuUs() - c0;
      a.server += serverCpuUs() - s0;
      a.wall += wall * 1000;
    }
  }
  return acc;
}

const levels = (process.env.DIAG_CALLERS ?? "1,64").split(",").map(Number);
for (const callers of levels) {
  const open = async (namespace: string, make: Opener, notify: boolean, listen: boolean) => {
    const s = make({ url, namespace, notify, listen, poolSize: callers, applicationName: `diag-${namespace}` });
    if (listen) s.hooks.externalChange.tap("diag", () => undefined);
    await s.open();
    return s;
  };
  const ours: Opener = afterStore ?? ((options) => createStore({ tiers: [postgresAdapter(options as Parameters<typeof postgresAdapter>[0])] }));
  const cOff = await open("diag_off", ours, false, false);
  const cOn = await open("diag_listen", ours, true, true);
  const cQuiet = await open("diag_on", ours, true, false);
  const cBefore = beforeStore ? await open("diag_before", beforeStore, true, true) : null;
  const cPool = new pg.Pool({ connectionString: url, max: callers });
  const cLogging = new pg.Pool({ connectionString: url, max: callers, options: "-c dgent.origin=diag" });
  const subjects: Putter[] = [
    { name: "raw dgent put SQL, no log", run: (d) => cPool.query({ ...offSql, values: values(d) }) },
    { name: "raw dgent put SQL + log row", run: (d) => cLogging.query({ ...onSql, values: values(d) }) },
    { name: "raw pg, tags in a CTE", run: (d) => cPool.query({ ...rawTags, values: values(d) }) },
    { name: "dgent, notify off", run: (d) => cOff.put(d) },
    { name: "dgent, notify on, no listen", run: (d) => cQuiet.put(d) },
    { name: "dgent, notify + listen", run: (d) => cOn.put(d) },
    ...(cBefore ? [{ name: "DIAG_BEFORE, notify + listen", run: (d: Datum) => cBefore.put(d) }] : []),
  ];
  const acc = await cpuPerPut(subjects, callers, Number(process.env.DIAG_PUTS ?? 1000), Number(process.env.DIAG_ROUNDS ?? 6));
  const first = acc.get("raw dgent put SQL, no log") as { n: number; client: number; server: number; wall: number };
  const cpu = (a: typeof first) => (a.client + a.server) / a.n;
  for (const [k, a] of acc) {
    console.log(
      `put ×${String(callers).padEnd(3)} ${k.padEnd(30)} CPU ${cpu(a).toFixed(0)} µs/put (client ${(a.client / a.n).toFixed(0)} + server ${(a.server / a.n).toFixed(0)}) ${(cpu(a) / cpu(first)).toFixed(2)}× the first; wall ${(a.wall / a.n).toFixed(0)} µs/put ${(a.wall / first.wall).toFixed(2)}×`,
    );
  }
  for (const s of [cOff, cQuiet, cOn, cBefore]) await s?.close();
  await cPool.end();
  await cLogging.end();
}

const unnest = {
  name: "diag_unnest",
  text: `INSERT INTO public.diag_raw (${cols}) SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::text[], $5::jsonb[]) ON CONFLICT (id) DO NOTHING`,
};
// dgent's own putMany statement (notify off), sent alone on the pool: no BEGIN/COMMIT around it.
const dgentMany = { name: "diag_dgent_many", text: statements(identifiers("diag_off", "data")).batch(128, true).text.replaceAll('"diag_off"."data"', "public.diag_raw") };
// 100 rows as one multi-row VALUES: each content goes as its own parameter, in binary (pg sends
// a Buffer parameter as binary, but a bytea[] array as hex text, twice the bytes).
const valuesSql = {
  name: "diag_values",
  text: `INSERT INTO public.diag_raw (${cols}) VALUES ${Array.from({ length: 100 }, (_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5}::jsonb)`).join(", ")} ON CONFLICT (id) DO NOTHING`,
};
const many = (name: string, run: (ds: Datum[]) => unknown): Subject<unknown> => ({ name, args: freshBatches, run: (ds) => run(ds as Datum[]) });
const batches = process.env.DIAG_PUTMANY === "0" ? new Map() : await compare(
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

await pool.query("DROP TABLE public.diag_raw, public.diag_rawtags, public.diag_rawtags_tags");
for (const s of [off, on, listening, previous]) await s?.close();
const c = new pg.Client(url);
await c.connect();
for (const schema of ["diag_off", "diag_on", "diag_listen", "diag_before", "diag_before_p50"]) await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
await c.end();
await pool.end();
await logging.end();
await server.close();
