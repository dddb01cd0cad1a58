/**
 * Native queries on the Postgres tiers (core/QUERIES.md): `query`, `count`, `getMany`,
 * `deleteMany` and `chainTail`, with the semantics of core/query.ts (`matchesQuery`,
 * `compareInOrder`) — README.md explains the schema and the plans.
 *
 * A query is one statement built from its filters:
 * - Tag equality (`eq`, a one-value `in`) joins the tags table (migration 4) on (key, value): its
 *   index holds each tag's datums in (created_at, id) order, so a page of a filtered listing reads
 *   `limit` index entries in either order, whatever the namespace's size. Position conditions
 *   (cursor, after, before, id bounds) are index conditions on the relation the page is ordered by.
 * - Without an equality, an `in` of several values is one such ordered scan per value (a
 *   `UNION ALL` of branches, or `unnest` + `LATERAL` past 16 values), merged; when the tags
 *   answer every filter the branches read keys only and the page fetches its datums once.
 * - Tag prefix and existence, and what the tags table cannot answer exactly (a key of 64 or more
 *   characters, a value of 256 or more: the tags table holds them cut), are checked on the
 *   `metadata` column, the truth.
 * - Without tags, the planner walks the time index, the id index (prefix, id range) or the
 *   children index (parent), all in keyset order.
 * Statements with filters are sent unnamed: Postgres plans each with its values (a tag's own
 * statistics), and no connection accumulates one prepared statement per filter shape — except
 * pages whose plan does not depend on the values (`named`), prepared once per connection and not
 * planned per page: a page through one tag equality that the tags answer alone (the index range
 * in order), and a page through two to four exact tag equalities (`multiTagPageSql`: the rarest
 * tag's range, picked when the statement runs, with the others probed by their full key).
 */
import type pg from "pg";
import { cycleError } from "../../core/causal.js";
import type { Datum } from "../../core/datum.js";
import type { DgentError } from "../../core/errors.js";
import { EXPIRES_AT } from "../../core/expiry.js";
import { idPageOf, prefixUpperBound, type DatumHeader, type IdPage, type ResolvedQuery, type ResolvedTagFilter } from "../../core/query.js";
import { COLUMNS, toDatum, toHeader, type Row } from "./rows.js";
import { statement, type Identifiers, type Statement } from "./sql.js";

/** Migration 4 keeps tag keys and values cut to this many characters in the tags table. */
export const TAG_KEY_CHARS = 64;
export const TAG_VALUE_CHARS = 256;
/** At most this many tag equalities become joins (the rest are checked on `metadata`). */
const MAX_TAG_JOINS = 4;
/** An `in` of at most this many values (and no equality) is one branch per value. */
const MAX_BRANCHES = 16;

const HEADER_COLUMNS = "d.id, d.created_at, d.causal_parent, d.metadata";
const FULL_COLUMNS = "d.id, d.content, d.created_at, d.causal_parent, d.metadata";

/** A statement's text and values. */
export interface Sql {
  readonly text: string;
  readonly values: unknown[];
  /** Set on a statement whose plan does not depend on its values: sent as a named (prepared) statement. */
  readonly name?: string;
}

/** Names of fixed-plan page statements by text (a bounded cache: the shapes are few). */
const NAMES = new Map<string, string>();
const MAX_NAMES = 256;

/**
 * A page through one tag equality answered by the tags alone, read in index order and stopped at
 * its limit: the best plan whatever the value, so Postgres may keep a generic one. Such statements
 * are prepared once per connection (no parse and plan per page); the others stay unnamed.
 */
function named(sql: Sql): Sql {
  let name = NAMES.get(sql.text);
  if (name === undefined) {
    if (NAMES.size >= MAX_NAMES) return sql;
    name = statement(sql.text).name;
    NAMES.set(sql.text, name);
  }
  return { ...sql, name };
}

