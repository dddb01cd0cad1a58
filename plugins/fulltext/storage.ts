/**
 * Where the full-text index lives. Three storages, one contract:
 *
 * - `memory` (every tier): the in-process inverted index (tokens.ts), rebuilt from the datums at
 *   attach (100k short documents: see README.md for the measured time).
 * - `sqlite` (a SQLite tier with a file): an FTS5 table in a sidecar database `<file>-fulltext`,
 *   its own connection (the tier's connection is private and its write lock stays its own).
 * - `postgres` (a Postgres tier and the `postgresUrl` option): with the `simple` configuration,
 *   impact-ordered postings tables in the store's schema and BM25 (PostgresImpactStorage); with
 *   another configuration (stemming), a table with a `tsvector` column and a GIN index, ranked by
 *   `ts_rank_cd` on the server (PostgresFtsStorage).
 */
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { unlinkSync } from "node:fs";
import { dgentError } from "../../core/errors.js";
import type { DatumHeader, ResolvedQuery } from "../../core/query.js";
import { B, InvertedIndex, K1, tokenize, type Hit } from "./tokens.js";

export type StorageKind = "memory" | "sqlite" | "postgres";

export interface FtsStorage {
  readonly kind: StorageKind;
  /** Whether searches filter by headers it keeps (true) or by candidate ids (false). */
  readonly filtersByHeader: boolean;
  /** Every indexed id (text or not) with the createdAt of the datum indexed. */
  load(): Promise<Map<string, number>>;
  /** Indexes (or replaces) a datum's text; null records "not text". */
  put(header: DatumHeader, text: string | null): Promise<void>;
  /** Several at once (a catch-up): one transaction or statement where the storage has them. */
  putMany(items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>): Promise<void>;
  delete(id: string): Promise<void>;
  /** Best first; `candidates`: only these ids; `q`: only headers meeting it (when `filtersByHeader`). */
  search(terms: readonly string[], k: number, candidates: readonly string[] | null, q: ResolvedQuery | null): Promise<Hit[]>;
  /** Removes everything (a full reindex). */
  drop(): Promise<void>;
  /** After a catch-up that indexed many: compacts what the storage can. */
  optimize?(): Promise<void>;
  close(): Promise<void>;
}

export class MemoryStorage implements FtsStorage {
  readonly kind = "memory";
  readonly filtersByHeader = true;
  index = new InvertedIndex();
  async load(): Promise<Map<string, number>> {
    return new Map();
  }
  async put(header: DatumHeader, text: string | null): Promise<void> {
    if (text === null) this.index.delete(header.id);
    else this.index.set(header, text);
  }
  async putMany(items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>): Promise<void> {
    for (const { header, text } of items) await this.put(header, text);
  }
  async delete(id: string): Promise<void> {
    this.index.delete(id);
  }
  async search(terms: readonly string[], k: number, _c: readonly string[] | null, q: ResolvedQuery | null): Promise<Hit[]> {
    return this.index.search(terms, k, q);
  }
  async drop(): Promise<void> {
    this.index = new InvertedIndex();
  }
  async close(): Promise<void> {}
}

/** FTS5 query text: each term quoted, OR-ed (BM25 ranks documents matching more terms higher). */
export function ftsMatch(terms: readonly string[]): string {
  return terms.map((t) => `"${t.replace(/"/g, '""')}"`).join(" OR ");
}

interface Sqlite {
  prepare(sql: string): { run(...a: unknown[]): { changes: number }; get(...a: unknown[]): unknown; all(...a: unknown[]): unknown[] };
  exec(sql: string): void;
  pragma(s: string): unknown;
  transaction<F extends (...a: never[]) => unknown>(f: F): F;
  close(): void;
}

export class SqliteFtsStorage implements FtsStorage {
  readonly kind = "sqlite";
  readonly filtersByHeader = false;
  readonly path: string;
  #db: Sqlite;
  #put: (id: string, createdAt: number, text: string | null) => void;
  #top: { all(...a: unknown[]): unknown[] };
  #all: { iterate(...a: unknown[]): IterableIterator<{ id: string; s: number }> };
  #putMany: (items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>) => void;
  #del: (id: string) => void;

