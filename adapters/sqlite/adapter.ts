import { cycleError, depthError } from "../../core/causal.js";
import { sameValue, type Datum } from "../../core/datum.js";
import { RANKS } from "../ranks.js";
import { Lifecycle } from "../../core/lifecycle.js";
import type { Adapter, AdapterStats, Capabilities, ResolvedListOptions } from "../../core/protocol.js";
import type { DatumHeader, IdPage, ResolvedQuery } from "../../core/query.js";
import type { Ref, RefExpectation, RefMove, ReflogEntry, TxOp, TxResult } from "../../core/refs.js";
import { conflictError } from "../../core/tiers.js";
import { openChangeTable, type ChangeTable } from "./changes.js";
import { driverError, openDatabase, openReader, type Db } from "./connection.js";
import { prefixRange } from "./keys.js";
import type { MigrationResult } from "./migrations.js";
import { ADAPTER_NAME, type SqliteConfig } from "./options.js";
import { SqliteQueries, toDatum, type QueryPlan } from "./queries.js";
import { SqliteRefs } from "./refs.js";
import * as SQL from "./sql.js";

const CAPABILITIES: Capabilities = Object.freeze({
  persistent: true,
  multiProcess: true,
  nativeCausalChain: true,
  batch: true,
  scan: true,
  evicts: false,
  refs: true,
  transactions: true,
  query: true,
  queryCost: "indexed",
});

/** `:memory:` lives and dies with its connection. */
const IN_MEMORY_CAPABILITIES: Capabilities = Object.freeze({ ...CAPABILITIES, persistent: false, multiProcess: false });

/** A row in raw mode: id, content, created_at, causal_parent, metadata (see `sql.ts`). */
type Row = [string, Buffer, number, string | null, string | null];
/** A `GET` row: the same without the id. */
type GetRow = [Buffer, number, string | null, string | null];

const SCAN_PAGE_ROWS = 256;
/** Rows per page of `exportDatums` (one `await` per page). */
const EXPORT_PAGE_ROWS = 2048;
/** Measured cost ratio of the two prefix plans (see `PREFIX_PLAN` in sql.ts). */
const PLAN_FACTOR = 0.032;
const SCAN_PAGE_BYTES = 8 * 1024 * 1024;

function metadataText(metadata: Readonly<Record<string, string>>): string | null {
  for (const _ in metadata) return JSON.stringify(metadata);
  return null;
}

function statements(db: Db) {
  const raw = (sql: string) => db.prepare(sql).raw(true);
  return {
    insert: db.prepare(SQL.INSERT),
    get: raw(SQL.GET),
    delete: db.prepare(SQL.DELETE),
    list: raw(SQL.LIST),
    listById: raw(SQL.LIST_RANGE_BY_ID),
    listByTime: raw(SQL.LIST_RANGE_BY_TIME),
    prefixPlan: db.prepare(SQL.PREFIX_PLAN).pluck(true),
    listFrom: raw(SQL.LIST_FROM),
    chain: raw(SQL.CAUSAL_CHAIN),
    scanPage: raw(SQL.SCAN_PAGE),
    stats: raw(SQL.STATS),
    probe: raw(SQL.PROBE),
  };
}

type Statements = ReturnType<typeof statements>;

/** The sqlite tier: one better-sqlite3 connection, statements prepared once at open. */
export class SqliteAdapter implements Adapter {
  readonly name = ADAPTER_NAME;
  readonly rank = RANKS.sqlite;
  readonly capabilities: Capabilities;
  /** The database file (absolute), or `:memory:`. */
  readonly path: string;
  readonly #config: SqliteConfig;
  readonly #life = new Lifecycle(ADAPTER_NAME);
  #db: Db | null = null;
  #s!: Statements;
  #putAll!: { immediate(datums: readonly Datum[]): void };
  #deleteAll!: { immediate(ids: readonly string[]): string[] };
  #refs!: SqliteRefs;
  #queryOps!: SqliteQueries;
  /** Refs and transactions: one `BEGIN IMMEDIATE` transaction per commit (see refs.ts). */
  #commitAll!: { immediate(ops: readonly TxOp[], move: RefMove): TxResult };
  #migration: MigrationResult | null = null;
  #changes: ChangeTable | null = null;
  /** Statements executed since open (exposed by `stats()`; one per operation on the hot paths). */
  #queries = 0;

