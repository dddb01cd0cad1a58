/**
 * The raw baselines of the queries part: the driver alone (better-sqlite3, pg) running the best
 * statement we found for the same result, directly against dgent's own tables — the same rows,
 * indexes and pages, so the ratio is what dgent's layers add, not a different schema.
 *
 * Every statement lives in this file, by the schema version it was written for; the baseline
 * reads the version of the database it runs on and takes its statements. When an adapter's
 * migrations move past the newest written here, the older statements run and the report says so:
 * write the ones for the new schema here.
 */
import Database from "better-sqlite3";
import pg from "pg";
import type { Datum } from "../../core/datum.js";
import { DEFAULT_MMAP_SIZE } from "../../adapters/sqlite/index.js";
import { QUERY_TAG } from "../workload.js";

interface RawSql {
  /** (value, limit): the newest `limit` datums whose tag equals value, whole rows. */
  readonly filtered: string;
  /** (value, limit): their ids only. */
  readonly ids: string;
  /** (id, n): the datum and its n − 1 nearest ancestors, oldest first. */
  readonly chainTail: string;
}

const COLUMNS = "id, content, created_at, causal_parent, metadata";
const NEWEST_FIRST = "ORDER BY created_at DESC, id DESC";

/** The recursion carries the rows along (no second lookup per step) and stops at depth n. */
const chainTail = (table: string, p: [string, string]) => `WITH RECURSIVE c (id, content, created_at, causal_parent, metadata, depth) AS (
      SELECT ${COLUMNS}, 1 FROM ${table} WHERE id = ${p[0]}
      UNION ALL SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata, c.depth + 1 FROM c JOIN ${table} d ON d.id = c.causal_parent WHERE c.depth < ${p[1]})
    SELECT ${COLUMNS} FROM c ORDER BY depth DESC`;

/**
 * SQLite, by `PRAGMA user_version`.
 * - 2: `data (id, content, created_at, causal_parent, metadata TEXT JSON)`, indexes on
 *   (created_at, id) and causal_parent. Nothing indexes metadata: walk the time index newest
 *   first and test each row's tag until 100 match (one row in 20 here).
 * - 3: adds `tags (key, value, created_at, id)` WITHOUT ROWID, that order as its primary key:
 *   one tag value's entries are one index range already newest first. ids come from the tags
 *   table alone; whole rows join `data` by id, the tags table driving (CROSS JOIN fixes the order).
 */
export const RAW_SQLITE: Readonly<Record<number, RawSql>> = {
  2: {
    filtered: `SELECT ${COLUMNS} FROM data INDEXED BY idx_data_created WHERE json_extract(metadata, '$."${QUERY_TAG}"') = ? ${NEWEST_FIRST} LIMIT ?`,
    ids: `SELECT id FROM data INDEXED BY idx_data_created WHERE json_extract(metadata, '$."${QUERY_TAG}"') = ? ${NEWEST_FIRST} LIMIT ?`,
    chainTail: chainTail("data", ["?", "?"]),
  },
  3: {
    filtered: `SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata FROM tags AS t CROSS JOIN data AS d ON d.id = t.id
      WHERE t.key = '${QUERY_TAG}' AND t.value = ? ORDER BY t.created_at DESC, t.id DESC LIMIT ?`,
    ids: `SELECT id FROM tags WHERE key = '${QUERY_TAG}' AND value = ? ${NEWEST_FIRST} LIMIT ?`,
    chainTail: chainTail("data", ["?", "?"]),
  },
};

/**
 * Postgres, by the table's last migration (`"<namespace>".dgent_migrations`).
 * - 3: `"<namespace>".data (id TEXT COLLATE "C", content BYTEA, created_at float8, causal_parent,
 *   metadata JSONB)`, indexes on (created_at DESC, id DESC) and causal_parent. As on SQLite 2,
 *   nothing indexes metadata: the planner walks the time index and filters.
 * - 4: adds `data_tags (key, value, created_at, id)` (values cut to 256 characters) with a btree
 *   on those four columns: one tag value's entries are one index range, read backwards for newest
 *   first. Whole rows join `data` by id; ids come from the tags table alone (an index-only scan
 *   once vacuumed). The topics here are short, so a cut value cannot stand for another and no
 *   recheck on `metadata` is needed — dgent skips it for such values too.
 * `$1` value, `$2` limit.
 */
export function rawPgSql(schema: string): Readonly<Record<number, RawSql>> {
  const table = `${schema}.data`;
  const tags = `${schema}.data_tags`;
  const chain = chainTail(table, ["$1", "$2"]);
  return {
    3: {
      filtered: `SELECT ${COLUMNS} FROM ${table} WHERE metadata ->> '${QUERY_TAG}' = $1 ${NEWEST_FIRST} LIMIT $2`,
      ids: `SELECT id FROM ${table} WHERE metadata ->> '${QUERY_TAG}' = $1 ${NEWEST_FIRST} LIMIT $2`,
      chainTail: chain,
    },
    4: {
      filtered: `SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata FROM ${tags} t JOIN ${table} d ON d.id = t.id
        WHERE t.key = '${QUERY_TAG}' AND t.value = $1 ORDER BY t.created_at DESC, t.id DESC LIMIT $2`,
      ids: `SELECT id FROM ${tags} WHERE key = '${QUERY_TAG}' AND value = $1 ${NEWEST_FIRST} LIMIT $2`,
      chainTail: chain,
    },
  };
}