  private constructor(path: string, db: Sqlite) {
    this.path = path;
    this.#db = db;
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(`CREATE TABLE IF NOT EXISTS ids (rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, text INTEGER NOT NULL);
      CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');`);
    this.#top = db.prepare("SELECT i.id AS id, d.s AS s FROM (SELECT rowid AS r, bm25(docs) AS s FROM docs WHERE docs MATCH ? ORDER BY s LIMIT ?) d JOIN ids i ON i.rid = d.r ORDER BY d.s, i.id");
    this.#all = db.prepare("SELECT i.id AS id, bm25(docs) AS s FROM docs JOIN ids i ON i.rid = docs.rowid WHERE docs MATCH ? ORDER BY s, i.id") as unknown as { iterate(...a: unknown[]): IterableIterator<{ id: string; s: number }> };
    const find = db.prepare("SELECT rid FROM ids WHERE id = ?");
    const delIds = db.prepare("DELETE FROM ids WHERE rid = ?");
    const delDoc = db.prepare("DELETE FROM docs WHERE rowid = ?");
    const insId = db.prepare("INSERT INTO ids (id, created_at, text) VALUES (?, ?, ?)");
    const insDoc = db.prepare("INSERT INTO docs (rowid, body) VALUES (?, ?)");
    const remove = (id: string): void => {
      const row = find.get(id) as { rid: number } | undefined;
      if (!row) return;
      delDoc.run(row.rid);
      delIds.run(row.rid);
    };
    this.#del = db.transaction((id: string) => remove(id)) as unknown as (id: string) => void;
    const putOne = (id: string, createdAt: number, text: string | null): void => {
      remove(id);
      const rid = (insId.run(id, createdAt, text === null ? 0 : 1) as unknown as { lastInsertRowid: number | bigint }).lastInsertRowid;
      if (text !== null) insDoc.run(rid, text);
    };
    this.#put = db.transaction(putOne) as unknown as typeof putOne;
    this.#putMany = db.transaction((items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>) => {
      for (const { header, text } of items) putOne(header.id, header.createdAt, text);
    }) as unknown as (items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>) => void;
  }

  static open(path: string): SqliteFtsStorage {
    const require = createRequire(import.meta.url);
    let Database: new (file: string) => Sqlite;
    try {
      Database = require("better-sqlite3") as new (file: string) => Sqlite;
    } catch {
      throw dgentError("DGENT_MISSING_DEPENDENCY", "the fulltext plugin's sqlite storage needs better-sqlite3 (npm install better-sqlite3)", { unit: "fulltext", details: { package: "better-sqlite3" } });
    }
    return new SqliteFtsStorage(path, new Database(path));
  }

  async load(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const r of this.#db.prepare("SELECT id, created_at FROM ids").all() as Array<{ id: string; created_at: number }>) out.set(r.id, r.created_at);
    return out;
  }
  async put(header: DatumHeader, text: string | null): Promise<void> {
    this.#put(header.id, header.createdAt, text);
  }
  async putMany(items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>): Promise<void> {
    this.#putMany(items);
  }
  async delete(id: string): Promise<void> {
    this.#del(id);
  }
  /** Merges FTS5's segments into one (after a catch-up that wrote many: each transaction adds a segment, and a query reads them all). */
  async optimize(): Promise<void> {
    this.#db.exec("INSERT INTO docs (docs) VALUES ('optimize')");
  }
  async search(terms: readonly string[], k: number, candidates: readonly string[] | null): Promise<Hit[]> {
    if (terms.length === 0) return [];
    const match = ftsMatch(terms);
    if (candidates === null) {
      // Ranked and cut inside FTS5 first, then joined with the ids: 10 lookups, not one per match.
      const rows = this.#top.all(match, k) as Array<{ id: string; s: number }>;
      return rows.map((r) => ({ id: r.id, score: -r.s }));
    }
    // Walks the matches best first and keeps those among the candidates, until k: FTS5 ranks every
    // match anyway (ORDER BY bm25), and a rowid IN (…) beside MATCH would make SQLite probe each candidate.
    const wanted = new Set(candidates);
    const out: Hit[] = [];
    for (const r of this.#all.iterate(match)) {
      if (!wanted.has(r.id)) continue;
      out.push({ id: r.id, score: -r.s });
      if (out.length >= k) break;
    }
    return out;
  }
  async drop(): Promise<void> {
    this.#db.exec("DELETE FROM ids; DELETE FROM docs;");
  }
  async close(): Promise<void> {
    this.#db.close();
  }
  /** Deletes a sidecar file and its WAL (a full reindex of a broken file). */
  static remove(path: string): void {
    for (const p of [path, `${path}-wal`, `${path}-shm`]) {
      try {
        unlinkSync(p);
      } catch {
        /* absent */
      }
    }
  }
}

