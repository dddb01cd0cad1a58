/**
 * The file's own change table, for `dgent serve`'s change stream (server/README.md).
 *
 * `changeTable()` creates, on its first call for a file, a table `change_log` and triggers on
 * `data` and `refs` that append one row per put, delete and ref move **inside the writing
 * transaction**: an acknowledged write has its event, a rolled-back one has none, whichever
 * process or connection wrote it, and the stream costs one row append instead of a second
 * commit. `seq` is the row's key; pruning never deletes the newest row, so numbers only grow.
 *
 * A row holds `op` (put, delete, setRef, deleteRef), `key` (the id or the ref's name), for put
 * and delete `metadata` (the datum's tags, as stored), for put `created_at` and `causal_parent`,
 * for setRef `target` and `version`, and `at` (epoch ms of the write, SQLite's clock). A put of
 * an id already stored (same datum) writes nothing and has no event.
 *
 * Once created, the table and its triggers stay in the file: every later writer, with or without
 * a server running, logs its writes there. The server prunes it to its retention on start and as
 * it goes (`prune`).
 */
import type BetterSqlite3 from "better-sqlite3";
import type { NumberedChange } from "../../core/protocol.js";

type Db = BetterSqlite3.Database;

const AT = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

// Plain columns, no JSON built and no AUTOINCREMENT in the write path: one row append per write.
const CREATE = `
CREATE TABLE IF NOT EXISTS change_log (
  seq           INTEGER PRIMARY KEY,
  op            TEXT NOT NULL,
  key           TEXT NOT NULL,
  metadata      TEXT,
  created_at    REAL,
  causal_parent TEXT,
  target        TEXT,
  version       INTEGER,
  at            INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS change_log_put AFTER INSERT ON data BEGIN
  INSERT INTO change_log (op, key, metadata, created_at, causal_parent, at) VALUES ('put', NEW.id, coalesce(NEW.metadata, '{}'), NEW.created_at, NEW.causal_parent, ${AT});
END;
CREATE TRIGGER IF NOT EXISTS change_log_delete AFTER DELETE ON data BEGIN
  INSERT INTO change_log (op, key, metadata, at) VALUES ('delete', OLD.id, coalesce(OLD.metadata, '{}'), ${AT});
END;
CREATE TRIGGER IF NOT EXISTS change_log_ref_insert AFTER INSERT ON refs BEGIN
  INSERT INTO change_log (op, key, target, version, at) VALUES ('setRef', NEW.name, NEW.target, NEW.version, ${AT});
END;
CREATE TRIGGER IF NOT EXISTS change_log_ref_update AFTER UPDATE OF target, version ON refs
  WHEN NEW.target IS NOT OLD.target OR NEW.version IS NOT OLD.version BEGIN
  INSERT INTO change_log (op, key, target, version, at) VALUES ('setRef', NEW.name, NEW.target, NEW.version, ${AT});
END;
CREATE TRIGGER IF NOT EXISTS change_log_ref_delete AFTER DELETE ON refs BEGIN
  INSERT INTO change_log (op, key, at) VALUES ('deleteRef', OLD.name, ${AT});
END;
`;

/** One logged change (see the module comment). */
export type ChangeRecord = NumberedChange;

type Row = [number, ChangeRecord["op"], string, string | null, number | null, string | null, string | null, number | null, number];

function record([seq, op, key, metadata, createdAt, causalParent, target, version, at]: Row): ChangeRecord {
  switch (op) {
    case "put":
      return { seq, op, key, metadata: JSON.parse(metadata ?? "{}") as Record<string, string>, createdAt: createdAt as number, causalParent, at };
    case "delete":
      return { seq, op, key, metadata: JSON.parse(metadata ?? "{}") as Record<string, string>, at };
    case "setRef":
      return { seq, op, key, target: target as string, version: version as number, at };
    default:
      return { seq, op, key, at };
  }
}

/** What a change stream reads from a file's change table. Every call is synchronous. */
export interface ChangeTable {
  /** The newest number (0 when nothing was ever logged). */
  last(): number;
  /** The oldest number still held (0 when empty). */
  oldest(): number;
  /** Changes with `after < seq <= upTo`, oldest first, at most `limit`. */
  since(after: number, upTo: number, limit: number): ChangeRecord[];
  /** Drops changes with `seq < from`, but never the newest one (which keeps the numbering going); returns how many. */
  prune(from: number): number;
}

class SqliteChangeTable implements ChangeTable {
  readonly #last: BetterSqlite3.Statement;
  readonly #oldest: BetterSqlite3.Statement;
  readonly #since: BetterSqlite3.Statement;
  readonly #prune: BetterSqlite3.Statement;
  readonly #guard: <T>(op: string, body: () => T) => T;

  /** Creates the table and triggers if the file lacks them (one `BEGIN IMMEDIATE` transaction); see `openChangeTable`. */
  constructor(db: Db, guard: <T>(op: string, body: () => T) => T, create: boolean) {
    this.#guard = guard;
    if (create) db.transaction(() => db.exec(CREATE)).immediate();
    this.#last = db.prepare("SELECT coalesce(max(seq), 0) FROM change_log").pluck();
    this.#oldest = db.prepare("SELECT coalesce(min(seq), 0) FROM change_log").pluck();
    this.#since = db.prepare("SELECT seq, op, key, metadata, created_at, causal_parent, target, version, at FROM change_log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?").raw(true);
    this.#prune = db.prepare("DELETE FROM change_log WHERE seq < min(?, (SELECT max(seq) FROM change_log))");
  }

  last(): number {
    return this.#guard("changeTable.last", () => this.#last.get() as number);
  }

  oldest(): number {
    return this.#guard("changeTable.oldest", () => this.#oldest.get() as number);
  }

  since(after: number, upTo: number, limit: number): ChangeRecord[] {
    return this.#guard("changeTable.since", () => (this.#since.all(after, upTo, limit) as Row[]).map(record));
  }

  prune(from: number): number {
    return this.#guard("changeTable.prune", () => this.#prune.run(from).changes);
  }
}

const OBJECTS = ["change_log", "change_log_put", "change_log_delete", "change_log_ref_insert", "change_log_ref_update", "change_log_ref_delete"];

/**
 * The file's change table: created (with its triggers) unless the file has it all already. A
 * read-only connection cannot create it: `null` when the file lacks it.
 */
export function openChangeTable(db: Db, guard: <T>(op: string, body: () => T) => T, readonly: boolean): SqliteChangeTable | null {
  const have = db.prepare(`SELECT count(*) FROM sqlite_schema WHERE name IN (${OBJECTS.map(() => "?").join(", ")})`).pluck().get(...OBJECTS) as number;
  if (have === OBJECTS.length) return new SqliteChangeTable(db, guard, false);
  return readonly ? null : new SqliteChangeTable(db, guard, true);
}
