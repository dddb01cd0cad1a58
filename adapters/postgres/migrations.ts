import type pg from "pg";
import { dgentError } from "../../core/errors.js";
import { LISTENER_MARK, ORIGIN } from "./notify.js";
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
  {
    version: 3,
    name: "create the refs and reflog tables",
    up: ({ refs, reflog }) => [
      // A ref's row is updated in place on every move: room left on each page keeps those
      // updates HOT (no index write). A deleted ref keeps its row with a NULL target; `log_seq`
      // is the seq of the ref's newest reflog row.
      `CREATE TABLE IF NOT EXISTS ${refs} (
        name TEXT COLLATE "C" PRIMARY KEY,
        target TEXT COLLATE "C",
        version BIGINT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        log_seq BIGINT NOT NULL
      ) WITH (fillfactor = 70)`,
      // seq counts the moves of one ref (1, 2, 3, …), on across a delete and re-create; a move
      // came from where the one before it went.
      `CREATE TABLE IF NOT EXISTS ${reflog} (
        name TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        to_target TEXT COLLATE "C",
        version BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        moved_by TEXT NOT NULL,
        PRIMARY KEY (name, seq)
      )`,
    ],
  },
  {
    version: 4,
    name: "index tags, children and keyset pages for queries",
    up: (ids) => {
      const { table, tags, tagsIndex, childrenIndex, parentIndex, tagsSync } = ids;
      // One row per (datum, tag), key and value cut to 64 and 256 characters so an index entry
      // stays far below the btree's limit (ids are at most 1 KiB); a cut value only ever widens a
      // match, and queries.ts checks such matches against the metadata column, which stays the
      // truth. DISTINCT: one row per datum and (cut key, cut value), so a join never repeats a datum.
      const rows = (from: string) =>
        `SELECT DISTINCT left(e.key, 64), left(e.value, 256), r.created_at, r.id FROM ${from} r, jsonb_each_text(r.metadata) e`;
      const unrows = (from: string) =>
        `DELETE FROM ${tags} t USING ${from} r, jsonb_each_text(r.metadata) e
         WHERE t.key = left(e.key, 64) AND t.value = left(e.value, 256) AND t.created_at = r.created_at AND t.id = r.id`;
      const fn = (op: keyof typeof tagsSync, body: string) =>
        `CREATE OR REPLACE FUNCTION ${tagsSync[op].fn}() RETURNS trigger LANGUAGE plpgsql AS $body$
         BEGIN
           ${body};
           RETURN NULL;
         END
         $body$`;
      const trigger = (op: keyof typeof tagsSync, when: string) => [
        `DROP TRIGGER IF EXISTS ${tagsSync[op].trigger} ON ${table}`,
        `CREATE TRIGGER ${tagsSync[op].trigger} ${when} FOR EACH STATEMENT EXECUTE FUNCTION ${tagsSync[op].fn}()`,
      ];
      return [
        `CREATE TABLE IF NOT EXISTS ${tags} (
          key TEXT COLLATE "C" NOT NULL,
          value TEXT COLLATE "C" NOT NULL,
          created_at DOUBLE PRECISION NOT NULL,
          id TEXT COLLATE "C" NOT NULL
        )`,
        // Statement-level triggers with transition tables: one insert (or delete) of tag rows per
        // statement, whatever the number of datums, and every writer (this dgent, an older one
        // still running, a hand-written statement) keeps the tags in step.
        fn("insert", `INSERT INTO ${tags} (key, value, created_at, id) ${rows("dgent_new")}`),
        fn("delete", unrows("dgent_old")),
        fn("update", `${unrows("dgent_old")};\n           INSERT INTO ${tags} (key, value, created_at, id) ${rows("dgent_new")}`),
        fn("truncate", `TRUNCATE ${tags}`),
        // Creating the triggers locks the table against writes until this migration commits, so
        // the backfill below sees every datum and no write slips between it and the triggers.
        ...trigger("insert", `AFTER INSERT ON ${table} REFERENCING NEW TABLE AS dgent_new`),
        ...trigger("delete", `AFTER DELETE ON ${table} REFERENCING OLD TABLE AS dgent_old`),
        ...trigger("update", `AFTER UPDATE ON ${table} REFERENCING OLD TABLE AS dgent_old NEW TABLE AS dgent_new`),
        ...trigger("truncate", `AFTER TRUNCATE ON ${table}`),
        // Backfill from scratch (so replaying this migration never doubles a row), then index.
        `TRUNCATE ${tags}`,
        `INSERT INTO ${tags} (key, value, created_at, id) ${rows(table)}`,
        `CREATE INDEX IF NOT EXISTS ${tagsIndex} ON ${tags} (key, value, created_at, id)`,
        `ANALYZE ${tags}`,
        // Children in either order: the parent's rows are a range of this index, in keyset order.
        `CREATE INDEX IF NOT EXISTS ${childrenIndex} ON ${table} (causal_parent, created_at, id)`,
        `DROP INDEX IF EXISTS ${ids.schema}.${parentIndex}`,
      ];
    },
  },
  {
    version: 5,
    name: "create the change log",
    up: ({ changes, changesIndex }) => [
      // One row per put or delete, written by the change's own statement (notify.ts). UNLOGGED:
      // no WAL, and a server crash empties it, which listeners detect (they reconnect to a
      // server that restarted) and report, as they always have for a lost connection.
      `CREATE UNLOGGED TABLE IF NOT EXISTS ${changes} (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        xid XID8 NOT NULL,
        op TEXT NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        origin TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS ${changesIndex} ON ${changes} (xid)`,
    ],
  },
  {
    version: 6,
    name: "the reflog becomes a ring of 101 slots per ref",
    up: ({ reflog }) => [
      // Move number `seq` of a ref lives in slot `seq % 101` (REFLOG_LIMIT + 1, see refs.ts), written
      // by one upsert that replaces the move 101 before it: no prune delete, and an update in place
      // that changes no indexed column (HOT, with the room fillfactor leaves). The ring's key
      // replaces (name, seq); the newest 101 rows of each ref are kept. Every step may run again.
      `ALTER TABLE ${reflog} SET (fillfactor = 70)`,
      `ALTER TABLE ${reflog} ADD COLUMN IF NOT EXISTS slot INTEGER`,
      `DELETE FROM ${reflog} AS l USING (SELECT name, max(seq) AS top FROM ${reflog} GROUP BY name) AS m WHERE l.name = m.name AND l.seq <= m.top - 101`,
      `UPDATE ${reflog} SET slot = (seq % 101)::int`,
      `ALTER TABLE ${reflog} ALTER COLUMN slot SET NOT NULL`,
      `DO $ring$
       DECLARE pkey TEXT;
       BEGIN
         SELECT conname INTO pkey FROM pg_constraint WHERE conrelid = ${literal(reflog)}::regclass AND contype = 'p';
         IF pkey IS NOT NULL THEN EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', ${literal(reflog)}, pkey); END IF;
       END
       $ring$`,
      `ALTER TABLE ${reflog} ADD PRIMARY KEY (name, slot)`,
    ],
  },
  {
    version: 7,
    name: "the tags triggers plan the same for one datum as for a batch",
    up: ({ tags, tagsSync }) => {
      // PL/pgSQL plans a statement without variables once per session and keeps that plan, sized
      // by the transition table of the first run. Migration 4's `SELECT DISTINCT … FROM dgent_new r,
      // jsonb_each_text(r.metadata)` first run by a batch of 1,000 datums kept a hash aggregate
      // for 20,000 groups (about 800 kB set up and torn down per statement), so each later
      // single put on that connection cost the server 30–50 µs more (a third) (benchmarks/diagnose/
      // postgres-tags-plan.ts). Removing duplicates per datum (a datum's tags are a handful of
      // rows, whatever the batch) gives one plan whatever ran first: a nested loop over the
      // datums, each one's tags deduplicated on their own. The rows are the same as before: one
      // per datum and (cut key, cut value); duplicates only ever come from one datum's keys.
      const rows = NEW_TAG_ROWS;
      const fn = (op: "insert" | "update", body: string) => tagsFunction(tagsSync[op].fn, body);
      const unrows = `DELETE FROM ${tags} t USING dgent_old r, jsonb_each_text(r.metadata) e
         WHERE t.key = left(e.key, 64) AND t.value = left(e.value, 256) AND t.created_at = r.created_at AND t.id = r.id`;
      return [
        fn("insert", `INSERT INTO ${tags} (key, value, created_at, id) ${rows}`),
        fn("update", `${unrows};\n           INSERT INTO ${tags} (key, value, created_at, id) ${rows}`),
      ];
    },
  },
  {
    version: 8,
    name: "a deleted datum's tag rows are found by the whole index key",
    up: ({ tags, tagsSync }) => {
      // Migration 4's `DELETE … USING dgent_old r, jsonb_each_text(r.metadata) e WHERE t.key = …
      // AND t.id = r.id` was planned (in a session whose first run saw a fresh table's estimates)
      // as a search on (key, value) alone, with created_at and id as a join filter: each deleted
      // datum then walked every index entry of its tag values, 40 ms a delete at 60 000 datums
      // sharing a tag (the SQLite tier had the same defect, fixed by its schema version 4). Here
      // each tag row is looked up in a LATERAL subquery with all four columns as conditions
      // (`OFFSET 0` keeps the planner from flattening it back into the join), and deleted by its
      // ctid: 0.4 ms, one index probe a tag, whatever the plan's estimates.
      const unrows = oldTagRowsDelete(tags);
      const rows = NEW_TAG_ROWS;
      const fn = (op: "delete" | "update", body: string) => tagsFunction(tagsSync[op].fn, body);
      return [fn("delete", unrows), fn("update", `${unrows};\n           INSERT INTO ${tags} (key, value, created_at, id) ${rows}`)];
    },
  },
  {
    version: 9,
    name: "writers log changes only while someone listens",
    up: ({ listeners }) => [
      // One row per listening connection (its backend's pid), written when it starts listening
      // for this table and deleted when it stops; rows of backends that are gone are deleted by
      // the next listener that starts (notify.ts). Writers append to the change log only while
      // a row exists (sql.ts `keptInStep`, and the delete trigger of migration 10).
      `CREATE TABLE IF NOT EXISTS ${listeners} (
        pid INTEGER NOT NULL,
        origin TEXT NOT NULL,
        since TIMESTAMPTZ NOT NULL DEFAULT now()
      )`,
      // A bridge for listeners of earlier versions, running now, which never register: every
      // backend of this database whose last statement is one a listener of those versions
      // sends (LISTEN, its log reads, its NOTIFYs, its connection set-up), or whose statement we
      // may not see (another role's), counts as a listener until it disconnects. This version
      // marks its own such statements (LISTENER_MARK), so they do not count. With activity
      // tracking off (`track_activities`) nothing is seen: see the README.
      `INSERT INTO ${listeners} (pid, origin)
       SELECT a.pid, 'earlier-version' FROM pg_stat_activity a
       WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
         AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)
         AND (a.query = '<insufficient privilege>'
              OR (a.query NOT LIKE '%${LISTENER_MARK}%'
                  AND (a.query ~* '^\\s*(UN)?LISTEN\\s' OR a.query ~* '^\\s*NOTIFY\\s'
                       OR a.query LIKE '%pg\\_current\\_snapshot()%' OR a.query LIKE '%pg\\_postmaster\\_start\\_time()%'
                       OR a.query LIKE '%pg\\_listening\\_channels()%' OR a.query ~* '^\\s*SET synchronous_commit')))`,
    ],
  },
  {
    version: 10,
    name: "this version's writes keep their tags and change log in their own statements",
    up: ({ table, tags, tagsSync, changes, listeners }) => {
      // Sessions of writers of this version carry the setting `dgent.origin` (this process's
      // ORIGIN, sent by profiles.ts at connection start). Their inserts write their tag rows and,
      // while someone listens, their change-log rows in CTEs of the insert itself (sql.ts
      // `keptInStep`), as the statement of an application writing its own tags would: the
      // statement-level insert trigger and its PL/pgSQL cost a put 20–40 µs of server time
      // (measured: adapters/postgres/README.md). So the insert trigger now fires only for other
      // sessions (a writer of an earlier version, psql, another program), where it keeps the tags
      // in step as before; an earlier version's writer logs in its own statement, a statement
      // that is neither is not logged, as before. It is a row-level trigger with a `WHEN`: a
      // statement-level trigger with a transition table has every inserted row collected into
      // that table even when its `WHEN` is false (another 20–40 µs of server CPU per put at 16
      // callers), where a row-level `WHEN` that is false queues nothing (measured:
      // benchmarks/README.md). A hand-written insert of many rows runs it once per row. A delete
      // keeps its tags in step by the delete trigger for every session, and that trigger writes
      // the log rows for this version's sessions.
      // As before, only while someone listens (migration 9); the EXISTS runs at the end of the
      // statement, with a snapshot taken after the statement locked the table (notify.ts
      // `#register` relies on that order).
      const log = `IF current_setting('dgent.origin', true) <> '' AND EXISTS (SELECT FROM ${listeners}) THEN
             INSERT INTO ${changes} (xid, op, id, origin) SELECT pg_current_xact_id(), 'delete', r.id, current_setting('dgent.origin') FROM dgent_old r;
           END IF`;
      return [
        `DROP TRIGGER IF EXISTS ${tagsSync.insert.trigger} ON ${table}`,
        tagsFunction(
          tagsSync.insert.fn,
          `INSERT INTO ${tags} (key, value, created_at, id)
             SELECT DISTINCT left(j.key, 64), left(j.value, 256), NEW.created_at, NEW.id FROM jsonb_each_text(NEW.metadata) j`,
        ),
        `CREATE TRIGGER ${tagsSync.insert.trigger} AFTER INSERT ON ${table}
         FOR EACH ROW WHEN (coalesce(current_setting('dgent.origin', true), '') = '') EXECUTE FUNCTION ${tagsSync.insert.fn}()`,
        tagsFunction(tagsSync.delete.fn, `${oldTagRowsDelete(tags)};\n           ${log}`),
      ];
    },
  },
]);