function chars(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Postgres text cannot hold U+0000: a value with it matches no stored datum. */
const sendable = (s: string) => !s.includes("\u0000");

type InFilter = Extract<ResolvedTagFilter, { op: "in" }>;

class Params {
  readonly values: unknown[] = [];
  add(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/** The `FROM … WHERE …` of a query's filters, split by what each part needs. */
interface Shape {
  /** Tags relations (`"schema"."t_tags" t1`, …); empty without a tag join. */
  readonly tags: string[];
  /** Conditions on the tags relations alone. */
  readonly onTags: string[];
  /** Conditions that need the datum row (`d`): metadata checks, parent; position when no tags. */
  readonly onDatum: string[];
  /** Conditions on `d` the tags relations already imply (id bounds), for the planner's choice. */
  readonly hints: string[];
  /** An `in` of several values scanned per value: `LATERAL`, with `v.value` bound in `onTags`. */
  readonly lateral: string | null;
  /** The relation whose (created_at, id) a page is ordered by: the first tags join, else `d`. */
  readonly orderBy: string;
}

/** The position conditions of `q` on a relation alias: id bounds, and time bounds with the cursor (`cursor`: pages only). */
function positions(q: ResolvedQuery, p: Params, cursor: boolean): { idBounds: Array<(a: string) => string>; bounds: Array<(a: string) => string> } {
  const idBounds: Array<(a: string) => string> = [];
  const bounds: Array<(a: string) => string> = [];
  if (q.prefix !== "") {
    const lower = p.add(q.prefix, "text");
    idBounds.push((a) => `${a}.id >= ${lower}`);
    const upper = prefixUpperBound(q.prefix);
    if (upper !== null) {
      const u = p.add(upper, "text");
      idBounds.push((a) => `${a}.id < ${u}`);
    }
  }
  if (q.idGte !== null) {
    const g = p.add(q.idGte, "text");
    idBounds.push((a) => `${a}.id >= ${g}`);
  }
  if (q.idLt !== null) {
    const l = p.add(q.idLt, "text");
    idBounds.push((a) => `${a}.id < ${l}`);
  }
  if (q.after !== null) {
    const after = p.add(q.after, "float8");
    bounds.push((a) => `${a}.created_at > ${after}`);
  }
  if (q.before !== null) {
    const before = p.add(q.before, "float8");
    bounds.push((a) => `${a}.created_at < ${before}`);
  }
  if (cursor && q.cursor !== null) {
    // Beyond the cursor in `q.order`. An id holding U+0000 (only a forged cursor has one) is
    // cut there: no stored id holds it, so `id < "ab\0x"` is `id <= "ab"` and `id > "ab\0x"` is `id > "ab"`.
    const cut = q.cursor.id.indexOf("\u0000");
    const id = p.add(cut < 0 ? q.cursor.id : q.cursor.id.slice(0, cut), "text");
    const at = p.add(q.cursor.createdAt, "float8");
    const op = q.order === "oldest" ? ">" : cut < 0 ? "<" : "<=";
    bounds.push((a) => `(${a}.created_at, ${a}.id) ${op} (${at}, ${id})`);
  }
  return { idBounds, bounds };
}

/**
 * The relations and conditions of `q`'s filters; `null` when nothing can match. `cursor`: add
 * the keyset condition (pages only).
 */
function shape(ids: Identifiers, q: ResolvedQuery, p: Params, cursor: boolean): Shape | null {
  const filters: ResolvedTagFilter[] = [];
  for (const f of q.where) {
    if (f.op === "in") {
      const values = f.values.filter(sendable);
      if (values.length === 0) return null;
      filters.push({ ...f, values });
    } else if (f.op === "prefix" && !sendable(f.value)) return null;
    else filters.push(f);
  }
  const tags: string[] = [];
  const aliases: string[] = [];
  const onTags: string[] = [];
  const onDatum: string[] = [];
  const keys = new Map<string, string>();
  const keyOf = (k: string): string => {
    let param = keys.get(k);
    if (param === undefined) keys.set(k, (param = p.add(k, "text")));
    return param;
  };
  const exactKey = (k: string) => chars(k) < TAG_KEY_CHARS;
  const exactValue = (v: string) => chars(v) < TAG_VALUE_CHARS;
  const join = (alias: string, k: string, value: string) => {
    tags.push(`${ids.tags} ${alias}`);
    aliases.push(alias);
    onTags.push(`${alias}.key = left(${keyOf(k)}, ${TAG_KEY_CHARS}) AND ${alias}.value = left(${value}, ${TAG_VALUE_CHARS})`);
    // Further tags relations meet the first on (created_at, id), so a probe from either side is
    // one index lookup. (The first meets the datum on its id alone, below: with `created_at` too,
    // the planner would multiply two equalities that are one fact, expect a single row and sort.)
    const first = aliases[0] as string;
    if (first !== alias) onTags.push(`${alias}.created_at = ${first}.created_at AND ${alias}.id = ${first}.id`);
  };
  const ins = filters.filter((f): f is InFilter => f.op === "in");
  const joined = new Set<ResolvedTagFilter>(ins.filter((f) => f.values.length === 1).slice(0, MAX_TAG_JOINS));
  let lateral: string | null = null;
  let lateralOf: InFilter | null = null;
  // No equality: scan per value of the `in` with the fewest values, if any.
  if (joined.size === 0) for (const f of ins) if (lateralOf === null || f.values.length < lateralOf.values.length) lateralOf = f;
  for (const f of filters) {
    const k = keyOf(f.key);
    if (f.op === "in" && joined.has(f)) {
      const v = p.add(f.values[0], "text");
      join(`t${aliases.length + 1}`, f.key, v);
      // A cut key or value in the tags table may stand for others: check the metadata.
      if (!exactKey(f.key) || !exactValue(f.values[0] as string)) onDatum.push(`d.metadata ->> ${k} = ${v}`);
    } else if (f.op === "in" && f === lateralOf) {
      lateral = p.add(f.values, "text[]");
      join("tv", f.key, "v.value");
      // Each datum under exactly one value: where cut values may coincide, check the real one.
      if (!exactKey(f.key) || !f.values.every(exactValue)) onDatum.push(`d.metadata ->> ${k} = v.value`);
    } else if (f.op === "in") {
      onDatum.push(f.values.length === 1 ? `d.metadata ->> ${k} = ${p.add(f.values[0], "text")}` : `d.metadata ->> ${k} = ANY(${p.add(f.values, "text[]")})`);
    } else if (f.op === "prefix" && f.value !== "") {
      onDatum.push(`starts_with(d.metadata ->> ${k}, ${p.add(f.value, "text")})`);
    } else {
      const present = f.op === "prefix" || f.value;
      onDatum.push(present ? `d.metadata ? ${k}` : `NOT (d.metadata ? ${k})`);
    }
  }
  if (q.parent !== null) onDatum.push(`d.causal_parent = ${p.add(q.parent, "text")}`);
  // Position conditions on the relation pages are ordered by (an index condition there). Id
  // bounds go on the datum too, so a narrow prefix can be read as a range of the primary key
  // ("role = user in thread 42"); time bounds and the cursor do not (the planner would count
  // them twice, expect too few rows and sort instead of reading the tags in order).
  const { idBounds, bounds } = positions(q, p, cursor);
  const orderBy = aliases[0] ?? "d";
  const position = [...idBounds, ...bounds].map((b) => b(orderBy));
  if (orderBy === "d") return { tags, onTags, onDatum: [...onDatum, ...position], hints: [], lateral, orderBy };
  return { tags, onTags: [...onTags, ...position], onDatum, hints: idBounds.map((b) => b("d")), lateral, orderBy };
}

function where(conds: readonly string[]): string {
  return conds.length === 0 ? "" : `WHERE ${conds.join("\n  AND ")}`;
}

/** Each tag range of a multi-tag page is counted up to this many entries to pick the one it walks. */
export const DRIVER_PROBE = 64;

/**
 * A page through two to four tag equalities and nothing the tags cannot answer (no metadata check,
 * no parent), as one prepared statement whose plan does not depend on the values: `undefined`
 * for any other query. Planning a join of several tags relations cost more than running it (1–1.7
 * ms against 0.2–0.4 on a LangGraph `list` filter), and a generic plan of that join may walk one
 * tag and scan the other per row. Here the statement picks, when it runs, the tag whose range is
 * the smallest (each range counted up to `DRIVER_PROBE` entries, an index-only read; ties go to
 * the first key): one `UNION ALL` branch per tag, each gated by a one-time filter on those counts
 * so that exactly one runs. That branch reads its tag's range in order, stops at the limit,
 * probes each other tag by its full index key (key, value, created_at, id: one index descent per
 * candidate) and fetches the datums that pass by primary key.
 */
function multiTagPageSql(ids: Identifiers, q: ResolvedQuery, columns: string): Sql | null | undefined {
  if (q.where.length < 2 || q.where.length > MAX_TAG_JOINS || q.parent !== null) return undefined;
  const tags: Array<{ key: string; value: string }> = [];
  for (const f of q.where) {
    if (f.op !== "in" || f.values.length !== 1) return undefined;
    const value = f.values[0] as string;
    if (chars(f.key) >= TAG_KEY_CHARS || chars(value) >= TAG_VALUE_CHARS) return undefined;
    if (!sendable(value)) return null;
    tags.push({ key: f.key, value });
  }
  const p = new Params();
  const matches = tags.map(({ key, value }) => ({ key: p.add(key, "text"), value: p.add(value, "text") }));
  const { idBounds, bounds } = positions(q, p, true);
  const limit = Number.isSafeInteger(q.limit) && q.limit >= 0 ? String(q.limit) : p.add(q.limit, "bigint");
  const dir = q.order === "oldest" ? "" : " DESC";
  const range = (a: string, i: number) => `${a}.key = ${(matches[i] as { key: string }).key} AND ${a}.value = ${(matches[i] as { value: string }).value}`;
  const counts = matches.map((_, i) => `(SELECT count(*) FROM (SELECT 1 FROM ${ids.tags} c WHERE ${range("c", i)} ORDER BY c.created_at, c.id LIMIT ${DRIVER_PROBE}) c) AS n${i}`);
  const branches = matches.map((_, i) => {
    const a = `t${i}`;
    const probes = matches.flatMap((__, j) =>
      j === i ? [] : [`LATERAL (SELECT 1 FROM ${ids.tags} t${j} WHERE ${range(`t${j}`, j)} AND t${j}.created_at = ${a}.created_at AND t${j}.id = ${a}.id LIMIT 1) t${j}`],
    );
    const gate = matches.flatMap((__, j) => (j === i ? [] : [`n${i} ${j < i ? "<" : "<="} n${j}`])).join(" AND ");
    const conds = [range(a, i), ...[...idBounds, ...bounds].map((b) => b(a)), `d.id = ${a}.id`, `(SELECT ${gate} FROM n)`];
    return `(SELECT ${columns}\nFROM ${[`${ids.tags} ${a}`, ...probes, `${ids.table} d`].join(", ")}\n${where(conds)}\nORDER BY ${a}.created_at${dir}, ${a}.id${dir} LIMIT ${limit})`;
  });
  const text = `WITH n AS MATERIALIZED (SELECT ${counts.join(", ")})\nSELECT * FROM (\n${branches.join("\nUNION ALL\n")}\n) x\nORDER BY x.created_at${dir}, x.id${dir} LIMIT ${limit}`;
  return named({ text, values: p.values });
}

/**
 * `SELECT <columns>` of the datums meeting `q`: one page in `q.order` (`paged`), or all of them in
 * no order. `null` when nothing can match.
 *
 * Without a tag equality, an `in` of at most `MAX_BRANCHES` values is one branch per value (a
 * `UNION ALL` of equalities), so Postgres plans each branch with its own value's statistics; more
 * values are one `LATERAL` over them, planned for a typical value. When the tags answer every
 * filter, those branches (and `count`, and `deleteMany`) read the tags index alone, and a page
 * fetches just its own datums.
 */
export function selectSql(ids: Identifiers, q: ResolvedQuery, columns: string, paged: boolean, idsOnly = false): Sql | null {
  if (paged) {
    const multi = multiTagPageSql(ids, q, columns);
    if (multi !== undefined) return multi;
  }
  const split = q.where.some((f) => f.op === "in" && f.values.length === 1)
    ? undefined
    : q.where.find((f): f is InFilter => f.op === "in" && f.values.length <= MAX_BRANCHES);
  const queries = split === undefined ? [q] : split.values.map((v) => ({ ...q, where: q.where.map((f) => (f === split ? { ...f, values: [v] } : f)) }));
  const dir = q.order === "oldest" ? "" : " DESC";
  // `keys`: read (created_at, id) from the tags alone where they answer every filter. Not for a
  // single page: its join's nested loop already stops after `limit`.
  const build = (keys: boolean): Sql | null | "mixed" => {
    const p = new Params();
    // The limit is written into the text (a validated integer): a named statement's generic plan
    // then knows it (with `LIMIT $n` Postgres assumes a tenth of the rows).
    const limit = !paged ? "" : Number.isSafeInteger(q.limit) && q.limit >= 0 ? String(q.limit) : p.add(q.limit, "bigint");
    const tail = (a: string) => (paged ? `\nORDER BY ${a}created_at${dir}, ${a}id${dir} LIMIT ${limit}` : "");
    const parts: Array<{ text: string; keys: boolean; fixed: boolean }> = [];
    for (const query of queries) {
      const s = shape(ids, query, p, paged);
      if (s === null) continue;
      const tagsOnly = keys && s.tags.length > 0 && s.onDatum.length === 0;
      const link = s.tags.length > 0 ? [`${s.orderBy}.id = d.id`] : [];
      const inner = tagsOnly
        ? `SELECT ${s.orderBy}.created_at, ${s.orderBy}.id\nFROM ${s.tags.join(", ")}\n${where(s.onTags)}${tail(`${s.orderBy}.`)}`
        : `SELECT ${columns}\nFROM ${[`${ids.table} d`, ...s.tags].join(", ")}\n${where([...s.onTags, ...link, ...s.onDatum, ...s.hints])}${tail(`${s.orderBy}.`)}`;
      const text = s.lateral === null ? inner : `SELECT x.* FROM unnest(${s.lateral}) AS v(value) CROSS JOIN LATERAL (\n${inner}\n) x${tail("x.")}`;
      parts.push({ text, keys: tagsOnly, fixed: paged && s.tags.length === 1 && s.lateral === null && s.onDatum.length === 0 && s.hints.length === 0 });
    }
    if (parts.length === 0) return null;
    const byKeys = parts.every((x) => x.keys);
    if (!byKeys && parts.some((x) => x.keys)) return "mixed";
    const merged = parts.length === 1 ? (parts[0] as { text: string }).text : `${parts.map((x) => `(${x.text})`).join("\nUNION ALL\n")}${tail("")}`;
    const fixed = parts.length === 1 && (parts[0] as { fixed: boolean }).fixed;
    if (!byKeys || idsOnly) return fixed ? named({ text: merged, values: p.values }) : { text: merged, values: p.values };
    // The datums of the keys, in order.
    const text = paged ? `SELECT ${columns}\nFROM (${merged}) k, ${ids.table} d\nWHERE d.id = k.id${tail("k.")}` : `SELECT k.id FROM (${merged}) k`;
    return { text, values: p.values };
  };
  const keys = !paged || idsOnly || split !== undefined || q.where.some((f) => f.op === "in" && f.values.length > MAX_BRANCHES);
  const sql = build(keys);
  // Some branches need the datum (a cut value to check): then all of them join it.
  return sql === "mixed" ? (build(false) as Sql | null) : sql;
}

export function pageSql(ids: Identifiers, q: ResolvedQuery): Sql | null {
  return selectSql(ids, q, q.select === "full" ? FULL_COLUMNS : HEADER_COLUMNS, true);
}

/**
 * 1 when some datum of the namespace carries the expiry tag, else NULL: an uncorrelated subquery
 * (an InitPlan, one index probe per statement).
 */
const expiring = (ids: Identifiers): string => `(SELECT 1 FROM ${ids.tags} e WHERE e.key = '${EXPIRES_AT}' LIMIT 1) AS expiring`;

/**
 * An ids page as one row: `ids`, a JSON array of the page's ids in order; `last`, the created_at
 * of the last (the least in newest-first order, the greatest in oldest-first: the order's first
 * key); `expiring` (above). The page itself is read where the tags answer every filter from the
 * tags index alone (an index-only scan once vacuumed), else as `pageSql` without content or
 * metadata. One row instead of `limit`: the driver parses one JSON text (`JSON.parse`) instead of
 * a row object per id, and created_at is sent once — cheaper than the raw driver's own
 * `SELECT id … LIMIT n` (README "Queries"). The aggregate orders its input itself (an ordered
 * aggregate sorts the page's `limit` rows in memory), so the order does not rest on the subquery's.
 */
export function idsSql(ids: Identifiers, q: ResolvedQuery): Sql | null {
  const page = selectSql(ids, q, "d.id, d.created_at", true, true);
  if (page === null) return null;
  const dir = q.order === "oldest" ? "" : " DESC";
  const text =
    `SELECT json_agg(k.id ORDER BY k.created_at${dir}, k.id${dir}) AS ids, ${q.order === "oldest" ? "max" : "min"}(k.created_at) AS last, ${expiring(ids)}` +
    `\nFROM (${page.text}) k`;
  return page.name === undefined ? { text, values: page.values } : named({ text, values: page.values });
}

/**
 * The one-tag-equality ids page (a LangGraph-style "this thread's messages", the benchmark's
 * filtered list): `idsSql`'s statement for it depends only on the order, whether there is a
 * cursor and the limit, so its text is built once per such triple and only the values per call.
 * `null` for any other query (built in full by `idsSql`). The values are in `shape`'s order: the
 * key, the value, then the cursor's id and createdAt.
 */
export function simpleIdsSql(ids: Identifiers, q: ResolvedQuery, cache: Map<string, { readonly name: string; readonly text: string }>): Sql | null {
  const f = q.where[0];
  if (q.where.length !== 1 || f === undefined || f.op !== "in" || f.values.length !== 1) return null;
  if (q.prefix !== "" || q.idGte !== null || q.idLt !== null || q.parent !== null || q.after !== null || q.before !== null) return null;
  const value = f.values[0] as string;
  if (!sendable(f.key) || !sendable(value) || chars(f.key) >= TAG_KEY_CHARS || chars(value) >= TAG_VALUE_CHARS) return null;
  const cursor = q.cursor;
  if (cursor !== null && !sendable(cursor.id)) return null;
  const key = `${q.order}|${cursor === null ? 0 : 1}|${q.limit}`;
  let statement = cache.get(key);
  if (statement === undefined) {
    const built = idsSql(ids, q);
    if (built === null || built.name === undefined) return null;
    if (cache.size >= MAX_NAMES) cache.clear();
    statement = { name: built.name, text: built.text };
    cache.set(key, statement);
  }
  return { name: statement.name, text: statement.text, values: cursor === null ? [f.key, value] : [f.key, value, cursor.id, cursor.createdAt] };
}

export function countSql(ids: Identifiers, q: ResolvedQuery): Sql | null {
  const inner = selectSql(ids, q, "d.id", false);
  return inner && { text: `SELECT count(*)::float8 AS n FROM (${inner.text}) s`, values: inner.values };
}

/** One statement (atomic): deletes what meets `q` and returns the ids (the delete trigger logs them while someone listens). */
export function deleteSql(ids: Identifiers, q: ResolvedQuery): Sql | null {
  const inner = selectSql(ids, q, "d.id", false);
  if (inner === null) return null;
  return { text: `DELETE FROM ${ids.table} AS x WHERE x.id IN (${inner.text}) RETURNING x.id`, values: inner.values };
}

/** Named statements of the fixed shapes. */
export interface QueryStatements {
  /** Params: ids (text[]). The rows of those that exist, in no order. */
  readonly getMany: Statement;
  /**
   * Params: id, n. Walks at most `n` steps up the chain (ids only), stopping early when the start
   * repeats; then one `cycle` row (the first id met twice) or the datums, oldest first.
   */
  readonly chainTail: Statement;
}

export function queryStatements(ids: Identifiers): QueryStatements {
  const t = ids.table;
  return {
    getMany: statement(`SELECT ${COLUMNS} FROM ${t} WHERE id = ANY($1::text[])`),
    chainTail: statement(
      `WITH RECURSIVE walk(id, parent, depth) AS (
        SELECT id, causal_parent, 1 FROM ${t} WHERE id = $1::text
        UNION ALL
        SELECT p.id, p.causal_parent, w.depth + 1
        FROM walk w JOIN ${t} p ON p.id = w.parent
        WHERE w.depth < $2::bigint AND (w.depth = 1 OR w.id <> $1::text)
      ),
      firsts AS (SELECT id, min(depth) AS first FROM walk GROUP BY id),
      rep AS (SELECT w.id FROM walk w JOIN firsts f ON f.id = w.id WHERE w.depth > f.first ORDER BY w.depth LIMIT 1)
      SELECT 'cycle' AS kind, rep.id, NULL::bytea AS content, NULL::float8 AS created_at, NULL::text AS causal_parent,
             NULL::jsonb AS metadata, 0 AS depth FROM rep
      UNION ALL
      SELECT 'datum', d.id, d.content, d.created_at, d.causal_parent, d.metadata, w.depth
      FROM walk w JOIN ${t} d ON d.id = w.id
      WHERE NOT EXISTS (SELECT 1 FROM rep)
      ORDER BY depth DESC`,
    ),
  };
}

/** What the queries need from the adapter. */
export interface PgQueriesHost {
  /** The tier's name: the error unit. */
  readonly name: string;
  readonly ids: Identifiers;
  readonly notify: boolean;
  pool(): pg.Pool;
  wrap(error: unknown, what: string): DgentError;
  /** Announces committed changes (notify.ts). */
  announce(): void;
}

/** The five query methods of the adapter. */
export class PgQueries {
  readonly #host: PgQueriesHost;
  readonly #s: QueryStatements;
  /** `simpleIdsSql`'s statements of this tier, by (order, cursor, limit). */
  readonly #simple = new Map<string, { readonly name: string; readonly text: string }>();

  constructor(host: PgQueriesHost) {
    this.#host = host;
    this.#s = queryStatements(host.ids);
  }

  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    if (q.limit === 0) return [];
    const sql = pageSql(this.#host.ids, q);
    if (sql === null) return [];
    const r = await this.#send<Row>(sql, "query");
    return q.select === "full" ? r.rows.map(toDatum) : r.rows.map(toHeader);
  }

  /**
   * An ids page in one statement (one row: `idsSql`); when some datum of the namespace carries
   * the expiry tag, the page of `query` instead (its headers give each tag).
   */
  async queryIds(q: ResolvedQuery): Promise<IdPage> {
    if (q.limit === 0) return { ids: [], last: null, expiresAt: null };
    const sql = simpleIdsSql(this.#host.ids, q, this.#simple) ?? idsSql(this.#host.ids, q);
    if (sql === null) return { ids: [], last: null, expiresAt: null };
    const { rows } = await this.#send<{ ids: string[] | string | null; last: number | null; expiring: number | null }>(sql, "queryIds");
    const row = rows[0];
    if (row === undefined || row.ids === null) return { ids: [], last: null, expiresAt: null };
    if (row.expiring !== null) return idPageOf((await this.query(q)) as DatumHeader[]);
    // `json` arrives parsed unless a caller's pg type parsers say otherwise.
    const found = typeof row.ids === "string" ? (JSON.parse(row.ids) as string[]) : row.ids;
    const last = found.at(-1);
    return { ids: found, last: last === undefined ? null : { createdAt: Number(row.last), id: last }, expiresAt: null };
  }

  async count(q: ResolvedQuery): Promise<number> {
    const sql = countSql(this.#host.ids, q);
    if (sql === null) return 0;
    const r = await this.#send<{ n: number }>(sql, "count");
    return r.rows[0]?.n ?? 0;
  }

  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    const wanted = [...new Set(ids.filter(sendable))];
    if (wanted.length === 0) return ids.map(() => null);
    const r = await this.#send<Row>({ ...this.#s.getMany, values: [wanted] }, "getMany", `${ids.length} ids`);
    const byId = new Map(r.rows.map((row) => [row.id, row]));
    return ids.map((id) => {
      const row = byId.get(id);
      return row === undefined ? null : toDatum(row);
    });
  }

  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    const sql = deleteSql(this.#host.ids, q);
    if (sql === null) return [];
    const r = await this.#send<{ id: string }>(sql, "deleteMany");
    if (r.rows.length > 0) this.#host.announce();
    return r.rows.map((row) => row.id);
  }

  async chainTail(id: string, n: number): Promise<Datum[]> {
    if (!sendable(id)) return [];
    const r = await this.#send<Row & { kind: string }>({ ...this.#s.chainTail, values: [id, n] }, "chainTail", JSON.stringify(id));
    const cycle = r.rows.find((row) => row.kind === "cycle");
    if (cycle !== undefined) throw cycleError(id, cycle.id, this.#host.name);
    return r.rows.map(toDatum);
  }

  async #send<R extends pg.QueryResultRow>(sql: pg.QueryConfig, op: string, subject = ""): Promise<pg.QueryResult<R>> {
    try {
      return await this.#host.pool().query<R>(sql);
    } catch (error) {
      throw this.#host.wrap(error, `${op}${subject ? ` ${subject}` : ""} on ${this.#host.ids.label}`);
    }
  }
}
