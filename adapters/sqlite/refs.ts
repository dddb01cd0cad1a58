/**
 * Refs and transactions on the sqlite tier. Refs are rows of the `refs` table, their moves the
 * slots of a ring per ref in `reflog`, written by triggers on `refs` (schema versions 2 and 5,
 * sql.ts). A compare-and-set by version is one autocommit `UPDATE … WHERE name = ? AND version = ?`
 * (its trigger writes the reflog slot in the same statement); when it moves nothing, or for any
 * other change, the change runs inside one `BEGIN IMMEDIATE` transaction of the adapter: it takes
 * the database's write lock before reading anything, so the expectation checked and the row
 * written are about the same state, whichever process of the machine writes the file. What fails
 * (a ref expectation, the append-only law) throws, and the transaction rolls back whole.
 */
import type { Datum } from "../../core/datum.js";
import { meets, movedRef, refConflict, type Ref, type RefExpectation, type RefMove, type ReflogEntry, type TxOp, type TxOpResult, type TxResult } from "../../core/refs.js";
import type { Db } from "./connection.js";
import { prefixRange } from "./keys.js";
import { ADAPTER_NAME } from "./options.js";
import { REFS } from "./sql.js";

/** What the refs need from the adapter, inside its write transaction. */
export interface RefHost {
  /** Inserts the datum, or compares it with what its id holds (throws `DGENT_CONFLICT`). */
  put(datum: Datum): void;
  /** Deletes the id; true when it existed. */
  delete(id: string): boolean;
  /** Counts statements executed (the adapter's `stats().queries`). */
  count(statements: number): void;
}

type RefRow = [string, string, number, number];
type LogRow = [string | null, string | null, number, number, string];

function statements(db: Db) {
  const raw = (sql: string) => db.prepare(sql).raw(true);
  return {
    get: raw(REFS.get),
    listAll: raw(REFS.listAll),
    listRange: raw(REFS.listRange),
    listFrom: raw(REFS.listFrom),
    insert: db.prepare(REFS.insert),
    casVersion: db.prepare(REFS.casVersion),
    update: db.prepare(REFS.update),
    delete: db.prepare(REFS.delete),
    logDelete: db.prepare(REFS.logDelete),
    reflog: raw(REFS.reflog),
  };
}

const toRef = (row: RefRow): Ref => ({ name: row[0], target: row[1], version: row[2], updatedAt: row[3] });

export class SqliteRefs {
  readonly #s: ReturnType<typeof statements>;
  readonly #host: RefHost;

  constructor(db: Db, host: RefHost) {
    this.#s = statements(db);
    this.#host = host;
  }

  get(name: string): Ref | null {
    return this.#current(name)?.ref ?? null;
  }

  /** The ref and the number of its newest move. */
  #current(name: string): { ref: Ref; seq: number } | null {
    this.#host.count(1);
    const row = this.#s.get.get(name) as [string, number, number, number] | undefined;
    return row === undefined ? null : { ref: { name, target: row[0], version: row[1], updatedAt: row[2] }, seq: row[3] };
  }

  /**
   * A compare-and-set by version as one autocommit statement (the trigger logs it), outside any
   * transaction: the ref as moved, or null when it did not hold that version (nothing changed;
   * the caller goes the transaction's way, which says why).
   */
  casVersion(name: string, target: string, version: number, move: RefMove): Ref | null {
    this.#host.count(1);
    if (this.#s.casVersion.run(target, move.at, move.by, name, version).changes !== 1) return null;
    return { name, target, version: version + 1, updatedAt: move.at };
  }

  /** By name: SQLite's BINARY collation compares UTF-8 bytes, which is code point order. */
  list(prefix: string): Ref[] {
    const range = prefix === "" ? { lower: "", upper: null } : prefixRange(prefix);
    if (range === null) return [];
    this.#host.count(1);
    const s = this.#s;
    const rows = (prefix === "" ? s.listAll.all() : range.upper === null ? s.listFrom.all(range.lower) : s.listRange.all(range.lower, range.upper)) as RefRow[];
    return rows.map(toRef);
  }

  reflog(name: string, limit: number): ReflogEntry[] {
    this.#host.count(1);
    const rows = this.#s.reflog.all(name, limit) as LogRow[];
    return rows.map((r) => ({ name, from: r[0], to: r[1], version: r[2], at: r[3], by: r[4] }));
  }

  /**
   * Applies `ops` in order, each seeing the earlier ones' effects. Call inside the adapter's
   * write transaction: a throw (a failed expectation, a conflicting put) rolls it all back.
   */
  apply(ops: readonly TxOp[], move: RefMove): TxResult {
    const results: TxOpResult[] = [];
    for (const op of ops) {
      switch (op.op) {
        case "put":
          this.#host.put(op.datum);
          results.push({ op: "put", id: op.datum.id });
          break;
        case "delete":
          results.push({ op: "delete", id: op.id, existed: this.#host.delete(op.id) });
          break;
        case "setRef":
          results.push({ op: "setRef", ref: this.#set(op.name, op.target, op.expect, move) });
          break;
        case "deleteRef":
          results.push({ op: "deleteRef", name: op.name, existed: this.#delete(op.name, op.expect, move) });
          break;
      }
    }
    return { results };
  }

  #set(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Ref {
    // By version: the conditional UPDATE decides, with no read first.
    if (expect !== undefined && "version" in expect) {
      const moved = this.casVersion(name, target, expect.version, move);
      if (moved !== null) return moved;
      throw refConflict(name, expect, this.get(name), ADAPTER_NAME);
    }
    const current = this.get(name);
    if (!meets(current, expect)) throw refConflict(name, expect, current, ADAPTER_NAME);
    const next = movedRef(name, current, target, move.at);
    this.#host.count(1);
    if (current === null) this.#s.insert.run(name, target, move.at, name, move.by);
    else this.#s.update.run(target, next.version, move.at, move.by, name);
    return next;
  }

  #delete(name: string, expect: RefExpectation | undefined, move: RefMove): boolean {
    const current = this.#current(name);
    if (!meets(current?.ref ?? null, expect)) throw refConflict(name, expect, current?.ref ?? null, ADAPTER_NAME);
    if (current === null) return false;
    this.#host.count(2);
    const seq = current.seq + 1;
    this.#s.logDelete.run(name, seq, seq, current.ref.target, current.ref.version, move.at, move.by);
    this.#s.delete.run(name);
    return true;
  }
}
