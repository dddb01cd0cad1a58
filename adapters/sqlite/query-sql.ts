/**
 * The SQL of a query on the sqlite tier, built from a `ResolvedQuery` and the index that drives
 * it (its "driver"); queries.ts picks the driver and runs the statement. Everything here is pure,
 * so a test can build every driver's SQL for one query and check they agree.
 *
 * Drivers (README "Queries"):
 * - `time`: the (created_at, id) index, walked in listing order; every other filter is tested on
 *   each entry. The fallback: any query, ordered, stops after `limit` matches.
 * - `parent`: the (causal_parent, created_at, id) index: one datum's children, in order.
 * - `tag`: one `where` condition read from `tags` (key, value, created_at, id). An `in` with one
 *   value is one index range in listing order; several values are as many ranges, merged by
 *   SQLite's sorter about `limit` entries deep each; a prefix or `exists: true` is a range read
 *   whole and sorted (index only, ~0.15 µs an entry).
 * - `ids`: the id range (prefix, idRange) read from the primary-key index and sorted; each id needs
 *   its row for created_at, so it suits small ranges.
 * Conditions that are not the driver's are tested per entry, in the index where possible: the id
 * range, the time bounds and the cursor on (created_at, id); another tag's `in` by a seek into
 * `tags`'s primary key; the parent by a seek into the parent index; a tag's prefix or existence
 * on the row's metadata (`json_each`, exact keys).
 */
import { EXPIRES_AT } from "../../core/expiry.js";
import { compareIds } from "../../core/order.js";
import type { ResolvedQuery, ResolvedTagFilter } from "../../core/query.js";
import { prefixRange } from "./keys.js";

/** The id range a query allows, `[lower, upper)`; `null` ends are unbounded. */
export interface IdBounds {
  readonly lower: string | null;
  readonly upper: string | null;
}

/** The id range of `prefix`, `idRange.gte` and `idRange.lt` together, or `null` when it holds no id. */
export function idBounds(q: ResolvedQuery): IdBounds | null {
  let lower = q.idGte === "" ? null : q.idGte;
  let upper = q.idLt;
  if (q.prefix !== "") {
    const range = prefixRange(q.prefix);
    if (range === null) return null;
    if (lower === null || compareIds(range.lower, lower) > 0) lower = range.lower;
    if (range.upper !== null && (upper === null || compareIds(range.upper, upper) < 0)) upper = range.upper;
  }
  if (upper !== null && compareIds(lower ?? "", upper) >= 0) return null;
  return { lower, upper };
}

export type Driver =
  | { readonly kind: "time" }
  | { readonly kind: "parent" }
  | { readonly kind: "ids" }
  | { readonly kind: "tag"; readonly tag: number };

/** True when the driver yields entries in listing order (no sort): a page stops at `limit`. */
export function isOrdered(q: ResolvedQuery, driver: Driver): boolean {
  if (driver.kind === "tag") {
    const f = q.where[driver.tag] as ResolvedTagFilter;
    return f.op === "in" && f.values.length === 1;
  }
  return driver.kind !== "ids";
}

/**
 * True when a page through the driver stops reading once it has `limit` matches: the ordered
 * drivers, and a tag's `in` of several values — each value's range is in listing order, and
 * SQLite leaves a value's range as soon as it can no longer improve the sorted page (its
 * ORDER BY … LIMIT with IN optimisation), so it reads about `limit` entries per value.
 */
export function stopsAtLimit(q: ResolvedQuery, driver: Driver): boolean {
  return isOrdered(q, driver) || (driver.kind === "tag" && (q.where[driver.tag] as ResolvedTagFilter).op === "in");
}

/** The drivers that could answer `q` besides `time` (which always can). */
export function candidates(q: ResolvedQuery, bounds: IdBounds): Driver[] {
  const out: Driver[] = [];
  if (q.parent !== null) out.push({ kind: "parent" });
  q.where.forEach((f, tag) => {
    if (f.op !== "exists" || f.value) out.push({ kind: "tag", tag });
  });
  if (bounds.lower !== null || bounds.upper !== null) out.push({ kind: "ids" });
  return out;
}

