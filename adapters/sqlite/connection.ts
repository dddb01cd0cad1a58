import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { requireNow } from "../../core/lazy.js";
import { dgentError, isDgentError, wrapError, type DgentError } from "../../core/errors.js";
import { ensureWritableDir } from "../../core/paths.js";
import { inspect, migrate, SCHEMA_VERSION, type MigrationResult } from "./migrations.js";
import { ADAPTER_NAME, type SqliteConfig } from "./options.js";
import { PRAGMA } from "./sql.js";

export type Db = BetterSqlite3.Database;

const Database = requireNow<typeof BetterSqlite3>("better-sqlite3");

const HEADER = Buffer.from("SQLite format 3\0", "latin1");

/**
 * Maps a driver error to a dgent error, once: lock waits beyond the busy timeout are
 * `DGENT_UNAVAILABLE` (retryable), a foreign file is `DGENT_NOT_A_DATABASE`, anything else is
 * `DGENT_BACKEND_ERROR` with the driver's error as `cause`.
 */
export function driverError(error: unknown, op: string, config: SqliteConfig): DgentError {
  if (isDgentError(error)) return error;
  const code = typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : "";
  const details = { path: config.path, op, sqliteCode: code };
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return dgentError(
      "DGENT_UNAVAILABLE",
      `sqlite ${op}: ${config.path} stayed locked by another connection for longer than busyTimeoutMs (${config.busyTimeoutMs} ms)`,
      { unit: ADAPTER_NAME, cause: error, details },
    );
  }
  if (code === "SQLITE_NOTADB") return notADatabase(config.path, error);
  return wrapError(error, "DGENT_BACKEND_ERROR", `sqlite ${op} failed on ${config.path}`, { unit: ADAPTER_NAME, details });
}

function notADatabase(path: string, cause?: unknown): DgentError {
  return dgentError("DGENT_NOT_A_DATABASE", `${path} exists but is not a SQLite database; dgent leaves it untouched`, {
    unit: ADAPTER_NAME,
    cause,
    details: { path },
  });
}

