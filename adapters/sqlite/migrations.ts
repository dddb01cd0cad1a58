import type BetterSqlite3 from "better-sqlite3";
import { dgentError } from "../../core/errors.js";
import { ADAPTER_NAME } from "./options.js";
import { PRAGMA, SCHEMA_STATE, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, TX } from "./sql.js";

/** One schema step. Append new steps at the end; never edit or reorder a released one. */
export interface Migration {
  /** `PRAGMA user_version` after this step; 1, 2, 3, … */
  readonly version: number;
  readonly description: string;
  /** SQL run inside the migration transaction. */
  readonly up: string;
}

/** Append-only. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    description: "data table; indexes on (created_at, id) for newest-first lists and on causal_parent",
    up: SCHEMA_V1,
  },
  {
    version: 2,
    description: "refs table (name, target, version, updated_at) and reflog table (the newest moves of each ref)",
    up: SCHEMA_V2,
  },
  {
    version: 3,
    description: "tags table (key, value, created_at, id) kept by triggers and backfilled from metadata; the parent index becomes (causal_parent, created_at, id)",
    up: SCHEMA_V3,
  },
  {
    version: 4,
    description: "the tags_delete trigger finds a deleted datum's tag rows by the whole primary key (one seek per tag, whatever the statistics say)",
    up: SCHEMA_V4,
  },
  {
    version: 5,
    description: "the reflog becomes a ring of 100 slots per ref, written by triggers on refs (which gains log_seq and moved_by); the newest 100 moves of each ref are kept",
    up: SCHEMA_V5,
  },
  {
    version: 6,
    description: "a ref's newest moves live in its own row (refs.recent), older ones in a ring of chunks of moves per ref (reflog); the reflog keeps the newest 100 moves of each ref",
    up: SCHEMA_V6,
  },
]);

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** `PRAGMA application_id` of a dgent database: "dgnt". Tells our files from other SQLite files. */
export const APPLICATION_ID = 0x64676e74;

export interface MigrationResult {
  /** The schema version after migrating. */
  readonly version: number;
  /** Versions this call applied (empty when another process, or an earlier open, did it). */
  readonly applied: readonly number[];
}

type Db = BetterSqlite3.Database;

interface SchemaState {
  /** `PRAGMA application_id`: ours, or 0 for a fresh file. */
  readonly app: number;
  /** `PRAGMA user_version`: the schema version. */
  readonly version: number;
  /** Tables, indexes, views and triggers in the file. */
  readonly objects: number;
}

function readState(db: Db): SchemaState {
  const [app, version, objects] = db.prepare(SCHEMA_STATE).raw(true).get() as [number, number, number];
  return { app, version, objects };
}

function checkState(path: string, { app, version, objects }: SchemaState): void {
  if (app !== APPLICATION_ID && (app !== 0 || version !== 0 || objects > 0)) {
    throw dgentError(
      "DGENT_NOT_A_DATABASE",
      `${path} is a SQLite database that dgent did not create (application_id ${app}, user_version ${version}, ${objects} schema objects); dgent leaves it untouched`,
      { unit: ADAPTER_NAME, details: { path, applicationId: app, userVersion: version } },
    );
  }
  if (version > SCHEMA_VERSION) {
    throw dgentError(
      "DGENT_SCHEMA_TOO_NEW",
      `${path} has schema version ${version}, newer than the ${SCHEMA_VERSION} this dgent knows; upgrade dgent to open it`,
      { unit: ADAPTER_NAME, details: { path, version, known: SCHEMA_VERSION } },
    );
  }
}

/**
 * Reads the versions and refuses, before anything is written, a database dgent must not touch:
 * another application's (`DGENT_NOT_A_DATABASE`) or a newer dgent's (`DGENT_SCHEMA_TOO_NEW`).
 * Returns true when the schema is already current.
 */
export function inspect(db: Db, path: string): boolean {
  const state = readState(db);
  if (state.app === APPLICATION_ID && state.version === SCHEMA_VERSION) return true;
  checkState(path, state);
  return false;
}

/**
 * Brings the schema to `SCHEMA_VERSION`. Idempotent. A current database costs one read
 * and no lock; otherwise the steps run in one `BEGIN IMMEDIATE` transaction that re-reads the
 * version, so processes opening a fresh file at once apply each step exactly once.
 */
export function migrate(db: Db, path: string): MigrationResult {
  if (inspect(db, path)) return { version: SCHEMA_VERSION, applied: [] };
  const applied: number[] = [];
  db.exec(TX.beginImmediate);
  try {
    const state = readState(db);
    checkState(path, state);
    const { app, version } = state;
    for (const step of MIGRATIONS) {
      if (step.version <= version) continue;
      db.exec(step.up);
      db.pragma(PRAGMA.setUserVersion(step.version));
      applied.push(step.version);
    }
    if (app !== APPLICATION_ID) db.pragma(PRAGMA.setApplicationId(APPLICATION_ID));
    db.exec(TX.commit);
  } catch (error) {
    if (db.inTransaction) db.exec(TX.rollback);
    throw error;
  }
  return { version: SCHEMA_VERSION, applied };
}