/** A piece of SQL with its parameters, in order. */
export interface Built {
  readonly sql: string;
  readonly params: readonly unknown[];
}

interface Cond extends Built {
  /** Reads the data row `d` (not only the driver's index). */
  readonly row?: boolean;
}

const cond = (sql: string, params: readonly unknown[] = [], row = false): Cond => ({ sql, params, row });

/** The alias of the driver's table: `t` for tags, `d` for data. */
const aliasOf = (driver: Driver): "t" | "d" => (driver.kind === "tag" ? "t" : "d");

const FROM: Record<Exclude<Driver["kind"], "tag">, string> = {
  time: "data AS d INDEXED BY idx_data_created",
  parent: "data AS d INDEXED BY idx_data_children",
  ids: "data AS d INDEXED BY sqlite_autoindex_data_1",
};

/** A tag's value condition on alias `a` (an `in` of one value is an equality). */
function valueCond(a: string, f: ResolvedTagFilter): Cond | null {
  if (f.op === "in") {
    return f.values.length === 1 ? cond(`${a}.value = ?`, f.values) : cond(`${a}.value IN (SELECT value FROM json_each(?))`, [JSON.stringify(f.values)]);
  }
  if (f.op === "prefix" && f.value !== "") {
    const range = prefixRange(f.value);
    if (range === null) return cond("0");
    return range.upper === null ? cond(`${a}.value >= ?`, [range.lower]) : cond(`${a}.value >= ? AND ${a}.value < ?`, [range.lower, range.upper]);
  }
  return null;
}

/** The driver's own conditions: what selects its index range. */
function driverConds(q: ResolvedQuery, driver: Driver, bounds: IdBounds): Cond[] {
  switch (driver.kind) {
    case "parent":
      return [cond("d.causal_parent = ?", [q.parent])];
    case "tag": {
      const f = q.where[driver.tag] as ResolvedTagFilter;
      const value = valueCond("t", f);
      return value === null ? [cond("t.key = ?", [f.key])] : [cond("t.key = ?", [f.key]), value];
    }
    case "ids":
      return idConds("d", bounds);
    case "time":
      return [];
  }
}

function idConds(x: string, bounds: IdBounds): Cond[] {
  const out: Cond[] = [];
  if (bounds.lower !== null) out.push(cond(`${x}.id >= ?`, [bounds.lower]));
  if (bounds.upper !== null) out.push(cond(`${x}.id < ?`, [bounds.upper]));
  return out;
}

function timeConds(x: string, q: ResolvedQuery): Cond[] {
  const out: Cond[] = [];
  if (q.after !== null) out.push(cond(`${x}.created_at > ?`, [q.after]));
  if (q.before !== null) out.push(cond(`${x}.created_at < ?`, [q.before]));
  return out;
}

/** One tag condition tested on the entry `x` (not the driver's). */
function tagProbe(x: string, f: ResolvedTagFilter, n: number): Cond {
  const a = `t${n}`;
  if (f.op === "in") {
    const value = valueCond(a, f) as Cond;
    return cond(
      `EXISTS (SELECT 1 FROM tags AS ${a} WHERE ${a}.key = ? AND ${value.sql} AND ${a}.created_at = ${x}.created_at AND ${a}.id = ${x}.id)`,
      [f.key, ...value.params],
    );
  }
  // Prefix and existence on the row's own metadata: exact keys, no path syntax to escape.
  const j = `j${n}`;
  const value = f.op === "prefix" ? valueCond(j, f) : null;
  const exists = `EXISTS (SELECT 1 FROM json_each(d.metadata) AS ${j} WHERE ${j}.key = ?${value ? ` AND ${value.sql}` : ""})`;
  const negate = f.op === "exists" && !f.value;
  return cond(negate ? `NOT ${exists}` : exists, [f.key, ...(value?.params ?? [])], true);
}

