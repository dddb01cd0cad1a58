import { createHash } from "node:crypto";
import pg from "pg";
import { COLUMNS } from "./rows.js";

/**
 * Every statement the adapter sends, built once per (schema, table) from quoted identifiers.
 * Values always travel as parameters; identifiers are validated by the options and quoted here
 * with `escapeIdentifier`, so nothing from configuration is spliced into SQL unquoted.
 */


export interface Identifiers {
  /** `"schema"` */
  readonly schema: string;
  /** `"schema"."table"` */
  readonly table: string;
  /** `"schema"."dgent_migrations"` */
  readonly migrations: string;
  /** Index names (unqualified, quoted). */
  readonly createdIndex: string;
  readonly parentIndex: string;
  /** The LISTEN/NOTIFY channel of this table (unquoted; at most 63 bytes). */
  readonly channel: string;
  /** `schema.table`, for messages. */
  readonly label: string;
  /** `"schema"."<table>_refs"` and `"schema"."<table>_reflog"`: the table's refs and their moves (refs.ts). */
  readonly refs: string;
  readonly reflog: string;
  /** `"schema"."<table>_tags"`: one row per (datum, tag), kept by triggers (migration 4, queries.ts). */
  readonly tags: string;
  /** `"<table>_tags_idx"` on the tags (key, value, created_at, id); `"<table>_children_idx"` on (causal_parent, created_at, id). */
  readonly tagsIndex: string;
  readonly childrenIndex: string;
  /** The functions (schema-qualified) and triggers (unqualified) that keep the tags in step with the table. */
  readonly tagsSync: Readonly<Record<TagsSync, { readonly fn: string; readonly trigger: string }>>;
  /** `"schema"."<table>_changes"`: the change log (migration 5, notify.ts); `"<table>_changes_idx"` on its xid. */
  readonly changes: string;
  readonly changesIndex: string;
  /**
   * `"schema"."<table>_listeners"`: one row per connection listening for this table's changes
   * (migration 9, notify.ts). Writers append to the change log only while it has a row.
   */
  readonly listeners: string;
}

/** The statements the tags triggers answer: each keeps the tags table in step with the datum table. */
export type TagsSync = "insert" | "delete" | "update" | "truncate";

export function identifiers(schema: string, table: string): Identifiers {
  const s = pg.escapeIdentifier(schema);
  const readable = `dgent:${schema}.${table}`;
  const channel =
    Buffer.byteLength(readable) <= 63
      ? readable
      : `dgent:${createHash("sha256").update(`${schema}\u0000${table}`).digest("hex").slice(0, 40)}`;
  return {
    schema: s,
    table: `${s}.${pg.escapeIdentifier(table)}`,
    migrations: `${s}.${pg.escapeIdentifier("dgent_migrations")}`,
    createdIndex: pg.escapeIdentifier(`${table}_created_idx`),
    parentIndex: pg.escapeIdentifier(`${table}_parent_idx`),
    channel,
    label: `${schema}.${table}`,
    refs: `${s}.${pg.escapeIdentifier(`${table}_refs`)}`,
    reflog: `${s}.${pg.escapeIdentifier(`${table}_reflog`)}`,
    tags: `${s}.${pg.escapeIdentifier(`${table}_tags`)}`,
    tagsIndex: pg.escapeIdentifier(`${table}_tags_idx`),
    childrenIndex: pg.escapeIdentifier(`${table}_children_idx`),
    changes: `${s}.${pg.escapeIdentifier(`${table}_changes`)}`,
    changesIndex: pg.escapeIdentifier(`${table}_changes_idx`),
    listeners: `${s}.${pg.escapeIdentifier(`${table}_listeners`)}`,
    tagsSync: Object.fromEntries(
      (["insert", "delete", "update", "truncate"] as const).map((op) => [
        op,
        { fn: `${s}.${pg.escapeIdentifier(`${table}_tags_${op}`)}`, trigger: pg.escapeIdentifier(`${table}_tags_${op}`) },
      ]),
    ) as Identifiers["tagsSync"],
  };
}

/** A statement with a stable name, so each pooled connection parses and plans it once. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

export function statement(text: string): Statement {
  return { name: `dgent_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`, text };
}

/** `a = b` for every field the append-only law compares (content, parent, metadata; not createdAt). */
function same(a: string, b: string): string {
  return `(${a}.content = ${b}.content AND ${a}.causal_parent IS NOT DISTINCT FROM ${b}.causal_parent AND ${a}.metadata = ${b}.metadata)`;
}

/** Parameters per datum in a batch statement: id, content, createdAt, parent, metadata JSON. */
export const BATCH_PARAMS = 5;