/** The statements for schema `version`: its own, else the newest written for an older one (noted). */
function pick(all: Readonly<Record<number, RawSql>>, version: number): { sql: RawSql; written: number } {
  const known = Object.keys(all).map(Number).sort((a, b) => b - a);
  const written = known.find((v) => v <= version) ?? (known[known.length - 1] as number);
  return { sql: all[written] as RawSql, written };
}

/** What a raw baseline of the queries part does: the same three reads as dgent's. */
export interface RawQueries {
  readonly name: string;
  readonly description: string;
  /** Set when no statements were written for the schema found (the older ones ran). */
  readonly note: string | null;
  filtered(value: string, limit: number): unknown;
  ids(value: string, limit: number): unknown;
  chainTail(id: string, n: number): unknown;
  close(): Promise<void>;
}

type SqliteRow = [string, Buffer, number, string | null, string | null];

function sqliteDatum(r: SqliteRow): Datum {
  return { id: r[0], content: r[1], createdAt: r[2], causalParent: r[3], metadata: r[4] === null ? {} : (JSON.parse(r[4]) as Record<string, string>) };
}

/** better-sqlite3 on dgent's own database file (read-only; dgent's connection stays open), the same memory map; synchronous. */
export function rawSqliteQueries(path: string): RawQueries {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma(`mmap_size = ${DEFAULT_MMAP_SIZE}`);
  const version = db.pragma("user_version", { simple: true }) as number;
  const { sql, written } = pick(RAW_SQLITE, version);
  const filtered = db.prepare(sql.filtered).raw(true);
  const ids = db.prepare(sql.ids).pluck(true);
  const chainTail = db.prepare(sql.chainTail).raw(true);
  return {
    name: "raw better-sqlite3",
    description: `better-sqlite3 on dgent's own file (read-only connection, same mmap), statements prepared once, raw mode; synchronous; the SQL for schema ${written} in benchmarks/tiers/queries-raw.ts`,
    note: written === version ? null : `the database is at schema ${version}; benchmarks/tiers/queries-raw.ts has statements up to ${written} only, and those ran`,
    filtered: (value, limit) => (filtered.all(value, limit) as SqliteRow[]).map(sqliteDatum),
    ids: (value, limit) => ids.all(value, limit) as string[],
    chainTail: (id, n) => (chainTail.all(id, n) as SqliteRow[]).map(sqliteDatum),
    close: async () => void db.close(),
  };
}

interface PgRow {
  id: string;
  content: Buffer;
  created_at: number;
  causal_parent: string | null;
  metadata: Record<string, string> | null;
}

function pgDatum(r: PgRow): Datum {
  return { id: r.id, content: r.content, createdAt: r.created_at, causalParent: r.causal_parent, metadata: r.metadata ?? {} };
}

/** A `pg.Pool` (4, as dgent's docker profile) on dgent's own tables in `"<schema>"`, named prepared statements. */
export async function rawPgQueries(url: string, schema: string): Promise<RawQueries> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const s = pg.escapeIdentifier(schema);
  let version: number;
  try {
    const r = await pool.query<{ v: number }>(`SELECT max(version) AS v FROM ${s}.dgent_migrations WHERE table_name = 'data'`);
    version = Number(r.rows[0]?.v ?? 0);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const { sql, written } = pick(rawPgSql(s), version);
  const named = (k: keyof RawSql) => ({ name: `bench_q_${k}_${schema}`.slice(0, 63), text: sql[k] });
  const q = { filtered: named("filtered"), ids: named("ids"), chainTail: named("chainTail") };
  return {
    name: "raw pg",
    description: `pg.Pool (max 4) on dgent's own table, named prepared statements; the SQL for schema ${written} in benchmarks/tiers/queries-raw.ts`,
    note: written === version ? null : `the table is at schema ${version}; benchmarks/tiers/queries-raw.ts has statements up to ${written} only, and those ran`,
    filtered: async (value, limit) => (await pool.query<PgRow>({ ...q.filtered, values: [value, limit] })).rows.map(pgDatum),
    ids: async (value, limit) => (await pool.query<{ id: string }>({ ...q.ids, values: [value, limit] })).rows.map((r) => r.id),
    chainTail: async (id, n) => (await pool.query<PgRow>({ ...q.chainTail, values: [id, n] })).rows.map(pgDatum),
    close: () => pool.end(),
  };
}