/**
 * Every condition of `q` on the driver's entries (alias `x`), driver's first; the cursor only when
 * `paged`. Index-only conditions come before those that read the row.
 */
function allConds(q: ResolvedQuery, driver: Driver, bounds: IdBounds, paged: boolean): Cond[] {
  const x = aliasOf(driver);
  const out = driverConds(q, driver, bounds);
  if (driver.kind !== "ids") out.push(...idConds(x, bounds));
  out.push(...timeConds(x, q));
  if (paged) out.push(...cursorCond(x, q));
  if (q.parent !== null && driver.kind !== "parent") {
    out.push(
      cond(
        `EXISTS (SELECT 1 FROM data AS dp INDEXED BY idx_data_children WHERE dp.causal_parent = ? AND dp.created_at = ${x}.created_at AND dp.id = ${x}.id)`,
        [q.parent],
      ),
    );
  }
  const probes = q.where.flatMap((f, n) => (driver.kind === "tag" && driver.tag === n ? [] : [tagProbe(x, f, n)]));
  out.push(...probes.filter((c) => !c.row), ...probes.filter((c) => c.row));
  return out;
}

function where(conds: readonly Cond[]): string {
  return conds.length === 0 ? "" : ` WHERE ${conds.map((c) => c.sql).join(" AND ")}`;
}

const params = (conds: readonly Cond[]): unknown[] => conds.flatMap((c) => c.params);

/** The driver's FROM clause; a tag driver joins the data row when a condition (or `join`) reads it. */
function fromOf(driver: Driver, join: boolean): string {
  if (driver.kind !== "tag") return FROM[driver.kind];
  return join ? "tags AS t CROSS JOIN data AS d ON d.id = t.id" : "tags AS t";
}

export const FULL_COLUMNS = ["id", "content", "created_at", "causal_parent", "metadata"] as const;
export const HEADER_COLUMNS = ["id", "created_at", "causal_parent", "metadata"] as const;

const columns = (a: string, select: ResolvedQuery["select"]): string =>
  (select === "full" ? FULL_COLUMNS : HEADER_COLUMNS).map((c) => `${a}.${c}`).join(", ");

/** The columns of an ids page: id, created_at and the datum's expiry tag (or NULL). */
export const ID_COLUMNS = ["id", "created_at", "expires_at"] as const;

/**
 * The expiry tag of the datum whose id is `id` (an SQL expression), for an ids page: NULL without
 * a row read while no datum of the namespace has the tag — the uncorrelated probe of `tags` runs
 * once per statement (one index seek) — else read from the datum's metadata.
 */
const expiryOf = (id: string): string =>
  `CASE WHEN (SELECT 1 FROM tags WHERE key = '${EXPIRES_AT}' LIMIT 1) IS NULL THEN NULL` +
  ` ELSE (SELECT json_extract(e.metadata, '$."${EXPIRES_AT}"') FROM data AS e WHERE e.id = ${id}) END`;

/**
 * (id) → the created_at of the datum `id` (an ids page's last, for its cursor; NULL when there is
 * none), or the text `'expiring'` when any datum of the namespace carries the expiry tag (one seek
 * into `tags`, which then spares the seek into `data`): an ids page's second statement, in pluck
 * mode (one value, no row array).
 */
export const LAST_OF_PAGE =
  `SELECT CASE WHEN (SELECT 1 FROM tags WHERE key = '${EXPIRES_AT}' LIMIT 1) IS NULL` +
  ` THEN (SELECT created_at FROM data WHERE id = ?) ELSE 'expiring' END`;

/**
 * One page of `q` through `driver`: rows of `FULL_COLUMNS` for `select: "full"`, of
 * `HEADER_COLUMNS` for `"meta"` (the content column is never read), of `ID_COLUMNS` for `"ids"`
 * (the driver's index alone, as long as the filters need no row and no datum expires). An ordered
 * driver walks its index and joins each match's row; an unordered one sorts (created_at, id) of
 * its range, cuts it to the page, and only then reads the page's rows.
 */
