import type pg from "pg";
import { dgentError } from "../../core/errors.js";
import { ORIGIN } from "./notify.js";
import type { Identifiers } from "./sql.js";

/**
 * Schema evolution: an append-only list of versioned migrations. Applied on open, forward only,
 * each at most once per (schema, table), inside one transaction under a transaction-scoped
 * advisory lock keyed by the schema, so any number of processes opening a fresh database at once
 * migrate exactly once and the rest find the work done. Every statement is also idempotent
 * (`IF NOT EXISTS`), so a half-applied manual attempt does not block the runner.
 *
 * Never edit or reorder a released migration: add a new one with the next version.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(ids: Identifiers): readonly string[];
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: "create the datum table",
    up: ({ table }) => [
      // COLLATE "C": ids compare by UTF-8 bytes (= code points), so a prefix is an index range
      // and every tier agrees on order (core/order.ts).
      `CREATE TABLE IF NOT EXISTS ${table} (
        id TEXT COLLATE "C" PRIMARY KEY,
        content BYTEA NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        causal_parent TEXT COLLATE "C",
        metadata JSONB NOT NULL DEFAULT '{}'::jsonb
      )`,
    ],
  },
  {
    version: 2,
    name: "index newest-first listing and causal parents",
    up: ({ table, createdIndex, parentIndex }) => [
      `CREATE INDEX IF NOT EXISTS ${createdIndex} ON ${table} (created_at DESC, id DESC)`,
      `CREATE INDEX IF NOT EXISTS ${parentIndex} ON ${table} (causal_parent)`,
    ],
  },
]);

export interface MigrationResult {
  /** The schema version after opening. */
  readonly version: number;
  /** Versions this call applied (empty when another process, or an earlier open, did it). */
  readonly applied: readonly number[];
}

const UNDEFINED_TABLE = "42P01";
const UNDEFINED_SCHEMA = "3F000";

/**
 * Brings `(schema, table)` to the latest version. A fast read answers the common case (already
 * current) without taking any lock.
 */
export async function migrate(
  pool: pg.Pool,
  ids: Identifiers,
  tableName: string,
  schemaName: string,
  unit: string,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationResult> {
  const latest = migrations.length === 0 ? 0 : (migrations[migrations.length - 1] as Migration).version;
  const current = await currentVersion(pool, ids, tableName);
  if (current !== null) {
    checkNotNewer(current, latest, ids, unit);
    if (current === latest) return { version: current, applied: [] };
  }
  const client = await pool.connect();
  const swallow = () => undefined;
  client.on("error", swallow);
  let failed: unknown = null;
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`dgent:migrate:${schemaName}`]);
    // Only create the schema when it is missing: CREATE SCHEMA needs CREATE on the database
    // even with IF NOT EXISTS, and a managed database may give us a schema but not that right.
    const exists = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schemaName]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${ids.schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${ids.migrations} (
        table_name TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        applied_by TEXT NOT NULL,
        PRIMARY KEY (table_name, version)
      )`,
    );
    const done = await client.query<{ version: number }>(`SELECT version FROM ${ids.migrations} WHERE table_name = $1`, [tableName]);
    const have = new Set(done.rows.map((r) => r.version));
    const max = Math.max(0, ...have);
    checkNotNewer(max, latest, ids, unit);
    const applied: number[] = [];
    for (const m of migrations) {
      if (have.has(m.version)) continue;
      for (const sql of m.up(ids)) await client.query(sql);
      await client.query(`INSERT INTO ${ids.migrations} (table_name, version, name, applied_by) VALUES ($1, $2, $3, $4)`, [
        tableName,
        m.version,
        m.name,
        ORIGIN,
      ]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
    return { version: latest, applied };
  } catch (error) {
    failed = error;
    await client.query("ROLLBACK").catch(swallow);
    throw error;
  } finally {
    client.off("error", swallow);
    client.release(failed instanceof Error ? failed : undefined);
  }
}

async function currentVersion(pool: pg.Pool, ids: Identifiers, tableName: string): Promise<number | null> {
  try {
    const r = await pool.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${ids.migrations} WHERE table_name = $1`, [
      tableName,
    ]);
    return r.rows[0]?.version ?? null;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === UNDEFINED_TABLE || code === UNDEFINED_SCHEMA) return null;
    throw error;
  }
}

function checkNotNewer(version: number, latest: number, ids: Identifiers, unit: string): void {
  if (version > latest) {
    throw dgentError(
      "DGENT_SCHEMA_TOO_NEW",
      `${unit}: table ${ids.label} is at schema version ${version}, but this dgent knows versions up to ${latest}; upgrade dgent to open it`,
      { unit, details: { version, latest } },
    );
  }
}
