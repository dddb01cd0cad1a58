/**
 * Native queries on the sqlite tier: `query`, `count`, `getMany`, `deleteMany` and `chainTail`
 * (core/protocol.ts), with the semantics of core/query.ts `matchesQuery` / `compareInOrder`. The
 * SQL comes from query-sql.ts; this file picks the index that drives each query, keeps the
 * statements prepared, and maps rows to datums.
 */
import type BetterSqlite3 from "better-sqlite3";
import { cycleError } from "../../core/causal.js";
import type { Datum } from "../../core/datum.js";
import { EXPIRES_AT } from "../../core/expiry.js";
import { idPageOf, type DatumHeader, type IdPage, type ResolvedQuery, type ResolvedTagFilter } from "../../core/query.js";
import type { Db } from "./connection.js";
import { ADAPTER_NAME } from "./options.js";
import { LAST_OF_PAGE, candidates, densitySql, firstOfTagSql, idBounds, idsSql, isPlainKey, keyedIdsSql, pageSql, setSql, sizeSql, stopsAtLimit, windowSql, type Built, type Driver, type IdBounds } from "./query-sql.js";
import * as SQL from "./sql.js";

type FullRow = [string, Buffer, number, string | null, string | null];
type HeaderRow = [string, number, string | null, string | null];
type IdRow = [string, number, string | null];

const parseMetadata = (text: string | null): Record<string, string> => (text === null ? {} : (JSON.parse(text) as Record<string, string>));

export function toDatum(row: FullRow): Datum {
  return { id: row[0], content: row[1], createdAt: row[2], causalParent: row[3], metadata: parseMetadata(row[4]) };
}

function toHeader(row: HeaderRow): DatumHeader {
  return { id: row[0], createdAt: row[1], causalParent: row[2], metadata: parseMetadata(row[3]) };
}

/** An ids page's row as `idEntryOf` (core/query.ts): id, created_at, the expiry tag or null. */
function toIdEntry(row: IdRow): DatumHeader {
  return { id: row[0], createdAt: row[1], causalParent: null, metadata: row[2] === null ? {} : { [EXPIRES_AT]: row[2] } };
}

/** The id range of a query with no prefix and no id range (`isSimple`). */
const NO_BOUNDS: IdBounds = Object.freeze({ lower: null, upper: null });

/** One tag equality and nothing else but the cursor: its page's driver is that tag's index range. */
function isSimple(q: ResolvedQuery): boolean {
  const f = q.where[0];
  return (
    q.where.length === 1 && f !== undefined && f.op === "in" && f.values.length === 1 &&
    q.prefix === "" && q.idGte === null && q.idLt === null && q.parent === null && q.after === null && q.before === null
  );
}

/**
 * What reading one entry of a driver's range costs, in µs (measured at 1M datums, README
 * "Queries"): the time index, `tags` and the parent index are read from the index alone; an id
 * range needs each id's row (for created_at).
 */
const ENTRY_US = { time: 0.08, tag: 0.15, parent: 0.15, ids: 2.5 } as const;
/**
 * Where reading an unordered range whole (and sorting it) stops paying against walking an ordered
 * index until the page is full: about sqrt(F · limit · rows) entries, F the cost ratio of an entry
 * walked (with the range's condition tested on it) to an entry read. For an id range the test is
 * in the walked index (F = 0.08 / 2.5); for a tag's prefix or existence it reads the row's
 * metadata (~0.6 µs, F ≈ 4).
 */
const RANGE_FACTOR = { ids: 0.032, tag: 4 } as const;
/** An index range that stops at the page's limit counts as small below this many pages of entries. */
const SMALL_PAGES = 4;
/** The window of the time index in which walkers' densities are compared, in pages. */
const DENSITY_PAGES = 8;

/**
 * A driver chosen for some filters is reused this many times (the pages of one listing), unless
 * the table's row count has moved by more than 1/16 meanwhile.
 */
const PLAN_REUSES = 64;
/** Most tag keys with statements of their own for a one-tag-equality ids page (`keyedIdsSql`). */
const KEYED_STATEMENTS = 64;
/** Most prepared statements (and plans) kept; others are made again when next used. */
const STATEMENT_CACHE = 256;
/** The cap of a driver's size estimate for `count` and `deleteMany`, which read their whole set. */
const SET_ESTIMATE_CAP = 4096;