export function pageSql(q: ResolvedQuery, bounds: IdBounds, driver: Driver): Built {
  const conds = allConds(q, driver, bounds, true);
  const dir = q.order === "newest" ? "DESC" : "ASC";
  if (q.select === "ids") {
    const x = aliasOf(driver);
    const page = `SELECT ${x}.id AS id, ${x}.created_at AS c FROM ${fromOf(driver, conds.some((c) => c.row))}${where(conds)} ORDER BY c ${dir}, id ${dir} LIMIT ?`;
    // The expiry after the cut: an unordered driver's range is sorted first, and only the page's rows are probed.
    const sql = isOrdered(q, driver)
      ? `SELECT ${x}.id, ${x}.created_at, ${expiryOf(`${x}.id`)} FROM ${fromOf(driver, conds.some((c) => c.row))}${where(conds)} ORDER BY ${x}.created_at ${dir}, ${x}.id ${dir} LIMIT ?`
      : `SELECT p.id, p.c, ${expiryOf("p.id")} FROM (${page}) AS p ORDER BY p.c ${dir}, p.id ${dir}`;
    return { sql, params: [...params(conds), q.limit] };
  }
  if (isOrdered(q, driver)) {
    const x = aliasOf(driver);
    const sql = `SELECT ${columns("d", q.select)} FROM ${fromOf(driver, true)}${where(conds)} ORDER BY ${x}.created_at ${dir}, ${x}.id ${dir} LIMIT ?`;
    return { sql, params: [...params(conds), q.limit] };
  }
  const x = aliasOf(driver);
  const byRowid = driver.kind !== "tag";
  const inner =
    `SELECT ${byRowid ? "d.rowid AS r, " : ""}${x}.created_at AS c, ${x}.id AS id FROM ${fromOf(driver, conds.some((c) => c.row))}` +
    `${where(conds)} ORDER BY c ${dir}, id ${dir} LIMIT ?`;
  const sql =
    `SELECT ${columns("o", q.select)} FROM (${inner}) AS p CROSS JOIN data AS o ON ${byRowid ? "o.rowid = p.r" : "o.id = p.id"}` +
    ` ORDER BY p.c ${dir}, p.id ${dir}`;
  return { sql, params: [...params(conds), q.limit] };
}

/**
 * The first item of a one-tag-equality page (`limit` 1, no other filter but the cursor), as
 * `pageSql` would return it: the id from the tag's index range in a scalar subquery, then that one
 * row by the primary key — SQLite runs this several times faster than the join of `pageSql`, which
 * sets up a walk for more rows. Parameters: key, value, then the cursor's created_at and id.
 */
export function firstOfTagSql(q: ResolvedQuery): string {
  const dir = q.order === "newest" ? "DESC" : "ASC";
  const cursor = q.cursor === null ? "" : ` AND (t.created_at, t.id) ${q.order === "newest" ? "<" : ">"} (?, ?)`;
  return (
    `SELECT ${columns("d", q.select)} FROM data AS d WHERE d.id = ` +
    `(SELECT t.id FROM tags AS t WHERE t.key = ? AND t.value = ?${cursor} ORDER BY t.created_at ${dir}, t.id ${dir} LIMIT 1)`
  );
}

/**
 * The ids of one page of `q` through `driver` (first column), read from the driver's index alone
 * when no condition needs the row: `queryIds`, in a namespace where no datum expires.
 */
export function idsSql(q: ResolvedQuery, bounds: IdBounds, driver: Driver): Built {
  const conds = allConds(q, driver, bounds, true);
  const dir = q.order === "newest" ? "DESC" : "ASC";
  const x = aliasOf(driver);
  const sql = `SELECT ${x}.id FROM ${fromOf(driver, conds.some((c) => c.row))}${where(conds)} ORDER BY ${x}.created_at ${dir}, ${x}.id ${dir} LIMIT ?`;
  return { sql, params: [...params(conds), q.limit] };
}

/** A tag key that may be written into SQL as a literal: letters, digits and `_ . : -`, up to 64. */
const PLAIN_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