  constructor(config: SqliteConfig) {
    this.#config = config;
    this.path = config.path;
    this.capabilities = config.inMemory ? IN_MEMORY_CAPABILITIES : CAPABILITIES;
  }

  async open(): Promise<void> {
    if (!this.#life.beginOpen()) return;
    const { db, migration } = openDatabase(this.#config);
    try {
      this.#s = statements(db);
      this.#putAll = db.transaction((datums: readonly Datum[]) => {
        for (const d of datums) this.#insertOrCompare(d);
      });
      this.#deleteAll = db.transaction((ids: readonly string[]) => {
        const existed: string[] = [];
        for (const id of ids) if (this.#s.delete.run(id).changes > 0) existed.push(id);
        this.#queries += ids.length;
        return existed;
      });
      this.#refs = new SqliteRefs(db, {
        put: (d) => this.#insertOrCompare(d),
        delete: (id) => (this.#queries++, this.#s.delete.run(id).changes > 0),
        count: (n) => void (this.#queries += n),
      });
      this.#commitAll = db.transaction((ops: readonly TxOp[], move: RefMove) => this.#refs.apply(ops, move));
      this.#queryOps = new SqliteQueries(db, (n) => void (this.#queries += n));
    } catch (error) {
      db.close();
      throw driverError(error, "open", this.#config);
    }
    this.#db = db;
    this.#migration = migration;
    this.#life.opened();
  }

