/**
 * Refs and transactions on the sqlite tier. Refs are rows of the `refs` table; a ref's newest
 * moves are kept in its own row (`recent`), older ones in chunks of a ring per ref in `reflog`
 * (schema version 6, sql.ts). A compare-and-set by version is one autocommit `UPDATE … WHERE
 * name = ? AND version = ?` that also appends the move to the row (every `REFLOG_CHUNK`th move its
 * trigger writes the chunk the row held, in the same statement); when it moves nothing, or for any
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

/** One move as `recent` and the chunks hold it: seq, to, version, at, by, and (migrated moves) from. */
type Encoded = [number, string | null, number, number, string, (string | null)?];

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
    spill: db.prepare(REFS.spill),
    logDelete: db.prepare(REFS.logDelete),
    reflog: raw(REFS.reflog).pluck(),
  };
}

const toRef = (row: RefRow): Ref => ({ name: row[0], target: row[1], version: row[2], updatedAt: row[3] });

/**
 * Builds a move as `recent` holds it, after its number (which the statement adds): `,"<to>",
 * <version>,<at>,"<by>"]` — the JSON `json_array` would write, made here so the statement binds
 * one text instead of three values. A store moves refs as one actor, often many times in the same
 * millisecond and to the same target, so the last target's JSON and the last `at` and `by`'s are
 * kept (number to text and JSON quoting are most of the cost).
 */
class MoveText {
  #target = "";
  #targetJson = '""';
  #at = Number.NaN;
  #by = "";
  #end = "";

  tail(target: string, version: number, move: RefMove): string {
    if (target !== this.#target) {
      this.#target = target;
      this.#targetJson = JSON.stringify(target);
    }
    if (move.at !== this.#at || move.by !== this.#by) {
      this.#at = move.at;
      this.#by = move.by;
      this.#end = `,${JSON.stringify(move.at)},${JSON.stringify(move.by)}]`;
    }
    return `,${this.#targetJson},${version}${this.#end}`;
  }
}

export class SqliteRefs {
  readonly #s: ReturnType<typeof statements>;
  readonly #host: RefHost;
  readonly #moveText = new MoveText();

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
    if (this.#s.casVersion.run(target, move.at, this.#moveText.tail(target, version + 1, move), name, version).changes !== 1) return null;
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

  /** The row's moves and the ring's, newest first; each move came from where the one before it went. */
  reflog(name: string, limit: number): ReflogEntry[] {
    this.#host.count(1);
    const moves: Encoded[] = [];
    for (const text of this.#s.reflog.all(name, name) as string[]) if (text !== "") moves.push(...(JSON.parse(`[${text.slice(1)}]`) as Encoded[]));
    moves.sort((a, b) => b[0] - a[0]);
    const out: ReflogEntry[] = [];
    for (let i = 0; i < moves.length && i < limit; i++) {
      const m = moves[i] as Encoded;
      const before = moves[i + 1];
      const from = m.length > 5 ? (m[5] as string | null) : before !== undefined && before[0] === m[0] - 1 ? before[1] : null;
      out.push({ name, from, to: m[1], version: m[2], at: m[3], by: m[4] });
    }
    return out;
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
    if (current === null) this.#s.insert.run(name, target, move.at, target, move.at, move.by, name);
    else this.#s.update.run(target, next.version, move.at, this.#moveText.tail(target, next.version, move), name);
    return next;
  }

  #delete(name: string, expect: RefExpectation | undefined, move: RefMove): boolean {
    const current = this.#current(name);
    if (!meets(current?.ref ?? null, expect)) throw refConflict(name, expect, current?.ref ?? null, ADAPTER_NAME);
    if (current === null) return false;
    this.#host.count(3);
    const seq = current.seq + 1;
    // The moves the row holds go to their chunk first; where the delete came from is where they went.
    this.#s.spill.run(name);
    const moved: Encoded = [seq, null, current.ref.version, move.at, move.by];
    this.#s.logDelete.run(name, seq, seq, seq, `,${JSON.stringify(moved)}`);
    this.#s.delete.run(name);
    return true;
  }
}
