/**
 * Where the full-text index lives. Three storages, one contract:
 *
 * - `memory` (every tier): the in-process inverted index (tokens.ts), rebuilt from the datums at
 *   attach (100k short documents: see README.md for the measured time).
 * - `sqlite` (a SQLite tier with a file): an FTS5 table in a sidecar database `<file>-fulltext`,
 *   its own connection (the tier's connection is private and its write lock stays its own).
 * - `postgres` (a Postgres tier and the `postgresUrl` option): a table with a `tsvector` column and
 *   a GIN index in the store's schema, ranked by the server.
 */
import { createRequire } from "node:module";
import { unlinkSync } from "node:fs";
import { dgentError } from "../../core/errors.js";
import type { DatumHeader, ResolvedQuery } from "../../core/query.js";
import { InvertedIndex, type Hit } from "./tokens.js";

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
  query(sql: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
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