export interface Statements {
  /**
   * Insert unless the id exists, for a datum with at least one tag: the statement's outer part is
   * the insert of the new row's tag rows (`INSERT … SELECT … FROM ins`), so `rowCount` is 0 when
   * the id existed (then `sameAs` decides) and the number of tag rows, at least 1, when it
   * inserted. It answers no rows: a row, even one of no columns, cost the client a row
   * description and a data row to parse on every put (measured, benchmarks/README.md). While
   * someone listens the same statement writes the change-log row (`keptInStep`).
   * Params: id, content, createdAt, parent, metadata JSON (an object with at least one key).
   */
  readonly put: Statement;
  /** `put` for a datum without tags: `rowCount` 1 when inserted (a row of no columns), 0 when the id existed. Params: as `put`. */
  readonly putBare: Statement;
  /**
   * `put` for a writer that believes nobody listens: the insert and its tag rows, no change-log
   * step, and it inserts only if the listeners table is empty (`NOT EXISTS`, evaluated with the
   * statement's snapshot, which under READ COMMITTED follows its table lock, as the log step's
   * `EXISTS` is). `rowCount` as `put`'s (0: the id exists, or someone listens; the caller then
   * sends `put`). Params: as `put`.
   */
  readonly putQuiet: Statement;
  /** `putQuiet` for a datum without tags: the bare insert, `rowCount` 1 or 0. Params: as `put`. */
  readonly putQuietBare: Statement;
  /** Params: id, content, parent, metadata JSON. One row (`same`) when the id exists, none when not. */
  readonly sameAs: Statement;
  readonly get: Statement;
  /** Params: id. `rowCount` is 1 when the id existed. */
  readonly delete: Statement;
  /** Params: ids (text[]). One row (`id`) per id that existed. */
  readonly deleteIds: Statement;
  /** One row: `heard`, whether the listeners table has a row (someone listens for this table). */
  readonly listened: Statement;
  /** Params: after, limit. */
  readonly listAll: Statement;
  /** Params: lower (the prefix), upper (exclusive bound), after, limit. */
  readonly listRange: Statement;
  /** Params: lower, after, limit (a prefix with no upper bound, e.g. ending in U+10FFFF). */
  readonly listFrom: Statement;
  /** Params: id, maxDepth. Rows of kind `datum` oldest first, or one `cycle` / `deep` row. */
  readonly chain: Statement;
  /** Params: the last id seen ("" to start), page size. Keyset paging by id. */
  readonly scan: Statement;
  readonly stats: Statement;
  /**
   * The batch insert for `rows` datums (a power of two; unused trailing rows are all NULL and
   * skipped), as a multi-row `VALUES` whose contents are binary parameters. It inserts, in id
   * order, every row whose id is not stored; then, only if fewer rows were inserted than given,
   * it checks the rest: a row whose id this statement inserted must equal every other occurrence
   * of that id in the batch, any other row must equal the stored one. `strict`: the statement
   * fails with SQLSTATE 22012 when any row does not check out (mismatch, or stored by a
   * transaction that committed after this statement's snapshot), so the whole statement, and
   * with it every insert and notification, is undone; it returns one row. Otherwise it returns
   * the rows that did not check out, `ord` (1-based position in the batch) and `same` (false: a
   * mismatch; null: not visible to this statement, compare with `sameAsMany`).
   * Params: BATCH_PARAMS per row.
   */
  batch(rows: number, strict: boolean): Statement;
  /** Params: ids, contents, parents, metadata JSONs. Rows: ord, same (null when missing). */
  readonly sameAsMany: Statement;
}

/**
 * The CTEs that keep the tags table and the change log in step with the rows a data-modifying
 * CTE `ins` inserted (`RETURNING t.id, t.created_at, t.metadata`), in the inserting statement:
 * one tag row per datum and (cut key, cut value), the rows the tags trigger writes for other
 * sessions (migrations 4 and 7), and while some connection listens for the table (a row in
 * `listeners`), one log row per datum: the writing transaction's id and this session's
 * `dgent.origin`. The log row commits with the insert; nothing here takes a lock shared between
 * writers. The insert trigger does not fire for sessions that carry `dgent.origin` (every pool
 * session: profiles.ts; migration 10), so every insert this version sends must carry these.
 */
export function keptInStep(ids: Identifiers): string {
  return `tags AS (\n        ${tagRows(ids)}\n      ),\n      ${logStep(ids)}`;
}

/** The change-log CTE of `keptInStep` alone: one row per inserted datum, while someone listens. */
function logStep(ids: Identifiers): string {
  return `log AS (
        INSERT INTO ${ids.changes} (xid, op, id, origin)
        SELECT pg_current_xact_id(), 'put', ins.id, current_setting('dgent.origin') FROM ins
        WHERE EXISTS (SELECT FROM ${ids.listeners})
      )`;
}