/** Refuses, without writing anything, a non-empty file that does not start with SQLite's header. */
function assertSqliteFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // created on open
    throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot read ${path}`, { unit: ADAPTER_NAME, details: { path } });
  }
  try {
    const head = Buffer.alloc(HEADER.length);
    let read: number;
    try {
      read = readSync(fd, head, 0, head.length, 0);
    } catch (error) {
      throw notADatabase(path, error); // e.g. EISDIR
    }
    if (read !== 0 && (read < head.length || !head.equals(HEADER)) && !hotJournal(path)) throw notADatabase(path);
  } finally {
    closeSync(fd);
  }
}

/** The first 8 bytes of a rollback journal SQLite wrote (its header's magic). */
const JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);

/**
 * True when a rollback journal of SQLite's own lies next to the file: power was lost while SQLite
 * wrote the file (the first write of a new database, before WAL, is one), and SQLite's open rolls
 * it back from the journal, so the header is checked after that (`inspect`), not before.
 */
function hotJournal(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(`${path}-journal`, "r");
  } catch {
    return false;
  }
  try {
    const magic = Buffer.alloc(JOURNAL_MAGIC.length);
    return readSync(fd, magic, 0, magic.length, 0) === magic.length && magic.equals(JOURNAL_MAGIC);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

export interface OpenedDatabase {
  readonly db: Db;
  readonly migration: MigrationResult;
}

/**
 * Opens (creating when missing) the database: checks the directory and the file header first,
 * sets the busy timeout, WAL, `synchronous` and the memory map, then migrates the schema.
 */
export function openDatabase(config: SqliteConfig): OpenedDatabase {
  if (config.readonly) return openReadonly(config);
  if (!config.inMemory) {
    ensureWritableDir(dirname(config.path), ADAPTER_NAME);
    assertSqliteFile(config.path);
  }
  let db: Db;
  try {
    db = new Database(config.path, { timeout: config.busyTimeoutMs });
  } catch (error) {
    throw driverError(error, "open", config);
  }
  try {
    inspect(db, config.path); // refuse foreign or newer files before WAL writes to them
    // Needs a brief exclusive lock on a fresh file. Racing openers that both hold a shared
    // lock get SQLITE_BUSY at once (SQLite does not call the busy handler where waiting would
    // deadlock), so this step retries until the busy timeout runs out.
    if (!config.inMemory) whileBusy(config.busyTimeoutMs, () => db.pragma(PRAGMA.journalWal));
    db.pragma(PRAGMA.synchronous(config.synchronous));
    // Reads of the file through a memory map: the B-tree pages of a get come from the page
    // cache without a read call each (a large file gains most). 0 keeps read calls.
    if (!config.inMemory) db.pragma(PRAGMA.mmapSize(config.mmapSize));
    const migration = migrate(db, config.path);
    return { db, migration };
  } catch (error) {
    db.close();
    throw driverError(error, "open", config);
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `step`, and again after a short synchronous pause each time it fails with SQLITE_BUSY,
 * until it succeeds or `timeoutMs` has passed (then the last error is thrown).
 */
function whileBusy<T>(timeoutMs: number, step: () => T): T {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      return step();
    } catch (error) {
      const code = (error as { code?: unknown })?.code;
      if (typeof code !== "string" || !code.startsWith("SQLITE_BUSY") || Date.now() >= deadline) throw error;
      Atomics.wait(pause, 0, 0, wait);
    }
  }
}

/** The error of a read-only open whose file is not there: nothing was created. */
export function missingDatabase(path: string): DgentError {
  return dgentError("DGENT_INVALID_OPTIONS", `sqlite: ${path} does not exist (opened read-only: nothing was created)`, {
    unit: ADAPTER_NAME,
    details: { path, missing: true },
  });
}

/**
 * Opens an existing database without changing anything: no directory or file is created, no
 * schema step runs, and the connection refuses writes (`PRAGMA query_only`). The connection is
 * opened read-write at the OS level on purpose: SQLite creates the WAL's `-wal` and `-shm` side
 * files for any reader and removes them only when a read-write connection closes last, so a
 * read-only handle would leave them behind.
 */
function openReadonly(config: SqliteConfig): OpenedDatabase {
  if (!existsSync(config.path)) throw missingDatabase(config.path);
  assertSqliteFile(config.path);
  let db: Db;
  try {
    db = new Database(config.path, { timeout: config.busyTimeoutMs, fileMustExist: true });
  } catch (error) {
    if ((error as { code?: unknown }).code === "SQLITE_CANTOPEN" && !existsSync(config.path)) throw missingDatabase(config.path);
    throw driverError(error, "open", config);
  }
  try {
    db.pragma("query_only = 1");
    if (!inspect(db, config.path)) {
      const version = db.pragma("user_version", { simple: true }) as number;
      throw version === 0
        ? dgentError("DGENT_NOT_A_DATABASE", `${config.path} holds no dgent data yet (no schema); opened read-only, it is left as it is`, {
            unit: ADAPTER_NAME,
            details: { path: config.path },
          })
        : dgentError(
            "DGENT_BACKEND_ERROR",
            `${config.path} has schema version ${version}, older than ${SCHEMA_VERSION}; a read-only open cannot upgrade it (open it read-write once)`,
            { unit: ADAPTER_NAME, details: { path: config.path, version, current: SCHEMA_VERSION, olderSchema: true } },
          );
    }
    db.pragma(PRAGMA.mmapSize(config.mmapSize));
    return { db, migration: { version: SCHEMA_VERSION, applied: [] } };
  } catch (error) {
    db.close();
    throw driverError(error, "open", config);
  }
}

/**
 * A second connection to a file database that only reads (`PRAGMA query_only`), for a reader
 * that holds one read transaction for a long time (`exportDatums`) without tying up the
 * adapter's own connection. Opened read-write at the OS level for the reason `openReadonly` gives.
 */
export function openReader(config: SqliteConfig): Db {
  const db = new Database(config.path, { timeout: config.busyTimeoutMs, fileMustExist: true });
  try {
    db.pragma("query_only = 1");
    db.pragma(PRAGMA.mmapSize(config.mmapSize));
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