/**
 * The delete of the tag rows of the datums a statement deleted (`dgent_old`), since migration 8:
 * each tag row looked up by its whole index key (see migration 8).
 */
function oldTagRowsDelete(tags: string): string {
  return `DELETE FROM ${tags} t USING (
           SELECT x.c FROM dgent_old r, jsonb_each_text(r.metadata) e,
             LATERAL (SELECT t2.ctid AS c FROM ${tags} t2
                      WHERE t2.key = left(e.key, 64) AND t2.value = left(e.value, 256) AND t2.created_at = r.created_at AND t2.id = r.id
                      OFFSET 0) x
         ) d WHERE t.ctid = d.c`;
}

/** A tags trigger function `name` (statement-level, or row-level for inserts since migration 10): runs `body`, returns NULL. */
function tagsFunction(name: string, body: string): string {
  return `CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $body$
         BEGIN
           ${body};
           RETURN NULL;
         END
         $body$`;
}

/**
 * The tag rows of the datums a statement inserted (`dgent_new`), since migration 7: one per datum
 * and (cut key, cut value), duplicates removed per datum (see migration 7).
 */
const NEW_TAG_ROWS = `SELECT e.key, e.value, r.created_at, r.id FROM dgent_new r,
           LATERAL (SELECT DISTINCT left(j.key, 64) AS key, left(j.value, 256) AS value FROM jsonb_each_text(r.metadata) j) e`;

/** A string as an SQL literal (identifiers here never hold a quote or backslash, but be exact). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

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
    // No statement timeout for this transaction: a backfill (migration 4 on a large table), or the
    // wait for another process doing one, takes as long as it takes; the profile's timeout
    // would make such a table impossible to open.
    await client.query("SET LOCAL statement_timeout = 0");
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