/** The Postgres statements (kept together so they can be read and checked as text). */
export function postgresSql(schema: string, language: string) {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const t = `${q(schema)}.${q("dgent_fulltext")}`;
  const lang = `'${language.replace(/'/g, "''")}'::regconfig`;
  return {
    create: [
      `CREATE SCHEMA IF NOT EXISTS ${q(schema)}`,
      `CREATE TABLE IF NOT EXISTS ${t} (id text PRIMARY KEY, created_at bigint NOT NULL, body tsvector)`,
      `CREATE INDEX IF NOT EXISTS ${q("dgent_fulltext_gin")} ON ${t} USING gin (body)`,
    ],
    load: `SELECT id, created_at FROM ${t}`,
    put: `INSERT INTO ${t} (id, created_at, body) VALUES ($1, $2, CASE WHEN $3::text IS NULL THEN NULL ELSE to_tsvector(${lang}, $3::text) END) ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, body = EXCLUDED.body`,
    putMany: `INSERT INTO ${t} (id, created_at, body) SELECT u.id, u.at, CASE WHEN u.body IS NULL THEN NULL ELSE to_tsvector(${lang}, u.body) END FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(id, at, body) ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, body = EXCLUDED.body`,
    delete: `DELETE FROM ${t} WHERE id = $1`,
    // ts_rank_cd with normalization 1 (divide by 1 + log(length)): cover density rewards terms near
    // each other and the length term keeps long documents from winning by size, as BM25 does.
    search: `SELECT id, ts_rank_cd(body, q, 1) AS s FROM ${t}, to_tsquery(${lang}, $1) q WHERE body @@ q ORDER BY s DESC, id LIMIT $2`,
    searchIn: `SELECT id, ts_rank_cd(body, q, 1) AS s FROM ${t}, to_tsquery(${lang}, $1) q WHERE body @@ q AND id = ANY($3::text[]) ORDER BY s DESC, id LIMIT $2`,
    drop: `DELETE FROM ${t}`,
    // A bulk load leaves GIN entries in the index's pending list, which every search scans linearly.
    flushGin: `SELECT gin_clean_pending_list('${q(schema).replace(/'/g, "''")}.${q("dgent_fulltext_gin")}'::regclass)`,
    analyze: `ANALYZE ${t}`,
  };
}

/** A tsquery of the terms, OR-ed; each term quoted as a lexeme. */
export function tsQuery(terms: readonly string[]): string {
  return terms.map((t) => `'${t.replace(/'/g, "''").replace(/\\/g, "\\\\")}'`).join(" | ");
}

interface PgPool {
  query(sql: string | { name: string; text: string; values: unknown[] }, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(): Promise<void>;
}

export class PostgresFtsStorage implements FtsStorage {
  readonly kind = "postgres";
  readonly filtersByHeader = false;
  readonly #pool: PgPool;
  readonly #sql: ReturnType<typeof postgresSql>;

  private constructor(pool: PgPool, sql: ReturnType<typeof postgresSql>) {
    this.#pool = pool;
    this.#sql = sql;
  }