/** The insert of the tag rows of the datums `ins` inserted: one per datum and (cut key, cut value). */
function tagRows(ids: Identifiers): string {
  return `INSERT INTO ${ids.tags} (key, value, created_at, id)
        SELECT e.key, e.value, ins.created_at, ins.id FROM ins,
          LATERAL (SELECT DISTINCT left(j.key, 64) AS key, left(j.value, 256) AS value FROM jsonb_each_text(ins.metadata) j) e`;
}

/** `WITH ins AS (INSERT … <rows> ON CONFLICT (id) DO NOTHING RETURNING …)`: the CTE the steps above read. */
function inserting(ids: Identifiers, rows: string): string {
  return `WITH ins AS (INSERT INTO ${ids.table} AS t (${COLUMNS}) ${rows} ON CONFLICT (id) DO NOTHING ${INSERTED})`;
}

/** The row of a quiet put: the parameters, only while the listeners table is empty. */
const QUIET_ROW = (ids: Identifiers) => `SELECT $1::text, $2::bytea, $3::float8, $4::text, $5::jsonb WHERE NOT EXISTS (SELECT FROM ${ids.listeners})`;

/** The columns an inserting CTE `ins` returns for `keptInStep`. */
export const INSERTED = "RETURNING t.id, t.created_at, t.metadata";

/**
 * The put statement for a datum whose metadata serialises to `metadataJson`: the tagged form
 * (whose outer insert writes the tag rows) unless it has no tags, quiet or logging. Either way
 * `rowCount` is 0 exactly when nothing was inserted.
 */
export function putStatement(sql: Statements, metadataJson: string, quiet: boolean): Statement {
  if (metadataJson === "{}") return quiet ? sql.putQuietBare : sql.putBare;
  return quiet ? sql.putQuiet : sql.put;
}

/** SQLSTATE of a strict batch statement that found a row it could not accept (division by zero). */
export const BATCH_RECHECK = "22012";

export function statements(ids: Identifiers): Statements {
  const t = ids.table;
  const newestFirst = `ORDER BY created_at DESC, id DESC`;
  const batches = new Map<string, Statement>();
  const batch = (rows: number, strict: boolean): Statement => {
    const key = `${rows}:${strict}`;
    let s = batches.get(key);
    if (s === undefined) {
      s = statement(batchText(ids, rows, strict));
      batches.set(key, s);
    }
    return s;
  };
  return {
    put: statement(`${inserting(ids, "VALUES ($1, $2, $3, $4, $5::jsonb)")}, ${logStep(ids)}\n      ${tagRows(ids)}`),
    putBare: statement(`${inserting(ids, "VALUES ($1, $2, $3, $4, $5::jsonb)")}, ${logStep(ids)}\n      SELECT FROM ins`),
    putQuiet: statement(`${inserting(ids, QUIET_ROW(ids))}\n      ${tagRows(ids)}`),
    putQuietBare: statement(`INSERT INTO ${t} AS t (${COLUMNS}) ${QUIET_ROW(ids)} ON CONFLICT (id) DO NOTHING`),
    sameAs: statement(
      `SELECT ${same("cur", "v")} AS same FROM ${t} cur,
         (SELECT $2::bytea AS content, $3::text AS causal_parent, $4::jsonb AS metadata) v
       WHERE cur.id = $1`,
    ),
    get: statement(`SELECT ${COLUMNS} FROM ${t} WHERE id = $1`),
    delete: statement(`DELETE FROM ${t} AS t WHERE t.id = $1`),
    deleteIds: statement(`DELETE FROM ${t} AS t WHERE t.id = ANY($1::text[]) RETURNING t.id`),
    listened: statement(`SELECT EXISTS (SELECT FROM ${ids.listeners}) AS heard`),
    listAll: statement(`SELECT ${COLUMNS} FROM ${t} WHERE created_at > $1 ${newestFirst} LIMIT $2`),
    listRange: statement(`SELECT ${COLUMNS} FROM ${t} WHERE id >= $1 AND id < $2 AND created_at > $3 ${newestFirst} LIMIT $4`),
    listFrom: statement(`SELECT ${COLUMNS} FROM ${t} WHERE id >= $1 AND created_at > $2 ${newestFirst} LIMIT $3`),
    chain: statement(
      // Walk ids only (no content) up to maxDepth + 1 steps, stopping early when the start
      // repeats; then either report the first repeated id (a cycle), report that the chain is
      // too deep, or join the datums, oldest first. One round trip.
      `WITH RECURSIVE walk(id, parent, depth) AS (
        SELECT id, causal_parent, 1 FROM ${t} WHERE id = $1
        UNION ALL
        SELECT p.id, p.causal_parent, w.depth + 1
        FROM walk w JOIN ${t} p ON p.id = w.parent
        WHERE w.depth <= $2 AND (w.depth = 1 OR w.id <> $1)
      ),
      firsts AS (SELECT id, min(depth) AS first FROM walk GROUP BY id),
      rep AS (
        SELECT w.id, w.depth FROM walk w JOIN firsts f ON f.id = w.id
        WHERE w.depth > f.first ORDER BY w.depth LIMIT 1
      ),
      deepest AS (SELECT coalesce(max(depth), 0) AS n FROM walk)
      SELECT 'cycle' AS kind, rep.id, NULL::bytea AS content, NULL::float8 AS created_at,
             NULL::text AS causal_parent, NULL::jsonb AS metadata, rep.depth FROM rep
      UNION ALL
      SELECT 'deep', NULL, NULL, NULL, NULL, NULL, deepest.n FROM deepest
      WHERE deepest.n > $2 AND NOT EXISTS (SELECT 1 FROM rep)
      UNION ALL
      SELECT 'datum', d.id, d.content, d.created_at, d.causal_parent, d.metadata, w.depth
      FROM walk w JOIN ${t} d ON d.id = w.id
      WHERE NOT EXISTS (SELECT 1 FROM rep) AND (SELECT n FROM deepest) <= $2
      ORDER BY depth DESC`,
    ),
    scan: statement(`SELECT ${COLUMNS} FROM ${t} WHERE id > $1 ORDER BY id LIMIT $2`),
    stats: statement(`SELECT count(*)::float8 AS count, coalesce(sum(octet_length(content)), 0)::float8 AS bytes FROM ${t}`),
    batch,
    sameAsMany: statement(
      `SELECT x.ord, CASE WHEN cur.id IS NULL THEN NULL ELSE ${same("cur", "x")} END AS same
       FROM unnest($1::text[], $2::bytea[], $3::text[], $4::jsonb[])
         WITH ORDINALITY AS x(id, content, causal_parent, metadata, ord)
       LEFT JOIN ${t} cur ON cur.id = x.id
       ORDER BY x.ord`,
    ),
  };
}

