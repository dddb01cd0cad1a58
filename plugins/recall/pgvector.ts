/**
 * The Postgres storage, when the server has the `pgvector` extension: one table per model in the
 * tier's schema, `(id text primary key, created_at double precision, embedding vector(d))`, with an
 * HNSW index for the plugin's metric; the server searches, nothing is kept in process. Detected
 * with `SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`; a server without it (or a
 * role that may not `CREATE EXTENSION`) falls back to the datum storage and says why in `stats()`.
 *
 * Kept deliberately small. A filter is applied as `id = ANY($candidates)`, which Postgres answers
 * exactly from the primary key (no HNSW post-filtering that could return fewer than k).
 */
import { dgentError, isDgentError, wrapError } from "../../core/errors.js";
import type { Hit, Metric } from "./exact.js";
import type { StoredVector } from "./keys.js";
import type { Loaded, NativeSearch, StorageContext, VectorStorage } from "./storage.js";

const UNIT = "recall";

const OPERATOR: Record<Metric, string> = { cosine: "<=>", l2: "<->", dot: "<#>" };
const OPCLASS: Record<Metric, string> = { cosine: "vector_cosine_ops", l2: "vector_l2_ops", dot: "vector_ip_ops" };

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The statements for one model's table in `schema`; `$1` is a vector literal (`vectorLiteral`). */
export function pgvectorSql(schema: string, key: string, dimensions: number, metric: Metric) {
  const table = `${ident(schema)}.${ident(`dgent_recall_${key.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`)}`;
  const op = OPERATOR[metric];
  return {
    detect: `SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`,
    setup: [
      `CREATE EXTENSION IF NOT EXISTS vector`,
      `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, created_at double precision NOT NULL, embedding vector(${dimensions}))`,
      `CREATE INDEX IF NOT EXISTS ${ident(`dgent_recall_${key.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_hnsw`)} ON ${table} USING hnsw (embedding ${OPCLASS[metric]})`,
    ],
    load: `SELECT id, created_at, embedding IS NOT NULL AS is_text FROM ${table}`,
    upsert: `INSERT INTO ${table} (id, created_at, embedding) VALUES ($1, $2, $3::vector) ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, embedding = EXCLUDED.embedding`,
    delete: `DELETE FROM ${table} WHERE id = $1`,
    drop: `DROP TABLE IF EXISTS ${table}`,
    knn: `SELECT id, embedding ${op} $1::vector AS distance FROM ${table} WHERE embedding IS NOT NULL ORDER BY embedding ${op} $1::vector LIMIT $2`,
    knnIn: `SELECT id, embedding ${op} $1::vector AS distance FROM ${table} WHERE embedding IS NOT NULL AND id = ANY($3::text[]) ORDER BY embedding ${op} $1::vector, id LIMIT $2`,
  };
}

/** A vector as pgvector's text form, `[0.1,0.2,…]`. */
export function vectorLiteral(v: Float32Array): string {
  return `[${Array.from(v, (x) => String(x)).join(",")}]`;
}

/** pgvector's distance as this plugin's score: cosine `1 − d`, l2 `−d`, dot `−d` (`<#>` is the negative product). */
export function pgScore(metric: Metric, distance: number): number {
  return metric === "cosine" ? 1 - distance : -distance;
}

interface Pool {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}

/** Whether the server offers pgvector; never throws for a missing extension. */
export async function detectPgvector(pool: Pool): Promise<boolean> {
  const { rows } = await pool.query(pgvectorSql("public", "x", 1, "cosine").detect);
  return rows.length > 0;
}

export class PgvectorStorage implements VectorStorage {
  readonly kind = "pgvector" as const;
  readonly native: NativeSearch;
  readonly #pool: Pool;
  readonly #sql: ReturnType<typeof pgvectorSql>;

  private constructor(pool: Pool, sql: ReturnType<typeof pgvectorSql>, metric: Metric) {
    this.#pool = pool;
    this.#sql = sql;
    this.native = { metrics: [metric], search: (q, k, m, candidates) => this.#search(q, k, m, candidates) };
  }

  /**
   * Connects to `url` and, when the server has pgvector and this role may use it, sets up the
   * model's table. Returns the storage, or the reason it cannot be used.
   */
  static async open(ctx: StorageContext, url: string, schema: string, metric: Metric): Promise<PgvectorStorage | { reason: string }> {
    const pg = (await import("pg")).default;
    const pool = new pg.Pool({ connectionString: url, max: 2 }) as unknown as Pool;
    const sql = pgvectorSql(schema, ctx.key, ctx.dimensions, metric);
    try {
      if (!(await detectPgvector(pool))) {
        await pool.end();
        return { reason: "the Postgres server does not have the pgvector extension (pg_available_extensions has no 'vector')" };
      }
      for (const statement of sql.setup) await pool.query(statement);
      return new PgvectorStorage(pool, sql, metric);
    } catch (error) {
      await pool.end().catch(() => undefined);
      return { reason: `pgvector could not be set up: ${(error as Error).message}` };
    }
  }

  async load(): Promise<Loaded> {
    const { rows } = await this.#run<{ id: string; created_at: number; is_text: boolean }>(this.#sql.load, []);
    // Not loaded into the process: a zero-length vector stands for "stored on the server".
    return { vectors: rows.map((r) => ({ id: r.id, createdAt: Number(r.created_at), vector: r.is_text ? new Float32Array(0) : null })), graph: null };
  }

  async put(v: StoredVector): Promise<void> {
    await this.#run(this.#sql.upsert, [v.id, v.createdAt, v.vector === null ? null : vectorLiteral(v.vector)]);
  }

  async putMany(vs: readonly StoredVector[]): Promise<void> {
    for (const v of vs) await this.put(v);
  }

  async delete(id: string): Promise<void> {
    await this.#run(this.#sql.delete, [id]);
  }

  async save(): Promise<null> {
    return null;
  }

  async drop(): Promise<void> {
    await this.#run(this.#sql.drop, []);
    for (const statement of this.#sql.setup.slice(1)) await this.#run(statement, []);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #search(q: Float32Array, k: number, metric: Metric, candidates: readonly string[] | null): Promise<Hit[]> {
    if (!this.native.metrics.includes(metric)) throw dgentError("DGENT_UNSUPPORTED", `the pgvector table is indexed for ${this.native.metrics[0]}; search by ${metric} is not offered`, { unit: UNIT });
    if (candidates !== null && candidates.length === 0) return [];
    const params: unknown[] = [vectorLiteral(q), k];
    if (candidates !== null) params.push(candidates);
    const { rows } = await this.#run<{ id: string; distance: number }>(candidates === null ? this.#sql.knn : this.#sql.knnIn, params);
    return rows.map((r) => ({ id: r.id, score: pgScore(metric, Number(r.distance)) }));
  }

  async #run<R>(sql: string, params: unknown[]): Promise<{ rows: R[] }> {
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (error) {
      if (isDgentError(error)) throw error;
      throw wrapError(error, "DGENT_BACKEND_ERROR", "pgvector", { unit: UNIT });
    }
  }
}
