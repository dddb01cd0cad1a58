import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Datum } from "../../core/datum.js";
import type { Ref } from "../../core/refs.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, mustRun, keyvPostgres, unstoragePostgres, type PeerResult } from "../peers.js";
import type { PostgresServer } from "../servers.js";
import { oldDatums } from "../workload.js";
import { dgentContender } from "./dgent.js";
import { dgentRefOps, measureConcurrentCas, measureRefs, type RefOps } from "./refs.js";

interface Row {
  id: string;
  content: Buffer;
  created_at: number;
  causal_parent: string | null;
  metadata: Record<string, string> | null;
}

function toDatum(r: Row): Datum {
  return { id: r.id, content: r.content, createdAt: r.created_at, causalParent: r.causal_parent, metadata: r.metadata ?? {} };
}

interface RawPgOptions {
  /** Pool size (default 4, the docker profile's). */
  readonly max?: number;
  /** false: the schema exists (another process made it); only connect. */
  readonly create?: boolean;
}

/**
 * The raw baseline of the Postgres tier: a `pg.Pool` of the size dgent's docker profile uses (4),
 * the same table shape (`COLLATE "C"` ids, BYTEA, float8, JSONB, the same indexes) and the same
 * tags table the queries read (migration 4: one row per tag, key and value cut to 64 and 256
 * characters, a btree on (key, value, created_at, id)) in a schema of its own, named prepared
 * statements; put = `INSERT … ON CONFLICT DO NOTHING` with the new row's tag rows inserted by the
 * same statement (a data-modifying CTE: one round trip; dgent's schema does it with a statement
 * trigger), putMany = one multi-row `INSERT … VALUES` with binary content parameters and its tag
 * rows the same way (one round trip, atomic as one statement),
 * chain = a plain recursive CTE (no cycle or depth reporting).
 */