function batchText(ids: Identifiers, rows: number, strict: boolean): string {
  const t = ids.table;
  const values: string[] = [];
  for (let r = 0; r < rows; r++) {
    const p = r * BATCH_PARAMS;
    values.push(`(${r + 1}, $${p + 1}::text, $${p + 2}::bytea, $${p + 3}::float8, $${p + 4}::text, $${p + 5}::jsonb)`);
  }
  const problems = `SELECT i.ord,
               CASE WHEN ins.id IS NOT NULL THEN mixed.id IS NULL
                    WHEN cur.id IS NULL THEN NULL
                    ELSE ${same("i", "cur")} END AS same
        FROM input i
        LEFT JOIN ins ON ins.id = i.id
        LEFT JOIN mixed ON mixed.id = i.id
        LEFT JOIN ${t} cur ON cur.id = i.id
        WHERE (SELECT count(*) FROM ins) < (SELECT count(*) FROM input)`;
  return `WITH input(ord, id, content, created_at, causal_parent, metadata) AS (
        SELECT * FROM (VALUES ${values.join(", ")}) AS v(ord, id, content, created_at, causal_parent, metadata)
        WHERE v.id IS NOT NULL
      ),
      ins AS (
        INSERT INTO ${t} AS t (${COLUMNS})
        SELECT ${COLUMNS} FROM input ORDER BY id COLLATE "C"
        ON CONFLICT (id) DO NOTHING
        ${INSERTED}
      ),
      ${keptInStep(ids)},
      mixed AS (
        SELECT DISTINCT i.id FROM input i JOIN input j ON j.id = i.id AND j.ord > i.ord
        WHERE NOT ${same("i", "j")}
      ),
      problems AS (${problems})
      ${strict ? "SELECT 1 / (1 - least(count(*), 1)) AS ok FROM problems WHERE same IS NOT TRUE" : "SELECT ord, same FROM problems WHERE same IS NOT TRUE ORDER BY ord"}`;
}

/**
 * The exclusive upper bound of the ids starting with `prefix` in code point (= UTF-8 byte =
 * `COLLATE "C"`) order: the prefix with its last code point incremented, skipping the surrogate
 * range; null when every code point is U+10FFFF (no bound needed).
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = Array.from(prefix, (c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...points, next);
    }
  }
  return null;
}