  static async open(url: string, schema: string, language: string): Promise<PostgresFtsStorage> {
    let pg: { Pool: new (o: { connectionString: string; max: number }) => PgPool };
    try {
      pg = ((await import("pg")) as unknown as { default: typeof pg }).default;
    } catch {
      throw dgentError("DGENT_MISSING_DEPENDENCY", "the fulltext plugin's postgres storage needs pg (npm install pg)", { unit: "fulltext", details: { package: "pg" } });
    }
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const sql = postgresSql(schema, language);
    try {
      for (const s of sql.create) await pool.query(s);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresFtsStorage(pool, sql);
  }

  async load(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const r of (await this.#pool.query(this.#sql.load)).rows) out.set(r.id as string, Number(r.created_at));
    return out;
  }
  async put(header: DatumHeader, text: string | null): Promise<void> {
    await this.#pool.query(this.#sql.put, [header.id, header.createdAt, text]);
  }
  async putMany(items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>): Promise<void> {
    if (items.length === 0) return;
    await this.#pool.query(this.#sql.putMany, [items.map((i) => i.header.id), items.map((i) => i.header.createdAt), items.map((i) => i.text)]);
  }
  async delete(id: string): Promise<void> {
    await this.#pool.query(this.#sql.delete, [id]);
  }
  async search(terms: readonly string[], k: number, candidates: readonly string[] | null): Promise<Hit[]> {
    if (terms.length === 0) return [];
    const { rows } = candidates === null ? await this.#pool.query(this.#sql.search, [tsQuery(terms), k]) : await this.#pool.query(this.#sql.searchIn, [tsQuery(terms), k, candidates]);
    return rows.map((r) => ({ id: r.id as string, score: Number(r.s) }));
  }
  async drop(): Promise<void> {
    await this.#pool.query(this.#sql.drop);
  }
  /** After a bulk catch-up: moves the GIN pending list into the index proper, and gives the planner statistics. */
  async optimize(): Promise<void> {
    await this.#pool.query(this.#sql.flushGin);
    await this.#pool.query(this.#sql.analyze);
  }
  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * The impact-ordered postings of the `simple` configuration (statements kept together so they can
 * be read and checked as text). Tables, all in the store's schema:
 *
 * - `dgent_fulltext_docs (id, created_at, has_text, len, terms)`: one row per indexed datum (the
 *   catalog the catch-up compares with the datums; `terms` lets a delete find its postings).
 * - `dgent_fulltext_postings (term, id, tf, len, impact)`: one row per distinct word of a datum;
 *   `impact` is BM25's term-frequency part tf·(k1+1) / (tf + k1·(1 − b + b·len/avgdl)) with avgdl
 *   the collection's average length when it was written. Btrees on (term, id) INCLUDE (tf, len)
 *   (intersections, exact scores, deletes) and on (term, impact DESC, id) (best postings first).
 * - `dgent_fulltext_terms (term, df)`: document frequencies, for idf.
 * - `dgent_fulltext_meta`: one row, (n, total_len, avgdl): the number of text datums, their total
 *   length, and the avgdl every stored impact and every score uses (set by the first datums;
 *   re-based on the live average, all impacts rewritten, when it has moved by more than 25 % while
 *   the index holds < 5 000 datums, or by more than 10 % at a bulk catch-up). Every write locks this row
 *   first: the index's writers (this process's pool, other processes) take their turns, and the
 *   document-frequency rows cannot deadlock.
 */
export function postgresImpactSql(schema: string) {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const S = q(schema);
  const docs = `${S}.${q("dgent_fulltext_docs")}`;
  const post = `${S}.${q("dgent_fulltext_postings")}`;
  const terms = `${S}.${q("dgent_fulltext_terms")}`;
  const meta = `${S}.${q("dgent_fulltext_meta")}`;
  const write = `${S}.${q("dgent_fulltext_write_v1")}`;
  // BM25's tf part, in one place (float8 throughout): the same expression writes impacts and scores.
  const tfPart = (tf: string, len: string, avg: string) => `(${tf}::float8 * ${K1 + 1} / (${tf}::float8 + ${K1} * (${1 - B} + ${B} * ${len}::float8 / ${avg})))`;
  const idf = (n: string, df: string) => `ln(1 + (${n}::float8 - ${df} + 0.5) / (${df} + 0.5))`;
  const avgOf = (m: string) => `(CASE WHEN ${m}.total_len = 0 THEN 1 ELSE ${m}.total_len::float8 / ${m}.n END)`;
  return {
    create: [
      `CREATE SCHEMA IF NOT EXISTS ${S}`,
      `CREATE TABLE IF NOT EXISTS ${docs} (id text PRIMARY KEY, created_at bigint NOT NULL, has_text boolean NOT NULL, len integer NOT NULL, terms text[] NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${post} (term text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, tf integer NOT NULL, len integer NOT NULL, impact float8 NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS ${q("dgent_fulltext_postings_term_id")} ON ${post} (term, id) INCLUDE (tf, len)`,
      `CREATE INDEX IF NOT EXISTS ${q("dgent_fulltext_postings_impact")} ON ${post} (term, impact DESC, id)`,
      `CREATE TABLE IF NOT EXISTS ${terms} (term text PRIMARY KEY, df integer NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${meta} (one boolean PRIMARY KEY DEFAULT true CHECK (one), n bigint NOT NULL, total_len bigint NOT NULL, avgdl float8)`,
      `INSERT INTO ${meta} (one, n, total_len, avgdl) VALUES (true, 0, 0, NULL) ON CONFLICT (one) DO NOTHING`,
      // One round trip per write; removes the entries of `rm`, then adds the given ones.
      `CREATE OR REPLACE FUNCTION ${write}(rm text[], ids text[], ats bigint[], has_text boolean[], lens integer[], p_ids text[], p_terms text[], p_tfs integer[]) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  m record;
  old_terms text[];
  old_n bigint;
  old_len bigint;
  new_n bigint;
  new_len bigint;
  av float8;
BEGIN
  SELECT * INTO m FROM ${meta} WHERE one FOR UPDATE;
  WITH od AS (DELETE FROM ${docs} d WHERE d.id = ANY(rm) RETURNING d.id, d.has_text, d.len, d.terms),
       op AS (DELETE FROM ${post} p USING od WHERE p.term = ANY(od.terms) AND p.id = od.id RETURNING p.term)
  SELECT (SELECT coalesce(array_agg(op.term), '{}') FROM op), (SELECT count(*) FILTER (WHERE od.has_text) FROM od), (SELECT coalesce(sum(od.len), 0) FROM od)
    INTO old_terms, old_n, old_len;
  SELECT count(*) FILTER (WHERE h), coalesce(sum(l) FILTER (WHERE h), 0) INTO new_n, new_len FROM unnest(has_text, lens) AS u(h, l);
  m.n := m.n - old_n + new_n;
  m.total_len := m.total_len - old_len + new_len;
  av := ${avgOf("m")};
  INSERT INTO ${docs} (id, created_at, has_text, len, terms)
    SELECT u.id, u.at, u.h, u.l, coalesce(g.ts, '{}')
    FROM unnest(ids, ats, has_text, lens) AS u(id, at, h, l)
    LEFT JOIN (SELECT x.i, array_agg(x.t) AS ts FROM unnest(p_ids, p_terms) AS x(i, t) GROUP BY x.i) g ON g.i = u.id;
  INSERT INTO ${terms} (term, df)
    SELECT z.t, sum(z.c) FROM (SELECT t, 1 FROM unnest(p_terms) t UNION ALL SELECT t, -1 FROM unnest(old_terms) t) AS z(t, c) GROUP BY z.t ORDER BY z.t
    ON CONFLICT (term) DO UPDATE SET df = ${terms}.df + EXCLUDED.df;
  -- The first datums fix avgdl; a small index (its first thousands) whose live average moved by more than 25 % is re-based now.
  IF m.avgdl IS NULL OR (m.n < 5000 AND (av > 1.25 * m.avgdl OR av < 0.8 * m.avgdl)) THEN
    IF m.avgdl IS NOT NULL THEN
      UPDATE ${post} SET impact = ${tfPart("tf", "len", "av")};
    END IF;
    m.avgdl := av;
  END IF;
  INSERT INTO ${post} (term, id, tf, len, impact)
    SELECT x.t, x.i, x.f, d.l, ${tfPart("x.f", "d.l", "m.avgdl")}
    FROM unnest(p_ids, p_terms, p_tfs) AS x(i, t, f) JOIN unnest(ids, lens) AS d(id, l) ON d.id = x.i;
  UPDATE ${meta} SET n = m.n, total_len = m.total_len, avgdl = m.avgdl WHERE one;
END
$fn$`,
    ],
    load: `SELECT id, created_at FROM ${docs}`,
    write: `SELECT ${write}($1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::integer[], $6::text[], $7::text[], $8::integer[])`,
    /**
     * The candidates of an unfiltered search, one round trip ($1 terms, $2 depth): for each term its
     * `depth` best postings by impact; every datum holding two or more of the terms (pairwise
     * joins on (term, id)); their exact BM25 scores; and per term its df and the last impact read.
     */
    search(count: number): string {
      const pairs: string[] = [];
      for (let i = 1; i <= count; i++) for (let j = i + 1; j <= count; j++) pairs.push(`SELECT a.id FROM ${post} a JOIN ${post} b ON b.term = ($1::text[])[${j}] AND b.id = a.id WHERE a.term = ($1::text[])[${i}]`);
      const multi = count <= 4 ? pairs.join(" UNION ") : `SELECT id FROM ${post} WHERE term = ANY($1::text[]) GROUP BY id HAVING count(*) > 1`;
      return `WITH m AS (SELECT n, coalesce(avgdl, 1) AS avg FROM ${meta} meta WHERE one),
 q AS (SELECT u.term, ${idf("m.n", "coalesce(t.df, 0)")} AS idf FROM m CROSS JOIN unnest($1::text[]) AS u(term) LEFT JOIN ${terms} t ON t.term = u.term),
 top AS (SELECT q.term, s.id, s.impact, row_number() OVER (PARTITION BY q.term ORDER BY s.impact DESC, s.id) AS rn FROM q CROSS JOIN LATERAL (SELECT id, impact FROM ${post} WHERE term = q.term ORDER BY impact DESC, id LIMIT $2) s),
 cand AS (SELECT id FROM top UNION ${pairs.length > 0 ? multi : "SELECT NULL::text WHERE false"}),
 scored AS (SELECT c.id, sum(q.idf * ${tfPart("p.tf", "p.len", "m.avg")}) AS score FROM cand c CROSS JOIN q CROSS JOIN m CROSS JOIN LATERAL (SELECT tf, len FROM ${post} x WHERE x.term = q.term AND x.id = c.id OFFSET 0) p GROUP BY c.id ORDER BY score DESC, c.id LIMIT $3),
 last AS (SELECT term, count(*) AS read, (array_agg(impact ORDER BY rn DESC))[1] AS impact, (array_agg(id ORDER BY rn DESC))[1] AS id FROM top GROUP BY term)
SELECT 'h' AS kind, id AS a, score AS b, NULL::bigint AS c, NULL::float8 AS d, NULL::text AS e FROM scored
UNION ALL SELECT 't', q.term, q.idf, coalesce(l.read, 0), l.impact, l.id FROM q LEFT JOIN last l ON l.term = q.term
UNION ALL SELECT 'm', NULL, m.avg, m.n, NULL, NULL FROM m`;
    },
    /** A filtered search: every posting of the terms among the candidates ($3, joined: a hash of them, or a probe per candidate), scored ($2 = k). */
    searchIn: `WITH m AS (SELECT n, coalesce(avgdl, 1) AS avg FROM ${meta} meta WHERE one),
 q AS (SELECT u.term, ${idf("(SELECT n FROM m)", "coalesce(t.df, 0)")} AS idf FROM unnest($1::text[]) AS u(term) LEFT JOIN ${terms} t ON t.term = u.term)
SELECT p.id, sum(q.idf * ${tfPart("p.tf", "p.len", "m.avg")}) AS score FROM m CROSS JOIN q JOIN ${post} p ON p.term = q.term JOIN unnest($3::text[]) AS c(id) ON c.id = p.id GROUP BY p.id ORDER BY score DESC, p.id LIMIT $2`,
    drop: [`DELETE FROM ${post}`, `DELETE FROM ${docs}`, `DELETE FROM ${terms}`, `UPDATE ${meta} SET n = 0, total_len = 0, avgdl = NULL`],
    lockMeta: `SELECT n, total_len, avgdl, ${avgOf("meta")} AS avg FROM ${meta} meta WHERE one FOR UPDATE`,
    reimpact: `UPDATE ${post} SET impact = ${tfPart("tf", "len", "$1::float8")}`,
    setAvgdl: `UPDATE ${meta} SET avgdl = $1 WHERE one`,
    avgdl: `SELECT avgdl FROM ${meta} WHERE one`,
    pruneTerms: `DELETE FROM ${terms} WHERE df <= 0`,
    vacuum: [`VACUUM ANALYZE ${post}`, `VACUUM ANALYZE ${docs}`, `VACUUM ANALYZE ${terms}`],
  };
}

interface PgClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  release(): void;
}

/** A text[] literal of these strings (standard or escape string syntax, whatever standard_conforming_strings says). */
export function sqlArray(values: readonly string[]): string {
  const lit = (v: string) => (v.includes("\\") ? `E'${v.replace(/\\/g, "\\\\").replace(/'/g, "''")}'` : `'${v.replace(/'/g, "''")}'`);
  return `ARRAY[${values.map(lit).join(",")}]::text[]`;
}

/** A datum's postings as the write function takes them: distinct words with their counts, and the length. */
export function postingsOf(text: string): { len: number; terms: Map<string, number> } {
  const tokens = tokenize(text);
  const terms = new Map<string, number>();
  for (const t of tokens) terms.set(t, (terms.get(t) ?? 0) + 1);
  return { len: tokens.length, terms };
}

interface SearchRow {
  kind: "h" | "t" | "m";
  a: string | null;
  b: number | string;
  c: number | string | null;
  d: number | string | null;
  e: string | null;
}

/** Statistics of the last search (what it read), for the tests and the benchmark. */
export interface ImpactSearchTrace {
  readonly rounds: number;
  readonly depth: number;
}

export class PostgresImpactStorage implements FtsStorage {
  readonly kind = "postgres";
  readonly filtersByHeader = false;
  readonly #pool: PgPool & { connect(): Promise<PgClient> };
  readonly #sql: ReturnType<typeof postgresImpactSql>;
  readonly #searchSql = new Map<number, string>();
  readonly #tag: string;
  lastTrace: ImpactSearchTrace | null = null;