/** A page's statement and the plan SQLite makes of it. */
export interface QueryPlan extends Built {
  readonly plan: readonly string[];
}

export interface QueryCounter {
  /** Adds statements executed (the adapter's `stats().queries`). */
  (n: number): void;
}

/** The query operations over one connection. Every method runs synchronously in the caller's turn. */
export class SqliteQueries {
  readonly #db: Db;
  readonly #count: QueryCounter;
  /** Prepared statements by SQL text, one map per mode. */
  readonly #statements = { raw: new Map<string, BetterSqlite3.Statement>(), pluck: new Map<string, BetterSqlite3.Statement>() };
  /** Recent choices of driver by filters, with the row count they were made at. */
  readonly #plans = new Map<string, { readonly driver: Driver; readonly rows: number; uses: number }>();
  readonly #chainTail: BetterSqlite3.Statement;
  readonly #getMany: BetterSqlite3.Statement;
  readonly #maxRowid: BetterSqlite3.Statement;
  readonly #deleteAll: { immediate(q: ResolvedQuery, bounds: IdBounds, driver: Driver): string[] };
  /** `LAST_OF_PAGE`: the cursor's created_at of an ids page, or that some datum expires. */
  readonly #lastOfPage: BetterSqlite3.Statement;
  /**
   * `#pageIds`'s statements of a one-tag-equality page by the tag's key (`keyedIdsSql`; `""`: any
   * other key, `idsSql`): [newest, newest past a cursor, oldest, oldest past a cursor].
   */
  readonly #simpleIds = new Map<string, Array<BetterSqlite3.Statement | undefined>>();
  /** `query`'s statements of a one-tag-equality page: [newest, newest past a cursor, oldest, oldest past a cursor], full then meta, then the same of a one-item page. */
  readonly #simplePages: Array<BetterSqlite3.Statement | undefined> = [];
  /** `idPage` in one read transaction: its statements see one snapshot. */
  readonly #idPage: (q: ResolvedQuery, bounds: IdBounds) => IdPage;