  async close(): Promise<void> {
    if (!this.#life.beginClose()) return;
    const db = this.#db;
    this.#db = null;
    this.#changes = null;
    if (db === null) return;
    try {
      // Advisory (refreshes planner statistics when useful); never wait for another writer here.
      db.pragma(SQL.PRAGMA.noBusyWait);
      db.pragma(SQL.PRAGMA.optimize);
    } catch {
      // A busy or read-only file must not stop the close.
    }
    try {
      db.close();
    } catch (error) {
      throw driverError(error, "close", this.#config);
    }
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    this.#queries++;
    try {
      const { changes } = this.#s.insert.run(
        datum.id,
        datum.content,
        datum.createdAt,
        datum.causalParent,
        metadataText(datum.metadata),
      );
      if (changes === 1) return datum.id;
      // The id exists: decide no-op or conflict under the write lock, so no one changes it meanwhile.
      this.#putAll.immediate([datum]);
    } catch (error) {
      throw driverError(error, "put", this.#config);
    }
    return datum.id;
  }

  /** Inside a transaction: insert, or compare with what the id already holds. */
  #insertOrCompare(datum: Datum): void {
    const s = this.#s;
    this.#queries++;
    const args = [datum.id, datum.content, datum.createdAt, datum.causalParent, metadataText(datum.metadata)] as const;
    if (s.insert.run(...args).changes === 1) return;
    this.#queries++;
    // The id exists (DO NOTHING only skips an id conflict), and the write lock keeps it so.
    const row = s.get.get(datum.id) as GetRow;
    if (!sameValue(toDatum([datum.id, ...row]), datum)) throw conflictError(datum.id, ADAPTER_NAME);
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    if (datums.length === 0) return [];
    try {
      this.#putAll.immediate(datums);
    } catch (error) {
      throw driverError(error, "putMany", this.#config);
    }
    return datums.map((d) => d.id);
  }

  async get(id: string): Promise<Datum | null> {
    this.#life.check();
    this.#queries++;
    let row: GetRow | undefined;
    try {
      row = this.#s.get.get(id) as GetRow | undefined;
    } catch (error) {
      throw driverError(error, "get", this.#config);
    }
    if (row === undefined) return null;
    return {
      id,
      content: row[0],
      createdAt: row[1],
      causalParent: row[2],
      metadata: row[3] === null ? {} : (JSON.parse(row[3]) as Record<string, string>),
    };
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    this.#queries++;
    try {
      return this.#s.delete.run(id).changes > 0;
    } catch (error) {
      throw driverError(error, "delete", this.#config);
    }
  }

  /** Deletes many ids in one transaction; resolves to the ids that existed. */
  async deleteIds(ids: readonly string[]): Promise<string[]> {
    this.#life.check();
    if (ids.length === 0) return [];
    try {
      return this.#deleteAll.immediate(ids);
    } catch (error) {
      throw driverError(error, "deleteIds", this.#config);
    }
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const { prefix, after, limit } = options;
    if (limit <= 0) return [];
    const range = prefix === "" ? { lower: "", upper: null } : prefixRange(prefix);
    if (range === null) return [];
    const s = this.#s;
    this.#queries++;
    try {
      let rows: Row[];
      if (prefix === "") rows = s.list.all(after, limit) as Row[];
      else if (range.upper === null) rows = s.listFrom.all(range.lower, after, limit) as Row[];
      else {
        this.#queries++;
        const byTime = s.prefixPlan.get(limit, PLAN_FACTOR * limit, range.lower, range.upper) === 1;
        rows = (byTime ? s.listByTime : s.listById).all(range.lower, range.upper, after, limit) as Row[];
      }
      return rows.map(toDatum);
    } catch (error) {
      throw driverError(error, "list", this.#config);
    }
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#life.check();
    if (maxDepth <= 0) throw depthError(id, maxDepth, ADAPTER_NAME);
    this.#queries++;
    let rows: [...Row, number][];
    try {
      rows = this.#s.chain.all(id, maxDepth) as [...Row, number][];
    } catch (error) {
      throw driverError(error, "causalChain", this.#config);
    }
    // Rows come oldest first, each distinct datum once, with how often the walk met it. The walk
    // first repeats the loop member nearest the start: the newest row seen more than once.
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i] as [...Row, number];
      if (row[5] > 1) throw cycleError(id, row[0], ADAPTER_NAME);
    }
    // Same limit as core's walkCausalChain: more than maxDepth existing datums is too deep.
    if (rows.length > maxDepth) {
      throw depthError(id, maxDepth, ADAPTER_NAME);
    }
    return rows.map((row) => toDatum(row as unknown as Row));
  }

  /** Every datum in rowid order, a page at a time (deletes and puts between pages are safe). */
  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    let afterRowid = Number.MIN_SAFE_INTEGER;
    for (let more = true; more; ) {
      this.#life.check();
      const page: Datum[] = [];
      let bytes = 0;
      more = false;
      this.#queries++;
      try {
        // Read a page synchronously and release the statement before yielding, so the caller may
        // use this adapter (e.g. delete what it copied) between pages.
        for (const row of this.#s.scanPage.iterate(afterRowid) as IterableIterator<[...Row, number]>) {
          page.push(toDatum(row as unknown as Row));
          afterRowid = row[5];
          bytes += row[1].byteLength;
          if (page.length >= SCAN_PAGE_ROWS || bytes >= SCAN_PAGE_BYTES) {
            more = true;
            break;
          }
        }
      } catch (error) {
        throw driverError(error, "scan", this.#config);
      }
      yield* page;
    }
  }

  /**
   * `scan`'s datums in `scan`'s order (rowid), a page at a time, all from one read transaction
   * on a connection of its own (`openReader`): writers go on and are not seen, and this adapter
   * stays free for other calls between pages. A `:memory:` database has no second connection:
   * its pages are read as `scan` reads them, on the adapter's connection.
   */
  async *exportDatums(): AsyncIterable<readonly Datum[]> {
    this.#life.check();
    const own = this.#config.inMemory ? null : this.#sync("exportDatums", () => openReader(this.#config));
    try {
      const page = own ? own.prepare(SQL.SCAN_PAGE).raw(true) : this.#s.scanPage;
      if (own) own.prepare("BEGIN").run();
      for (let afterRowid = Number.MIN_SAFE_INTEGER, more = true; more; ) {
        this.#life.check();
        const datums: Datum[] = [];
        let bytes = 0;
        more = false;
        this.#queries++;
        try {
          for (const row of page.iterate(afterRowid) as IterableIterator<[...Row, number]>) {
            datums.push(toDatum(row as unknown as Row));
            afterRowid = row[5];
            bytes += row[1].byteLength;
            if (datums.length >= EXPORT_PAGE_ROWS || bytes >= SCAN_PAGE_BYTES) {
              more = true;
              break;
            }
          }
        } catch (error) {
          throw driverError(error, "exportDatums", this.#config);
        }
        if (datums.length > 0) yield datums;
      }
    } finally {
      own?.close();
    }
  }

  async stats(): Promise<AdapterStats> {
    this.#life.check();
    this.#queries++;
    let count: number;
    let bytes: number;
    try {
      [count, bytes] = this.#s.stats.get() as [number, number];
    } catch (error) {
      throw driverError(error, "stats", this.#config);
    }
    return {
      count,
      bytes,
      path: this.path,
      schemaVersion: this.#migration?.version ?? null,
      /** Schema versions this adapter's open applied (empty if the file was already current). */
      migrationsApplied: this.#migration?.applied ?? [],
      /** Statements executed since open, this one included. */
      queries: this.#queries,
    };
  }

  async probe(): Promise<boolean> {
    if (!this.#life.isOpen) return false;
    try {
      this.#s.probe.get();
      return true;
    } catch {
      return false;
    }
  }

  /** One page of `q` (queries.ts picks the index; README "Queries"). */
  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    return this.#sync("query", () => this.#queryOps.query(q));
  }

  /** An ids page from one index where no datum expires (queries.ts `queryIds`). */
  async queryIds(q: ResolvedQuery): Promise<IdPage> {
    return this.#sync("queryIds", () => this.#queryOps.queryIds(q));
  }

  async count(q: ResolvedQuery): Promise<number> {
    return this.#sync("count", () => this.#queryOps.count(q));
  }

  /** One statement whatever the number of ids. */
  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    return this.#sync("getMany", () => this.#queryOps.getMany(ids));
  }

  /** Every match deleted in one `BEGIN IMMEDIATE` transaction: all or nothing. */
  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    return this.#sync("deleteMany", () => this.#queryOps.deleteMany(q));
  }

  async chainTail(id: string, n: number): Promise<Datum[]> {
    return this.#sync("chainTail", () => this.#queryOps.chainTail(id, n));
  }

  /** The statement `query(q)` (`queryIds` for `select: "ids"`) would run now and SQLite's plan of it (`null`: no id can match). */
  async explainQuery(q: ResolvedQuery): Promise<QueryPlan | null> {
    return this.#sync("explainQuery", () => this.#queryOps.explain(q));
  }

  async getRef(name: string): Promise<Ref | null> {
    return this.#sync("getRef", () => this.#refs.get(name));
  }

  async listRefs(prefix: string): Promise<Ref[]> {
    return this.#sync("listRefs", () => this.#refs.list(prefix));
  }

  /**
   * The file's change table, created with its triggers on the first call (changes.ts): every
   * put, delete and ref move from then on, by any connection, is logged inside its transaction.
   * `dgent serve` streams a store whose one tier is SQLite from it. `null` on a `readonly`
   * connection to a file that has no change table (it cannot be created there).
   */
  changeTable(): ChangeTable | null {
    return this.#sync("changeTable", () => (this.#changes ??= openChangeTable(this.#db as Db, (op, body) => this.#sync(op, body), this.#config.readonly)));
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    return this.#sync("reflog", () => this.#refs.reflog(name, limit));
  }

  setRef(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    return this.#promised("setRef", () => {
      // By version: one autocommit statement; when it moved nothing, the transaction says why.
      const moved = expect !== undefined && "version" in expect ? this.#refs.casVersion(name, target, expect.version, move) : null;
      return moved ?? (this.#commitAll.immediate([{ op: "setRef", name, target, ...(expect ? { expect } : {}) }], move).results[0] as { ref: Ref }).ref;
    });
  }

  async deleteRef(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    const op: TxOp = { op: "deleteRef", name, ...(expect ? { expect } : {}) };
    return this.#sync("deleteRef", () => (this.#commitAll.immediate([op], move).results[0] as { existed: boolean }).existed);
  }

  /** Puts, deletes and ref moves in one `BEGIN IMMEDIATE` transaction: all or nothing. */
  commit(ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
    return this.#promised("commit", () => this.#commitAll.immediate(ops, move));
  }

  /** A synchronous body, after the open check, with driver errors wrapped once. */
  #sync<T>(op: string, body: () => T): T {
    this.#life.check();
    try {
      return body();
    } catch (error) {
      throw driverError(error, op, this.#config);
    }
  }

  /** `#sync` handing back a promise of its own (no async frame, one promise): for compare-and-set and commit, the hot paths. */
  #promised<T>(op: string, body: () => T): Promise<T> {
    try {
      return Promise.resolve(this.#sync(op, body));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