  private constructor(pool: PgPool & { connect(): Promise<PgClient> }, sql: ReturnType<typeof postgresImpactSql>, schema: string) {
    this.#pool = pool;
    this.#sql = sql;
    this.#tag = createHash("sha1").update(schema).digest("hex").slice(0, 12);
  }

  static async open(url: string, schema: string): Promise<PostgresImpactStorage> {
    let pg: { Pool: new (o: { connectionString: string; max: number }) => PgPool & { connect(): Promise<PgClient> } };
    try {
      pg = ((await import("pg")) as unknown as { default: typeof pg }).default;
    } catch {
      throw dgentError("DGENT_MISSING_DEPENDENCY", "the fulltext plugin's postgres storage needs pg (npm install pg)", { unit: "fulltext", details: { package: "pg" } });
    }
    // The search statement is planned once per connection and its plan kept (a custom plan per call costs more than the
    // search); no JIT (a generic plan's estimate crosses jit_above_cost, and compiling costs ~300 ms a call). Set at
    // connection start (libpq's `options`), so no statement of a new connection runs before them or beside the first query.
    const pool = new pg.Pool({ connectionString: withSessionSettings(url, SESSION_SETTINGS), max: 2 });
    const sql = postgresImpactSql(schema);
    try {
      // Two processes opening the same schema at once: one creates, the other waits (a lock per schema).
      await inTransaction(pool, async (client) => {
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`dgent_fulltext:${schema}`]);
        for (const s of sql.create) await client.query(s);
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresImpactStorage(pool, sql, schema);
  }

  async load(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const r of (await this.#pool.query(this.#sql.load)).rows) out.set(r.id as string, Number(r.created_at));
    return out;
  }

  async #write(rm: readonly string[], items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>): Promise<void> {
    const ids: string[] = [];
    const ats: number[] = [];
    const hasText: boolean[] = [];
    const lens: number[] = [];
    const pIds: string[] = [];
    const pTerms: string[] = [];
    const pTfs: number[] = [];
    const seen = new Set<string>();
    // The last of several items with one id wins (as successive puts would).
    for (let i = items.length - 1; i >= 0; i--) {
      const { header, text } = items[i] as { header: DatumHeader; text: string | null };
      if (seen.has(header.id)) continue;
      seen.add(header.id);
      ids.push(header.id);
      ats.push(header.createdAt);
      hasText.push(text !== null);
      const { len, terms } = text === null ? { len: 0, terms: new Map<string, number>() } : postingsOf(text);
      lens.push(len);
      for (const [t, tf] of terms) {
        pIds.push(header.id);
        pTerms.push(t);
        pTfs.push(tf);
      }
    }
    await this.#pool.query(this.#sql.write, [[...new Set([...rm, ...ids])], ids, ats, hasText, lens, pIds, pTerms, pTfs]);
  }

  async put(header: DatumHeader, text: string | null): Promise<void> {
    await this.#write([], [{ header, text }]);
  }
  async putMany(items: ReadonlyArray<{ readonly header: DatumHeader; readonly text: string | null }>): Promise<void> {
    if (items.length > 0) await this.#write([], items);
  }
  async delete(id: string): Promise<void> {
    await this.#write([id], []);
  }

  /**
   * The k best by BM25 (with the index's avgdl), exactly. A datum holding two or more of the terms
   * is found by the pairwise joins on (term, id) and scored; a datum holding one term t only scores
   * idf(t)·impact, so the `depth` (≥ 2k) best postings of each term by impact hold every
   * single-term datum that can be in the top k. If the k-th score does not beat idf(t)·(the last
   * impact read) for a term whose postings were not all read, an unread one might (a tie across
   * the cut): read 4× deeper and score again.
   */
  async search(terms: readonly string[], k: number, candidates: readonly string[] | null): Promise<Hit[]> {
    if (terms.length === 0) return [];
    if (candidates !== null) {
      if (candidates.length === 0) return [];
      // Values written into the statement (simple protocol): planned for these ids, not with the pool's generic plans
      // (a generic plan of this join measured 2× slower over 1 000 ids).
      const text = this.#sql.searchIn.replace("$1::text[]", sqlArray(terms)).replace("$3::text[]", sqlArray(candidates)).replace("LIMIT $2", `LIMIT ${Math.trunc(k)}`);
      const { rows } = await this.#pool.query(text);
      return rows.map((r) => ({ id: r.id as string, score: Number(r.score) }));
    }
    let sql = this.#searchSql.get(terms.length);
    if (sql === undefined) this.#searchSql.set(terms.length, (sql = this.#sql.search(terms.length)));
    // A named statement: planned once per connection (the plan of this statement costs more than running it).
    const name = `dgent_fts_${this.#tag}_${terms.length}`;
    let depth = Math.max(2 * k, 20);
    for (let round = 1; ; round++) {
      const rows = (await this.#pool.query({ name, text: sql, values: [terms, depth, k] })).rows as unknown as SearchRow[];
      const hits: Hit[] = [];
      for (const row of rows) if (row.kind === "h") hits.push({ id: row.a as string, score: Number(row.b) });
      const kth = hits.length >= k ? (hits[k - 1] as Hit) : null;
      let complete = true;
      for (const t of rows) {
        if (t.kind !== "t" || Number(t.c) < depth || t.d === null) continue; // every posting of the term was read
        const bound = Number(t.b) * Number(t.d);
        // An unread single-term datum scores at most `bound` (the same float8 operations as its score); on a tie it comes
        // after the last read (impact DESC, id), so after the k-th when the k-th's id is smaller.
        if (kth !== null && (kth.score > bound || (kth.score === bound && kth.id < (t.e as string)))) continue;
        complete = false;
      }
      if (complete) {
        this.lastTrace = { rounds: round, depth };
        return hits;
      }
      depth *= 4;
    }
  }

  async drop(): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      await client.query(this.#sql.lockMeta);
      for (const s of this.#sql.drop) await client.query(s);
    });
  }

  /**
   * After a bulk catch-up: impacts recomputed with the live average length if it is more than 10 %
   * off the index's avgdl, words no datum holds forgotten, and VACUUM
   * ANALYZE (the visibility map lets the postings be read from the indexes alone; the planner gets statistics).
   */
  async optimize(): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      const m = (await client.query(this.#sql.lockMeta)).rows[0] as { avg: number; avgdl: number | null };
      const live = Number(m.avg);
      if (m.avgdl !== null && (live > 1.1 * Number(m.avgdl) || live < Number(m.avgdl) / 1.1)) {
        await client.query(this.#sql.reimpact, [live]);
        await client.query(this.#sql.setAvgdl, [live]);
      }
      await client.query(this.#sql.pruneTerms);
    });
    for (const s of this.#sql.vacuum) await this.#pool.query(s);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** Runs `body` in one transaction on a client of `pool`: committed when it returns, rolled back when it throws. */
async function inTransaction(pool: { connect(): Promise<PgClient> }, body: (client: PgClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await body(client);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** The settings of the index's own Postgres sessions (see `PostgresImpactStorage.open`). */
const SESSION_SETTINGS = "-c plan_cache_mode=force_generic_plan -c jit=off";

/**
 * `url` with `settings` appended to its `options` parameter (libpq's startup options, which
 * node-postgres reads from the URL), keeping any the URL has. A string that is not a URL is
 * returned as it is (the settings are then not applied: searches still work, planned per call).
 */
export function withSessionSettings(url: string, settings: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  const prior = parsed.searchParams.get("options");
  parsed.searchParams.set("options", prior ? `${prior} ${settings}` : settings);
  return parsed.toString();
}
