import type BetterSqlite3 from "better-sqlite3";
import { dgentError } from "../../core/errors.js";
import { ADAPTER_NAME } from "./options.js";
import { FOREIGN_OBJECTS, PRAGMA, SCHEMA_V1, TX } from "./sql.js";

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

function readVersions(db: Db): { app: number; version: number } {
  return {
    app: db.pragma(PRAGMA.applicationId, { simple: true }) as number,
    version: db.pragma(PRAGMA.userVersion, { simple: true }) as number,
  };
}

function checkVersions(db: Db, path: string, app: number, version: number): void {
  if (app !== APPLICATION_ID && (app !== 0 || version !== 0)) {
    throw dgentError(
      "DGENT_NOT_A_DATABASE",
      `${path} is a SQLite database of another application (application_id ${app}, user_version ${version}); dgent leaves it untouched`,
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
  if (app === 0 && (db.prepare(FOREIGN_OBJECTS).pluck().get() as number) > 0) {
    throw dgentError(
      "DGENT_NOT_A_DATABASE",
      `${path} is a SQLite database that dgent did not create (it has tables and no dgent application_id); dgent leaves it untouched`,
      { unit: ADAPTER_NAME, details: { path } },
    );
  }
}

/**
 * Reads the versions and refuses, before anything is written, a database dgent must not touch:
 * another application's (`DGENT_NOT_A_DATABASE`) or a newer dgent's (`DGENT_SCHEMA_TOO_NEW`).
 * Returns true when the schema is already current.
 */
export function inspect(db: Db, path: string): boolean {
  const { app, version } = readVersions(db);
  if (app === APPLICATION_ID && version === SCHEMA_VERSION) return true;
  checkVersions(db, path, app, version);
  return false;
}

/**
 * Brings the schema to `SCHEMA_VERSION`. Idempotent. A current database costs two pragma reads
 * and no lock; otherwise the steps run in one `BEGIN IMMEDIATE` transaction that re-reads the
 * version, so processes opening a fresh file at once apply each step exactly once.
 */
export function migrate(db: Db, path: string): MigrationResult {
  if (inspect(db, path)) return { version: SCHEMA_VERSION, applied: [] };
  const applied: number[] = [];
  db.exec(TX.beginImmediate);
  try {
    const { app, version } = readVersions(db);
    checkVersions(db, path, app, version);
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