export const isPlainKey = (key: string): boolean => PLAIN_KEY.test(key);

/**
 * `idsSql` of a page through one tag equality and nothing else but the cursor, with the tag's key
 * written into the statement as the raw baseline writes it (one parameter fewer to bind per call),
 * or `null` when the key is not plain (`PLAIN_KEY`; `idsSql` then). Parameters: the value, the
 * cursor's created_at and id (with a cursor), the limit.
 */
export function keyedIdsSql(q: ResolvedQuery): string | null {
  const f = q.where[0];
  if (f === undefined || !isPlainKey(f.key)) return null;
  const dir = q.order === "newest" ? "DESC" : "ASC";
  const cursor = q.cursor === null ? "" : ` AND (t.created_at, t.id) ${q.order === "newest" ? "<" : ">"} (?, ?)`;
  return `SELECT t.id FROM tags AS t WHERE t.key = '${f.key}' AND t.value = ?${cursor} ORDER BY t.created_at ${dir}, t.id ${dir} LIMIT ?`;
}

/** Every match of `q`'s filters through `driver` (cursor, order and limit aside): their ids, or their count. */
export function setSql(q: ResolvedQuery, bounds: IdBounds, driver: Driver, what: "ids" | "count"): Built {
  const conds = allConds(q, driver, bounds, false);
  const head = what === "count" ? "count(*)" : `${aliasOf(driver)}.id`;
  return { sql: `SELECT ${head} FROM ${fromOf(driver, conds.some((c) => c.row))}${where(conds)}`, params: params(conds) };
}

/**
 * How many entries the driver's own index range holds, counting no further than a cap (the last
 * parameter): what choosing a driver costs, index only. The time bounds narrow the ordered
 * drivers' ranges (created_at follows their equality columns in the index).
 */
export function sizeSql(q: ResolvedQuery, bounds: IdBounds, driver: Driver): Built {
  const conds = driverConds(q, driver, bounds);
  if (driver.kind !== "ids" && stopsAtLimit(q, driver)) conds.push(...timeConds(aliasOf(driver), q));
  return { sql: `SELECT count(*) FROM (SELECT 1 FROM ${fromOf(driver, false)}${where(conds)} LIMIT ?)`, params: params(conds) };
}

function cursorCond(x: string, q: ResolvedQuery): Cond[] {
  return q.cursor === null ? [] : [cond(`(${x}.created_at, ${x}.id) ${q.order === "newest" ? "<" : ">"} (?, ?)`, [q.cursor.createdAt, q.cursor.id])];
}

/**
 * (…, offset) → the created_at where a page's walk of the time index would be after `offset`
 * entries (from the cursor, within the time bounds), or nothing when there are fewer: the far end
 * of the window in which `densitySql` compares indexes that stop at the limit.
 */
export function windowSql(q: ResolvedQuery): Built {
  const conds = [...timeConds("d", q), ...cursorCond("d", q)];
  const dir = q.order === "newest" ? "DESC" : "ASC";
  return { sql: `SELECT d.created_at FROM ${FROM.time}${where(conds)} ORDER BY d.created_at ${dir}, d.id ${dir} LIMIT 1 OFFSET ?`, params: params(conds) };
}

/**
 * (…, edge, cap) → how many of the driver's entries fall in the window the page's walk starts
 * with (from the cursor to `edge`, inclusive), counting no further than `cap`: how densely the
 * driver holds the newest (or oldest) datums, which is what walking it costs per match.
 */
export function densitySql(q: ResolvedQuery, bounds: IdBounds, driver: Driver): Built {
  const x = aliasOf(driver);
  const conds = [...driverConds(q, driver, bounds), ...timeConds(x, q), ...cursorCond(x, q), cond(`${x}.created_at ${q.order === "newest" ? ">=" : "<="} ?`)];
  return { sql: `SELECT count(*) FROM (SELECT 1 FROM ${fromOf(driver, false)}${where(conds)} LIMIT ?)`, params: params(conds) };
}
