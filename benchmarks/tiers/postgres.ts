import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Datum } from "../../core/datum.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, keyvPostgres, unstoragePostgres, type PeerResult } from "../peers.js";
import { postgresServer } from "../servers.js";
import { oldDatums } from "../workload.js";
import { dgentContender } from "./dgent.js";

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

/**
 * The raw baseline of the Postgres tier: a `pg.Pool` of the size dgent's docker profile uses (4),
 * the same table shape (`COLLATE "C"` ids, BYTEA, float8, JSONB, the same indexes) in a schema of
 * its own, named prepared statements; put = `INSERT … ON CONFLICT DO NOTHING` (one round trip),
 * putMany = one multi-row `INSERT … VALUES` with binary content parameters (one round trip,
 * atomic as one statement),
 * chain = a plain recursive CTE (no cycle or depth reporting).
 */
async function rawPgContender(url: string, schema: string): Promise<Contender & { pool: pg.Pool }> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const s = pg.escapeIdentifier(schema);
  const t = `${s}.data`;
  await pool.query(`CREATE SCHEMA ${s}`);
  await pool.query(`CREATE TABLE ${t} (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
  await pool.query(`CREATE INDEX ON ${t} (created_at DESC, id DESC)`);
  await pool.query(`CREATE INDEX ON ${t} (causal_parent)`);
  const cols = "id, content, created_at, causal_parent, metadata";
  const q = {
    put: { name: `${schema}_put`, text: `INSERT INTO ${t} (${cols}) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING` },
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
      statement = { name: `${schema}_putmany_${ds.length}`, text: `INSERT INTO ${t} (${cols}) VALUES ${rows.join(", ")} ON CONFLICT (id) DO NOTHING` };
      manySql.set(ds.length, statement);
    }
    const values: unknown[] = [];
    for (const d of ds) values.push(d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata));
    return pool.query({ ...statement, values });
  };
  return {
    name: "raw pg",
    kind: "raw",
    description: "pg.Pool (max 4), same table shape, named prepared statements; putMany = one multi-row INSERT … VALUES (contents as binary parameters)",
    pool,
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
    },
    close: () => pool.end(),
  };
}

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

export async function postgresTier(env: NodeJS.ProcessEnv, withPeers: boolean): Promise<TierSetup> {
  const server = await postgresServer(env);
  const tag = randomBytes(4).toString("hex");
  const dgentSchema = `bench_dgent_${tag}`;
  const rawSchema = `bench_raw_${tag}`;
  const peerSchema = `bench_peer_${tag}`;
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
  const dgent = dgentContender(postgresAdapter({ url: server.url, namespace: dgentSchema }), "createStore({ tiers: [postgresAdapter({ url, namespace })] }) (docker profile: pool 4, notify on)");
  const raw = await rawPgContender(server.url, rawSchema);
  const contenders: Contender[] = [dgent, raw];
  const skipped: { name: string; reason: string }[] = [];
  const peers: PeerResult[] = withPeers ? [await keyvPostgres(server.url, peerSchema), await unstoragePostgres(server.url, `unstorage_${tag}`)] : [];
  for (const p of peers) {
    if (isSkipped(p)) skipped.push({ name: p.name, reason: p.skipped });
    else contenders.push(p);
  }
  return {
    tier: "postgres",
    label: `postgres ${version}, ${server.origin}`,
    contenders,
    ...(skipped.length ? { skipped } : {}),
    async probe(ids) {
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
      return out;
    },
    async dispose() {
      try {
        const c = new pg.Client(server.url);
        await c.connect();
        for (const schema of [dgentSchema, rawSchema, peerSchema]) await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
        await c.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(`unstorage_${tag}`)}`);
        await c.end();
      } finally {
        await server.close();
      }
    },
  };
}
