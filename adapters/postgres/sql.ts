import { createHash } from "node:crypto";
import pg from "pg";

/**
 * Every statement the adapter sends, built once per (schema, table) from quoted identifiers.
 * Values always travel as parameters; identifiers are validated by the options and quoted here
 * with `escapeIdentifier`, so nothing from configuration is spliced into SQL unquoted.
 */

const COLUMNS = "id, content, created_at, causal_parent, metadata";

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
}

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
  };
}

/** A statement with a stable name, so each pooled connection parses and plans it once. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

function statement(text: string): Statement {
  return { name: `dgent_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`, text };
}

/** `a = b` for every field the append-only law compares (content, parent, metadata; not createdAt). */
function same(a: string, b: string): string {
  return `(${a}.content = ${b}.content AND ${a}.causal_parent IS NOT DISTINCT FROM ${b}.causal_parent AND ${a}.metadata = ${b}.metadata)`;
}

export interface Statements {
  /**
   * Insert unless the id exists; in the same round trip, whether the stored row has the same
   * value. `same` is null when the row was inserted, or when a concurrent insert committed after
   * this statement's snapshot (then `sameAs` decides).
   * Params: id, content, createdAt, parent, metadata JSON[, channel, origin].
   */
  readonly put: Statement;
  /** Params: id, content, parent, metadata JSON. */
  readonly sameAs: Statement;
  readonly get: Statement;
  /** Params: id[, channel, origin]. `rowCount` is 1 when the id existed. */
  readonly delete: Statement;
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
   * Insert a batch given as parallel arrays, the first occurrence of each id, unless it exists;
   * one row per input with whether it was inserted and whether it has the same value as what is
   * stored (or as the batch's first occurrence). Params: ids, contents, createdAts, parents,
   * metadata JSONs[, channel, origin].
   */
  readonly putMany: Statement;
  /** Params: ids, contents, parents, metadata JSONs. Rows: ord, same (null when missing). */
  readonly sameAsMany: Statement;
}

export function statements(ids: Identifiers, notify: boolean): Statements {
  const t = ids.table;
  const note = (op: "put" | "delete", row: string, channel: string, origin: string) =>
    notify ? `, pg_notify(${channel}, json_build_object('op', '${op}', 'id', ${row}.id, 'origin', ${origin}::text)::text)` : "";
  const newestFirst = `ORDER BY created_at DESC, id DESC`;
  return {
    put: statement(
      `WITH ins AS (
        INSERT INTO ${t} AS t (${COLUMNS}) VALUES ($1, $2, $3, $4, $5::jsonb)
        ON CONFLICT (id) DO NOTHING
        RETURNING t.id${note("put", "t", "$6", "$7")}
      )
      SELECT (SELECT count(*) FROM ins)::int AS inserted,
             (SELECT ${same("cur", "v")} FROM ${t} cur,
                (SELECT $2::bytea AS content, $4::text AS causal_parent, $5::jsonb AS metadata) v
              WHERE cur.id = $1) AS same`,
    ),
    sameAs: statement(
      `SELECT ${same("cur", "v")} AS same FROM ${t} cur,
         (SELECT $2::bytea AS content, $3::text AS causal_parent, $4::jsonb AS metadata) v
       WHERE cur.id = $1`,
    ),
    get: statement(`SELECT ${COLUMNS} FROM ${t} WHERE id = $1`),
    delete: statement(`DELETE FROM ${t} AS t WHERE t.id = $1 RETURNING t.id${note("delete", "t", "$2", "$3")}`),
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
    putMany: statement(
      `WITH input AS (
        SELECT * FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::text[], $5::jsonb[])
          WITH ORDINALITY AS x(id, content, created_at, causal_parent, metadata, ord)
      ),
      firsts AS (SELECT DISTINCT ON (id) * FROM input ORDER BY id, ord),
      ins AS (
        INSERT INTO ${t} AS t (${COLUMNS})
        SELECT ${COLUMNS} FROM firsts ORDER BY id
        ON CONFLICT (id) DO NOTHING
        RETURNING t.id${note("put", "t", "$6", "$7")}
      )
      SELECT i.ord, i.id, (ins.id IS NOT NULL) AS inserted,
             CASE WHEN ins.id IS NOT NULL THEN ${same("i", "f")} ELSE ${same("i", "cur")} END AS same
      FROM input i
      JOIN firsts f ON f.id = i.id
      LEFT JOIN ins ON ins.id = i.id
      LEFT JOIN ${t} cur ON cur.id = i.id
      ORDER BY i.ord`,
    ),
    sameAsMany: statement(
      `SELECT x.ord, ${same("cur", "x")} AS same
       FROM unnest($1::text[], $2::bytea[], $3::text[], $4::jsonb[])
         WITH ORDINALITY AS x(id, content, causal_parent, metadata, ord)
       LEFT JOIN ${t} cur ON cur.id = x.id
       ORDER BY x.ord`,
    ),
  };
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