  constructor(db: Db, count: QueryCounter) {
    this.#db = db;
    this.#count = count;
    this.#chainTail = db.prepare(SQL.CHAIN_TAIL).raw(true);
    this.#getMany = db.prepare(SQL.GET_MANY).raw(true);
    this.#maxRowid = db.prepare(SQL.MAX_ROWID).pluck(true);
    this.#lastOfPage = db.prepare(LAST_OF_PAGE).pluck(true);
    this.#idPage = db.transaction((q: ResolvedQuery, bounds: IdBounds) => this.#ids(q, bounds));
    this.#deleteAll = db.transaction((q: ResolvedQuery, bounds: IdBounds, driver: Driver) => {
      const select = setSql(q, bounds, driver, "ids");
      this.#count(1);
      return this.#statement(`DELETE FROM data WHERE id IN (${select.sql}) RETURNING id`, "pluck").all(...select.params) as string[];
    });
  }

  /** A prepared statement of `sql` in raw (array rows) or pluck (first column) mode, from the cache. */
  #statement(sql: string, mode: "raw" | "pluck"): BetterSqlite3.Statement {
    const cache = this.#statements[mode];
    let s = cache.get(sql);
    if (s === undefined) {
      s = mode === "raw" ? this.#db.prepare(sql).raw(true) : this.#db.prepare(sql).pluck(true);
      if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value as string);
      cache.set(sql, s);
    }
    return s;
  }

  #run(built: Built, mode: "raw" | "pluck"): unknown[] {
    this.#count(1);
    return this.#statement(built.sql, mode).all(...built.params);
  }

  /**
   * The driver of `q`. Candidates are the indexes its filters select: the parent's, a tag
   * condition's, the id range. `count` and `deleteMany` read their whole set: one statement counts
   * each candidate's range up to a cap, and the smallest wins. A page prefers an index that stops
   * at `limit` (the parent's, a tag's `in`: a "walker") over the time index:
   * 1. When there is a range that would be read whole and sorted (an id range, a tag's prefix or
   *    existence), or walkers to weigh, one statement counts each candidate up to a cap (index
   *    only). A range under its cap is cheap to read whole; the cheapest such wins.
   * 2. Otherwise one walker walks; of several, the one holding the fewest entries among the next
   *    `DENSITY_PAGES` pages of the time index (the walk costs entries per match, and the densest
   *    index near the page's start costs the most); with no walker, the time index.
   * A choice that needed counting is remembered for the same filters (`PLAN_REUSES`).
   */
  plan(q: ResolvedQuery, bounds: IdBounds, paged: boolean): Driver {
    const found = candidates(q, bounds);
    if (found.length === 0) return { kind: "time" };
    if (found.length === 1 && (!paged || stopsAtLimit(q, found[0] as Driver))) return found[0] as Driver;
    // Choosing costs statements: reuse a recent choice for the same filters (pages of one listing).
    const key = JSON.stringify([paged, q.order, q.limit, bounds, q.where, q.parent, q.after, q.before]);
    const rows = this.#rows();
    const known = this.#plans.get(key);
    if (known !== undefined && known.uses < PLAN_REUSES && Math.abs(rows - known.rows) * 16 <= known.rows) {
      known.uses++;
      return known.driver;
    }
    const driver = this.#choose(q, bounds, paged, found, rows);
    if (this.#plans.size >= STATEMENT_CACHE) this.#plans.delete(this.#plans.keys().next().value as string);
    this.#plans.set(key, { driver, rows, uses: 1 });
    return driver;
  }

  #choose(q: ResolvedQuery, bounds: IdBounds, paged: boolean, found: Driver[], rows: number): Driver {
    const time: Driver = { kind: "time" };
    const walkers = found.filter((d) => stopsAtLimit(q, d));
    if (!paged) return this.#smallest(q, bounds, found, found.map(() => SET_ESTIMATE_CAP)) ?? found.reduce((a, b) => (ENTRY_US[b.kind] < ENTRY_US[a.kind] ? b : a));
    if (walkers.length < found.length) {
      // A time window is the time index's own range: weigh it when no walker narrows it.
      if ((q.after !== null || q.before !== null) && walkers.length === 0) found.push(time);
      const caps = found.map((d) =>
        stopsAtLimit(q, d) ? Math.max(64, SMALL_PAGES * q.limit) : Math.max(q.limit, Math.ceil(Math.sqrt(RANGE_FACTOR[d.kind as "ids" | "tag"] * q.limit * rows))),
      );
      const small = this.#smallest(q, bounds, found, caps);
      if (small !== null) return small;
    }
    if (walkers.length <= 1) return walkers[0] ?? time;
    return this.#sparsest(q, bounds, walkers);
  }

  /** The candidate whose range is under its cap and cheapest to read whole, or `null`. */
  #smallest(q: ResolvedQuery, bounds: IdBounds, drivers: readonly Driver[], caps: readonly number[]): Driver | null {
    const parts = drivers.map((d) => sizeSql(q, bounds, d));
    const sizes = this.#counts(parts, caps);
    let best: Driver | null = null;
    let bestCost = Infinity;
    for (let i = 0; i < drivers.length; i++) {
      const d = drivers[i] as Driver;
      const size = sizes[i] as number;
      const cost = size * ENTRY_US[d.kind];
      if (size < (caps[i] as number) && cost < bestCost) {
        best = d;
        bestCost = cost;
      }
    }
    return best;
  }

  /** Of several walkers, the one with the fewest entries in the window the page's walk starts in. */
  #sparsest(q: ResolvedQuery, bounds: IdBounds, walkers: readonly Driver[]): Driver {
    const span = DENSITY_PAGES * q.limit;
    const window = windowSql(q);
    this.#count(1);
    const edge = this.#statement(window.sql, "pluck").get(...window.params, span - 1) as number | undefined;
    if (edge === undefined) return walkers[0] as Driver; // the whole walk is shorter than the window
    const parts = walkers.map((d) => densitySql(q, bounds, d));
    const counts = this.#counts(
      parts.map((p) => ({ sql: p.sql, params: [...p.params, edge] })),
      walkers.map(() => span),
    );
    let best = 0;
    for (let i = 1; i < walkers.length; i++) if ((counts[i] as number) < (counts[best] as number)) best = i;
    return walkers[best] as Driver;
  }

  #rows(): number {
    this.#count(1);
    return this.#maxRowid.get() as number;
  }

  /** Several capped counts (each statement's last parameter is its cap) in one statement. */
  #counts(parts: readonly Built[], caps: readonly number[]): number[] {
    const sql = `SELECT ${parts.map((p) => `(${p.sql})`).join(", ")}`;
    const args = parts.flatMap((p, i) => [...p.params, caps[i]]);
    this.#count(1);
    return this.#statement(sql, "raw").get(...args) as number[];
  }

  query(q: ResolvedQuery): Datum[] | DatumHeader[] {
    if (q.limit <= 0) return [];
    const rows = q.select !== "ids" && isSimple(q) ? this.#simplePage(q) : this.#page(q);
    if (q.select === "ids") return (rows as IdRow[]).map(toIdEntry);
    return q.select === "full" ? (rows as FullRow[]).map(toDatum) : (rows as HeaderRow[]).map(toHeader);
  }

  #page(q: ResolvedQuery): unknown[] {
    const bounds = idBounds(q);
    if (bounds === null) return [];
    return this.#run(pageSql(q, bounds, this.plan(q, bounds, true)), "raw");
  }

  /**
   * A page of datums (or headers) through one tag equality and nothing else: the tag's index range
   * (the driver `plan` picks for it without a statement), one statement per (order, cursor or not,
   * projection) kept here with its parameters laid out directly, so the page builds no SQL.
   */
  #simplePage(q: ResolvedQuery): unknown[] {
    this.#count(1);
    const f = q.where[0] as Extract<ResolvedTagFilter, { op: "in" }>;
    const c = q.cursor;
    const first = q.limit === 1;
    const at = (first ? 8 : 0) + (q.select === "full" ? 0 : 4) + (q.order === "newest" ? 0 : 2) + (c === null ? 0 : 1);
    let s = this.#simplePages[at];
    if (s === undefined) {
      s = this.#statement(first ? firstOfTagSql(q) : pageSql(q, NO_BOUNDS, { kind: "tag", tag: 0 }).sql, "raw");
      this.#simplePages[at] = s;
    }
    const value = f.values[0] as string;
    if (first) return c === null ? s.all(f.key, value) : s.all(f.key, value, c.createdAt, c.id);
    return c === null ? s.all(f.key, value, q.limit) : s.all(f.key, value, c.createdAt, c.id, q.limit);
  }

  /**
   * An ids page: the ids alone from the driver's index (pluck mode: no row arrays), then one
   * statement for the created_at of the last (its cursor) and whether any datum of the namespace
   * carries the expiry tag; both in one read transaction. When one does, the page of `query`
   * instead (its rows give each id's tag).
   */
  queryIds(q: ResolvedQuery): IdPage {
    if (q.limit <= 0) return { ids: [], last: null, expiresAt: null };
    const bounds = isSimple(q) ? NO_BOUNDS : idBounds(q);
    if (bounds === null) return { ids: [], last: null, expiresAt: null };
    return this.#idPage(q, bounds);
  }

  /**
   * The ids of the page. A page through one tag equality and nothing else (no id range, time
   * bounds or parent) has one statement per (order, cursor or not) — the tag's index range, the
   * driver `plan` picks for it without a statement — kept here with its parameters laid out
   * directly, so the page builds no SQL; any other query builds `idsSql`.
   */
  #pageIds(q: ResolvedQuery, bounds: IdBounds): string[] {
    this.#count(1);
    if (bounds !== NO_BOUNDS) {
      const built = idsSql(q, bounds, this.plan(q, bounds, true));
      return this.#statement(built.sql, "pluck").all(...built.params) as string[];
    }
    const f = q.where[0] as Extract<ResolvedTagFilter, { op: "in" }>;
    const c = q.cursor;
    const at = (q.order === "newest" ? 0 : 2) + (c === null ? 0 : 1);
    const value = f.values[0] as string;
    let byKey = this.#simpleIds.get(f.key);
    const keyed = byKey !== undefined || isPlainKey(f.key);
    if (byKey === undefined) {
      const name = keyed ? f.key : "";
      byKey = this.#simpleIds.get(name);
      if (byKey === undefined) {
        if (this.#simpleIds.size >= KEYED_STATEMENTS) this.#simpleIds.clear();
        this.#simpleIds.set(name, (byKey = []));
      }
    }
    const s = (byKey[at] ??= this.#statement(keyed ? (keyedIdsSql(q) as string) : idsSql(q, bounds, { kind: "tag", tag: 0 }).sql, "pluck"));
    if (keyed) return (c === null ? s.all(value, q.limit) : s.all(value, c.createdAt, c.id, q.limit)) as string[];
    return (c === null ? s.all(f.key, value, q.limit) : s.all(f.key, value, c.createdAt, c.id, q.limit)) as string[];
  }

  #ids(q: ResolvedQuery, bounds: IdBounds): IdPage {
    const ids = this.#pageIds(q, bounds);
    const last = ids.at(-1);
    // An empty page has no id to hide and no cursor: no second statement.
    if (last === undefined) return { ids, last: null, expiresAt: null };
    this.#count(1);
    const createdAt = this.#lastOfPage.get(last) as number | "expiring";
    if (createdAt === "expiring") return idPageOf(this.query(q));
    return { ids, last: { createdAt, id: last }, expiresAt: null };
  }

  count(q: ResolvedQuery): number {
    const bounds = idBounds(q);
    if (bounds === null) return 0;
    return this.#run(setSql(q, bounds, this.plan(q, bounds, false), "count"), "pluck")[0] as number;
  }

  /** Deletes every match in one `BEGIN IMMEDIATE` transaction (one statement); the deleted ids. */
  deleteMany(q: ResolvedQuery): string[] {
    const bounds = idBounds(q);
    if (bounds === null) return [];
    return this.#deleteAll.immediate(q, bounds, this.plan(q, bounds, false));
  }

  /** One statement for any number of ids (a JSON array through `json_each`). */
  getMany(ids: readonly string[]): Array<Datum | null> {
    if (ids.length === 0) return [];
    this.#count(1);
    const byId = new Map<string, Datum>();
    for (const row of this.#getMany.all(JSON.stringify(ids)) as FullRow[]) byId.set(row[0], toDatum(row));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** The last `n` steps, oldest first: the walk stops at depth n − 1, so no depth limit applies. */
  chainTail(id: string, n: number): Datum[] {
    if (n <= 0) return [];
    this.#count(1);
    const rows = this.#chainTail.all(id, n) as [...FullRow, number][];
    // As causalChain: the walk first repeats the loop member nearest the start (the newest row met twice).
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i] as [...FullRow, number];
      if (row[5] > 1) throw cycleError(id, row[0], ADAPTER_NAME);
    }
    return rows.map((row) => toDatum(row as unknown as FullRow));
  }

  /**
   * The statement `query(q)` would run now — for `select: "ids"`, the ids statement of `queryIds`
   * — and its `EXPLAIN QUERY PLAN` (tests, diagnosis, the raw comparison).
   */
  explain(q: ResolvedQuery): QueryPlan | null {
    const bounds = idBounds(q);
    if (bounds === null) return null;
    const f = q.where[0] as Extract<ResolvedTagFilter, { op: "in" }>;
    const first = q.select !== "ids" && q.limit === 1 && isSimple(q);
    const keyed = q.select === "ids" && isSimple(q) ? keyedIdsSql(q) : null;
    const cursor = q.cursor === null ? [] : [q.cursor.createdAt, q.cursor.id];
    const { sql, params } = first
      ? { sql: firstOfTagSql(q), params: [f.key, f.values[0], ...cursor] }
      : keyed !== null
        ? { sql: keyed, params: [f.values[0], ...cursor, q.limit] }
        : (q.select === "ids" ? idsSql : pageSql)(q, bounds, this.plan(q, bounds, true));
    const plan = (this.#db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
    return { sql, params, plan };
  }
}