async function rawPgContender(url: string, schema: string, options: RawPgOptions = {}): Promise<Contender & { pool: pg.Pool; refs: (target: string) => Promise<RawPgRefs> }> {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 4, application_name: "bench-raw" });
  const s = pg.escapeIdentifier(schema);
  const t = `${s}.data`;
  const tags = `${s}.data_tags`;
  if (options.create !== false) {
    await pool.query(`CREATE SCHEMA ${s}`);
    await pool.query(`CREATE TABLE ${t} (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
    await pool.query(`CREATE INDEX ON ${t} (created_at DESC, id DESC)`);
    await pool.query(`CREATE INDEX ON ${t} (causal_parent, created_at, id)`);
    await pool.query(`CREATE TABLE ${tags} (key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, created_at DOUBLE PRECISION NOT NULL, id TEXT COLLATE "C" NOT NULL)`);
    await pool.query(`CREATE INDEX ON ${tags} (key, value, created_at, id)`);
  }
  const cols = "id, content, created_at, causal_parent, metadata";
  /** An insert of `values` whose new rows' tags go to the tags table in the same statement. */
  const withTags = (values: string) => `WITH ins AS (INSERT INTO ${t} (${cols}) VALUES ${values} ON CONFLICT (id) DO NOTHING RETURNING id, created_at, metadata)
    INSERT INTO ${tags} (key, value, created_at, id) SELECT DISTINCT left(e.key, 64), left(e.value, 256), ins.created_at, ins.id FROM ins, jsonb_each_text(ins.metadata) e`;
  const q = {
    put: { name: `${schema}_put`, text: withTags("($1, $2, $3, $4, $5::jsonb)") },
    get: { name: `${schema}_get`, text: `SELECT ${cols} FROM ${t} WHERE id = $1` },
    list: { name: `${schema}_list`, text: `SELECT ${cols} FROM ${t} ORDER BY created_at DESC, id DESC LIMIT $1` },
    chain: {
      name: `${schema}_chain`,
      text: `WITH RECURSIVE c(id, parent, depth) AS (
          SELECT id, causal_parent, 0 FROM ${t} WHERE id = $1
          UNION ALL SELECT d.id, d.causal_parent, c.depth + 1 FROM c JOIN ${t} d ON d.id = c.parent WHERE c.depth < 10000)
        SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata FROM c JOIN ${t} d ON d.id = c.id ORDER BY c.depth DESC`,
    },
  };
  // A multi-row VALUES, prepared once per batch size: each content travels as its own binary
  // parameter (pg sends a Buffer parameter as binary but a bytea[] array as hex text, which made
  // an unnest-based batch 2.5× slower; see diagnose/postgres-put.ts).
  const manySql = new Map<number, { name: string; text: string }>();
  const putMany = (ds: readonly Datum[]) => {
    let statement = manySql.get(ds.length);
    if (statement === undefined) {
      const rows = Array.from({ length: ds.length }, (_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5}::jsonb)`);
      statement = { name: `${schema}_putmany_${ds.length}`, text: withTags(rows.join(", ")) };
      manySql.set(ds.length, statement);
    }
    const values: unknown[] = [];
    for (const d of ds) values.push(d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata));
    return pool.query({ ...statement, values });
  };
  /**
   * Refs by hand: the same refs table shape; a compare-and-set is the bare conditional UPDATE
   * (one round trip), or the UPDATE with the upsert of the reflog ring's slot in one statement
   * (the work dgent does, migration 6);
   * a 3-op transaction is BEGIN, two inserts, the UPDATE, COMMIT on one pooled client.
   */
  const refs = async (target: string): Promise<RawPgRefs> => {
    const r = `${s}.refs`;
    const l = `${s}.reflog`;
    await pool.query(`CREATE TABLE ${r} (name TEXT COLLATE "C" PRIMARY KEY, target TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL) WITH (fillfactor = 70)`);
    await pool.query(
      `CREATE TABLE ${l} (name TEXT COLLATE "C" NOT NULL, slot INTEGER NOT NULL, seq BIGINT NOT NULL, to_target TEXT COLLATE "C", version BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL, moved_by TEXT NOT NULL, PRIMARY KEY (name, slot)) WITH (fillfactor = 70)`,
    );
    const cas = { name: `${schema}_cas`, text: `UPDATE ${r} SET target = $1, version = version + 1, updated_at = $2 WHERE name = $3 AND version = $4` };
    const casLogged = {
      name: `${schema}_cas_logged`,
      text: `WITH moved AS (UPDATE ${r} SET target = $1, version = version + 1, updated_at = $2 WHERE name = $3 AND version = $4 RETURNING version)
        INSERT INTO ${l} (name, slot, seq, to_target, version, at, moved_by) SELECT $3, (version % 101)::int, version, $1, version, $2, 'raw' FROM moved
        ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, to_target = excluded.to_target, version = excluded.version, at = excluded.at, moved_by = excluded.moved_by`,
    };
    const versions = new Map<string, number>();
    const create = async (name: string) => {
      await pool.query(`INSERT INTO ${r} VALUES ($1, $2, 1, 0)`, [name, target]);
      versions.set(name, 1);
    };
    for (const name of ["bench/cas", "bench/cas-log", "bench/tx"]) await create(name);
    for (let i = 0; i < 16; i++) await create(`bench/c/${i}`);
    const move = async (runner: pg.Pool | pg.PoolClient, statement: { name: string; text: string }, name: string, to: string) => {
      const v = versions.get(name) as number;
      const done = await runner.query({ ...statement, values: [to, Date.now(), name, v] });
      if (done.rowCount !== 1) throw new Error(`${name}: compare-and-set failed`);
      versions.set(name, v + 1);
    };
    const put = (client: pg.PoolClient, d: Datum) => client.query({ ...q.put, values: [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)] });
    return {
      bare: {
        name: "raw pg",
        cas: () => move(pool, cas, "bench/cas", target),
        tx3: async (ds) => {
          const client = await pool.connect();
          try {
            await client.query("BEGIN");
            await put(client, ds[0] as Datum);
            await put(client, ds[1] as Datum);
            await move(client, cas, "bench/tx", (ds[1] as Datum).id);
            await client.query("COMMIT");
          } catch (error) {
            await client.query("ROLLBACK");
            throw error;
          } finally {
            client.release();
          }
        },
      },
      logged: { name: "raw + reflog row", cas: () => move(pool, casLogged, "bench/cas-log", target) },
      concurrent: (caller) => move(pool, cas, `bench/c/${caller}`, target),
    };
  };
  return {
    name: "raw pg",
    kind: "raw",
    description: `pg.Pool (max ${options.max ?? 4}), same table shape and tags table (tag rows inserted by the same statement, not a trigger), named prepared statements; putMany = one multi-row INSERT … VALUES (contents as binary parameters)`,
    pool,
    refs,
    put: (d) => pool.query({ ...q.put, values: [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)] }),
    putMany,
    get: async (id) => {
      const r = await pool.query<Row>({ ...q.get, values: [id] });
      return r.rows[0] === undefined ? null : toDatum(r.rows[0]);
    },
    list: async (limit) => (await pool.query<Row>({ ...q.list, values: [limit] })).rows.map(toDatum),
    chain: async (id) => (await pool.query<Row>({ ...q.chain, values: [id] })).rows.map(toDatum),
    prefill: async (ds) => {
      for (let i = 0; i < ds.length; i += 1000) await putMany(ds.slice(i, i + 1000));
      await pool.query(`ANALYZE ${t}`);
      await pool.query(`ANALYZE ${tags}`);
    },
    close: () => pool.end(),
  };
}

interface RawPgRefs {
  readonly bare: RefOps;
  readonly logged: RefOps;
  /** A compare-and-set of caller `caller`'s own ref (`bench/c/<caller>`). */
  concurrent(caller: number): Promise<void>;
}

/** The raw baseline of the refs part alone (diagnose/refs-ab.ts): its tables and `datums`, then its refs at `target`. */
export async function rawPgForRefs(url: string, schema: string, datums: readonly Datum[], target: string): Promise<RawPgRefs & { close(): Promise<void> }> {
  const raw = await rawPgContender(url, schema);
  await raw.prefill(datums);
  const refs = await raw.refs(target);
  return {
    ...refs,
    close: async () => {
      await raw.close();
      await dropSchema(url, schema);
    },
  };
}

/** Drops a schema of the benchmark's (a connection of its own). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await c.end();
  }
}

/** Callers of the concurrent compare-and-set case (the issue's goal: ≥ 0.8 × raw throughput with 16). */
const CAS_CALLERS = 16;

/** Counts the statements (round trips) one call sends, across every pg client of the process. */
export async function countRoundTrips(call: () => Promise<unknown>): Promise<number> {
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let n = 0;
  proto.query = function (this: unknown, ...args: unknown[]) {
    n++;
    return original.apply(this, args);
  };
  try {
    await call();
  } finally {
    proto.query = original;
  }
  return n;
}

/** The schemas (and the unstorage table) of one Postgres tier's contenders. */
function postgresNames(tag: string): { dgent: string; quiet: string; raw: string; peer: string; unstorage: string } {
  return { dgent: `bench_dgent_${tag}`, quiet: `bench_quiet_${tag}`, raw: `bench_raw_${tag}`, peer: `bench_peer_${tag}`, unstorage: `unstorage_${tag}` };
}

export interface PostgresTierOptions {
  /** Pool size of dgent and of the raw pool (default 4, the docker profile's); Keyv's pool too. */
  readonly poolSize?: number;
  /** Also a dgent store with `notify: false` (the concurrency section). */
  readonly quiet?: boolean;
}

const QUIET = "dgent notify:false";

/** The `application_name` of each contender's connections (dgent, `notify: false`, the raw pool). */
export const PG_APPLICATION_NAMES: Readonly<Record<string, string>> = { dgent: "bench-dgent", [QUIET]: "bench-quiet", "raw pg": "bench-raw" };

function dgentPostgres(url: string, tag: string, poolSize: number | undefined, quiet: boolean) {
  const size = poolSize === undefined ? "pool 4" : `pool ${poolSize}`;
  const names = postgresNames(tag);
  // A table each, as every other contender has (sharing one, each would put into a table the
  // other grows too), and application names of their own: a pool each (pools are shared per
  // settings), and the concurrency part tells their backends apart in pg_stat_activity.
  const namespace = quiet ? names.quiet : names.dgent;
  return quiet
    ? dgentContender(postgresAdapter({ url, namespace, poolSize: poolSize ?? 4, notify: false, connectTimeoutMs: 120_000, applicationName: "bench-quiet" }), `createStore({ tiers: [postgresAdapter({ url, namespace, notify: false })] }) (${size}, change notifications off)`, { name: QUIET })
    : dgentContender(
        postgresAdapter({ url, namespace, applicationName: "bench-dgent", ...(poolSize === undefined ? {} : { poolSize, connectTimeoutMs: 120_000 }) }),
        `createStore({ tiers: [postgresAdapter({ url, namespace })] }) (docker profile: ${size}, notify on)`,
      );
}

/**
 * One contender of a Postgres tier made earlier (by `postgresTier` with `tag`) in another process:
 * the concurrency section's writer processes open the same schemas.
 */
export async function postgresContenderFor(name: string, url: string, tag: string, poolSize: number): Promise<Contender> {
  const names = postgresNames(tag);
  if (name === "dgent" || name === QUIET) return dgentPostgres(url, tag, poolSize, name === QUIET);
  if (name === "raw pg") return rawPgContender(url, names.raw, { max: poolSize, create: false });
  return mustRun(name.startsWith("keyv") ? await keyvPostgres(url, names.peer, poolSize) : await unstoragePostgres(url, names.unstorage));
}

/** The Postgres tier on `postgres()`'s server (closed by the tier's dispose: a shared one stays up). */
export async function postgresTier(postgres: () => Promise<PostgresServer>, withPeers: boolean, options: PostgresTierOptions = {}): Promise<TierSetup & { tag: string; url: string }> {
  const server = await postgres();
  const tag = randomBytes(4).toString("hex");
  const { dgent: dgentSchema, quiet: quietSchema, raw: rawSchema, peer: peerSchema } = postgresNames(tag);
  let version = "?";
  try {
    const c = new pg.Client(server.url);
    await c.connect();
    version = ((await c.query<{ server_version: string }>("SHOW server_version")).rows[0] as { server_version: string }).server_version;
    await c.end();
  } catch (error) {
    await server.close();
    throw error;
  }
  const dgent = dgentPostgres(server.url, tag, options.poolSize, false);
  const raw = await rawPgContender(server.url, rawSchema, { max: options.poolSize ?? 4 });
  const contenders: Contender[] = [dgent, ...(options.quiet ? [dgentPostgres(server.url, tag, options.poolSize, true)] : []), raw];
  const skipped: { name: string; reason: string }[] = [];
  const peers: PeerResult[] = withPeers ? [await keyvPostgres(server.url, peerSchema, options.poolSize), await unstoragePostgres(server.url, `unstorage_${tag}`)] : [];
  for (const p of peers) {
    if (isSkipped(p)) skipped.push({ name: p.name, reason: p.skipped });
    else contenders.push(p);
  }
  return {
    tier: "postgres",
    tag,
    url: server.url,
    label: `postgres ${version}, ${server.origin}`,
    contenders,
    ...(skipped.length ? { skipped } : {}),
    async probe(ids, plan) {
      const out: Record<string, unknown> = {};
      const d = oldDatums(1)[0] as Datum;
      out.roundTrips = {
        dgent: {
          put: await countRoundTrips(() => dgent.store.put(d)),
          get: await countRoundTrips(() => dgent.store.get(ids.get)),
          chain: await countRoundTrips(() => dgent.store.causalChain(ids.chain)),
          list: await countRoundTrips(() => dgent.store.list({ limit: 100 })),
          putMany: await countRoundTrips(async () => dgent.store.putMany(oldDatums(100))),
        },
        "raw pg": {
          put: await countRoundTrips(async () => raw.put?.(d)),
          get: await countRoundTrips(async () => raw.get?.(ids.get)),
          chain: await countRoundTrips(async () => raw.chain?.(ids.chain)),
          list: await countRoundTrips(async () => raw.list?.(100)),
          putMany: await countRoundTrips(async () => raw.putMany?.(oldDatums(100))),
        },
      };
      // Refs and transactions (benchmarks/tiers/refs.ts), before the timed writes.
      const dgentRefs = await dgentRefOps(dgent.store, ids.get);
      const rawRefs = await raw.refs(ids.get);
      const [a, b] = oldDatums(2) as [Datum, Datum];
      const [c, e] = oldDatums(2) as [Datum, Datum];
      const roundTrips = out.roundTrips as Record<string, Record<string, number>>;
      Object.assign(roundTrips.dgent as object, { refCas: await countRoundTrips(async () => dgentRefs.cas()), tx3: await countRoundTrips(async () => dgentRefs.tx3?.([a, b])) });
      Object.assign(roundTrips["raw pg"] as object, { refCas: await countRoundTrips(async () => rawRefs.bare.cas()), tx3: await countRoundTrips(async () => rawRefs.bare.tx3?.([c, e])) });
      const p = plan("put");
      const refs = await measureRefs([dgentRefs, rawRefs.bare, rawRefs.logged], p);
      const versions = new Map<number, Ref>();
      for (let i = 0; i < CAS_CALLERS; i++) versions.set(i, await dgent.store.refs.set(`bench/c/${i}`, ids.get));
      const concurrent = await measureConcurrentCas(
        [
          {
            name: "dgent",
            cas: async (caller) => {
              const ref = versions.get(caller) as Ref;
              versions.set(caller, await dgent.store.refs.set(`bench/c/${caller}`, ids.get, { expect: { version: ref.version } }));
            },
          },
          { name: "raw pg", cas: (caller) => rawRefs.concurrent(caller) },
        ],
        CAS_CALLERS,
        p.budgetMs,
        p.rounds,
      );
      out.refs = { ...refs, concurrent };
      return out;
    },
    async dispose() {
      try {
        const c = new pg.Client(server.url);
        await c.connect();
        for (const schema of [dgentSchema, quietSchema, rawSchema, peerSchema]) await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
        await c.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(`unstorage_${tag}`)}`);
        await c.end();
      } finally {
        await server.close();
      }
    },
  };
}
