/**
 * The SQLite storage: vectors in a `vec0` virtual table of the `sqlite-vec` extension, inside the
 * SQLite tier's own database file, through a second better-sqlite3 connection with the extension
 * loaded (the tier's connection is its own; WAL lets both work on one file). An id table maps
 * datum ids to vec0 rowids. Written in the same file, the vectors go wherever the file goes (a
 * copy of the `.db` is a copy of the index too); a connection without the extension still reads
 * every other table (only the vec0 table needs it).
 *
 * sqlite-vec 0.1 searches by brute force (no ANN index): `native` searches here are exact.
 */
import { createRequire } from "node:module";
import { importOptional } from "../../core/adapter-support.js";
import { dgentError, isDgentError, wrapError } from "../../core/errors.js";
import { pruneArtefacts, readLatestArtefact, writeArtefact } from "./artefact.js";
import type { Hit, Metric } from "./exact.js";
import type { StoredVector } from "./keys.js";
import type { Loaded, NativeSearch, SavedGraph, StorageContext, VectorStorage } from "./storage.js";

const UNIT = "recall";

/** The better-sqlite3 surface used here. */
interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(on?: boolean): Statement;
  raw(on?: boolean): Statement;
}
interface Db {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(sql: string): unknown;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

/** The table names of one model, from its folder name (letters, digits and `_` only). */
export function tableNames(key: string): { ids: string; vec: string } {
  const safe = key.replace(/[^a-z0-9]/gi, "_").toLowerCase();
  return { ids: `dgent_recall_${safe}_ids`, vec: `dgent_recall_${safe}_vec` };
}

/** vec0 knows cosine and L2; an index for `dot` keeps a cosine table (dot searches run in process). */
const VEC0_METRIC: Record<Metric, string> = { cosine: "cosine", l2: "l2", dot: "cosine" };

/** The statements, exported for the tests of their text. */
export function sqliteVecSql(key: string, dimensions: number, metric: Metric) {
  const t = tableNames(key);
  const ids = `"${t.ids}"`;
  const vec = `"${t.vec}"`;
  return {
    schema: [
      `CREATE TABLE IF NOT EXISTS dgent_recall_models (key TEXT PRIMARY KEY, model TEXT NOT NULL, dimensions INTEGER NOT NULL, metric TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${ids} (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, is_text INTEGER NOT NULL)`,
      `CREATE VIRTUAL TABLE IF NOT EXISTS ${vec} USING vec0(embedding float[${dimensions}] distance_metric=${VEC0_METRIC[metric]})`,
    ],
    model: `SELECT model, dimensions, metric FROM dgent_recall_models WHERE key = ?`,
    addModel: `INSERT INTO dgent_recall_models (key, model, dimensions, metric) VALUES (?, ?, ?, ?)`,
    load: `SELECT i.id, i.created_at, i.is_text, v.embedding FROM ${ids} i LEFT JOIN ${vec} v ON v.rowid = i.rowid`,
    upsert: `INSERT INTO ${ids} (id, created_at, is_text) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, is_text = excluded.is_text RETURNING rowid`,
    deleteVec: `DELETE FROM ${vec} WHERE rowid = ?`,
    insertVec: `INSERT INTO ${vec} (rowid, embedding) VALUES (?, ?)`,
    deleteId: `DELETE FROM ${ids} WHERE id = ? RETURNING rowid`,
    knn: `SELECT i.id, knn.distance FROM (SELECT rowid, distance FROM ${vec} WHERE embedding MATCH ? AND k = ?) knn JOIN ${ids} i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`,
    knnIn: `SELECT i.id, knn.distance FROM (SELECT rowid, distance FROM ${vec} WHERE embedding MATCH ? AND k = ? AND rowid IN (SELECT rowid FROM ${ids} WHERE id IN (SELECT value FROM json_each(?)))) knn JOIN ${ids} i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`,
    l2: `SELECT i.id, vec_distance_l2(v.embedding, ?) AS distance FROM ${vec} v JOIN ${ids} i ON i.rowid = v.rowid ORDER BY distance, i.id LIMIT ?`,
    l2In: `SELECT i.id, vec_distance_l2(v.embedding, ?) AS distance FROM ${ids} i JOIN ${vec} v ON v.rowid = i.rowid WHERE i.id IN (SELECT value FROM json_each(?)) ORDER BY distance, i.id LIMIT ?`,
    drop: [`DROP TABLE IF EXISTS ${vec}`, `DROP TABLE IF EXISTS ${ids}`, `DELETE FROM dgent_recall_models WHERE key = ?`],
  };
}

function floats(blob: Buffer): Float32Array {
  const out = new Float32Array(blob.byteLength / 4);
  new Uint8Array(out.buffer).set(blob);
  return out;
}

const blob = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

export class SqliteVecStorage implements VectorStorage {
  readonly kind = "sqlite-vec" as const;
  readonly native: NativeSearch;
  readonly #ctx: StorageContext;
  readonly #db: Db;
  readonly #sql: ReturnType<typeof sqliteVecSql>;
  readonly #s: Record<"upsert" | "deleteVec" | "insertVec" | "deleteId" | "knn" | "knnIn" | "l2" | "l2In" | "load", Statement>;
  readonly #putMany: (vs: readonly StoredVector[]) => void;
  readonly #delete: (id: string) => void;
  readonly #metric: Metric;

  /** Opens the connection (use `openSqliteVec`). */
  private constructor(ctx: StorageContext, db: Db, metric: Metric, rebuild: boolean) {
    this.#ctx = ctx;
    this.#db = db;
    this.#metric = metric;
    this.#sql = sqliteVecSql(ctx.key, ctx.dimensions, metric);
    const sql = this.#sql;
    this.#db.transaction(() => {
      if (rebuild) {
        db.exec(sql.schema[0] as string);
        db.exec(sql.drop[0] as string);
        db.exec(sql.drop[1] as string);
        db.prepare(sql.drop[2] as string).run(ctx.key);
      }
      for (const statement of sql.schema) db.exec(statement);
      const known = db.prepare(sql.model).get(ctx.key) as { model: string; dimensions: number; metric: string } | undefined;
      if (!known) db.prepare(sql.addModel).run(ctx.key, ctx.model, ctx.dimensions, VEC0_METRIC[metric]);
      else if (known.dimensions !== ctx.dimensions || known.metric !== VEC0_METRIC[metric]) {
        throw dgentError(
          "DGENT_INVALID_OPTIONS",
          `the SQLite file holds vectors of model ${JSON.stringify(known.model)} with ${known.dimensions} dimensions (${known.metric}); the plugin is set for ${ctx.dimensions} (${VEC0_METRIC[metric]}): run \`dgent reindex --full\` (or attach(store, { rebuild: true })) to embed everything again`,
          { unit: UNIT, details: { stored: known, wanted: { dimensions: ctx.dimensions, metric: VEC0_METRIC[metric] } } },
        );
      }
    })();
    this.#s = {
      upsert: db.prepare(sql.upsert).pluck(true),
      deleteVec: db.prepare(sql.deleteVec),
      insertVec: db.prepare(sql.insertVec),
      deleteId: db.prepare(sql.deleteId).pluck(true),
      knn: db.prepare(sql.knn).raw(true),
      knnIn: db.prepare(sql.knnIn).raw(true),
      l2: db.prepare(sql.l2).raw(true),
      l2In: db.prepare(sql.l2In).raw(true),
      load: db.prepare(sql.load).raw(true),
    };
    const s = this.#s;
    this.#putMany = db.transaction((vs: readonly StoredVector[]) => {
      for (const v of vs) {
        const rowid = s.upsert.get(v.id, v.createdAt, v.vector === null ? 0 : 1) as number;
        s.deleteVec.run(BigInt(rowid));
        if (v.vector !== null) s.insertVec.run(BigInt(rowid), blob(v.vector));
      }
    });
    this.#delete = db.transaction((id: string) => {
      const rowid = s.deleteId.get(id) as number | undefined;
      if (rowid !== undefined) s.deleteVec.run(BigInt(rowid));
    });
    const supported: Metric[] = VEC0_METRIC[metric] === "cosine" ? ["cosine", "l2"] : ["l2"];
    this.native = { metrics: supported, search: (q, k, m, candidates) => this.#search(q, k, m, candidates) };
  }

  /** Opens `path` with sqlite-vec loaded; `DGENT_MISSING_DEPENDENCY` when it is not installed. */
  static async open(ctx: StorageContext, path: string, metric: Metric, busyTimeoutMs: number, rebuild = false): Promise<SqliteVecStorage> {
    const vec = await importOptional<{ load(db: unknown): void }>("sqlite-vec", UNIT).catch((error: unknown) => {
      if (!isDgentError(error, "DGENT_MISSING_DEPENDENCY")) throw error;
      throw dgentError("DGENT_MISSING_DEPENDENCY", 'the recall plugin\'s SQLite storage needs the package "sqlite-vec", which is not installed; run: npm install sqlite-vec (or set storage: "datums")', {
        unit: UNIT,
        cause: error,
        details: { package: "sqlite-vec" },
      });
    });
    const Database = createRequire(import.meta.url)("better-sqlite3") as new (path: string, options?: { timeout?: number; fileMustExist?: boolean }) => Db;
    let db: Db | null = null;
    try {
      db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: true });
      vec.load(db);
      const storage = new SqliteVecStorage(ctx, db, metric, rebuild);
      if (rebuild) await pruneArtefacts(ctx.store, ctx.key, null);
      return storage;
    } catch (error) {
      db?.close();
      if (isDgentError(error)) throw error;
      throw wrapError(error, "DGENT_BACKEND_ERROR", `cannot keep vectors in ${path}`, { unit: UNIT });
    }
  }

  async load(): Promise<Loaded> {
    const rows = this.#s.load.all() as Array<[string, number, number, Buffer | null]>;
    const vectors: StoredVector[] = rows.map(([id, createdAt, isText, embedding]) => ({ id, createdAt, vector: isText && embedding ? floats(embedding) : null }));
    const artefact = await readLatestArtefact(this.#ctx.store, this.#ctx.key, this.#ctx.dimensions, this.#ctx.warn);
    const g = artefact?.manifest.graph;
    const graph: SavedGraph | null =
      artefact && g && artefact.graph
        ? {
            bytes: artefact.graph,
            settings: { metric: g.metric, connectivity: g.connectivity, expansionAdd: g.expansionAdd, expansionSearch: g.expansionSearch, quantization: g.quantization ?? "f32" },
            keys: artefact.records.filter((r) => r.key !== 0n).map((r) => ({ id: r.id, key: r.key, createdAt: r.createdAt })),
          }
        : null;
    return { vectors, graph };
  }

  async put(v: StoredVector): Promise<void> {
    this.#guard(() => this.#putMany([v]), "store a vector");
  }

  async putMany(vs: readonly StoredVector[]): Promise<void> {
    if (vs.length) this.#guard(() => this.#putMany(vs), "store vectors");
  }

  async delete(id: string): Promise<void> {
    this.#guard(() => this.#delete(id), "delete a vector");
  }

  /** The vectors are in the tables already; only the graph (with its keys) is saved, as an artefact. */
  async save(all: () => StoredVector[], graph: SavedGraph | null): Promise<string | null> {
    const { store, key, model, dimensions, chunkBytes } = this.#ctx;
    if (!graph) {
      await pruneArtefacts(store, key, null);
      return null;
    }
    void all;
    const records = graph.keys.map((k) => ({ id: k.id, createdAt: k.createdAt, key: k.key, vector: new Float32Array(0) }));
    const gen = await writeArtefact(store, key, model, dimensions, records, false, { bytes: graph.bytes, settings: graph.settings }, chunkBytes);
    await pruneArtefacts(store, key, gen);
    return gen;
  }

  async drop(): Promise<void> {
    const sql = this.#sql;
    this.#guard(() => {
      this.#db.transaction(() => {
        this.#db.exec(sql.drop[0] as string);
        this.#db.exec(sql.drop[1] as string);
        this.#db.prepare(sql.drop[2] as string).run(this.#ctx.key);
      })();
    }, "drop the vector tables");
    await pruneArtefacts(this.#ctx.store, this.#ctx.key, null);
  }

  async close(): Promise<void> {
    this.#db.close();
  }

  async #search(q: Float32Array, k: number, metric: Metric, candidates: readonly string[] | null): Promise<Hit[]> {
    if (!this.native.metrics.includes(metric)) {
      throw dgentError("DGENT_UNSUPPORTED", `sqlite-vec cannot search by ${metric} in a ${VEC0_METRIC[this.#metric]} table; search with index "exact" or "auto"`, { unit: UNIT });
    }
    if (candidates !== null && candidates.length === 0) return [];
    const json = candidates === null ? null : JSON.stringify(candidates);
    const rows = this.#guard(() => {
      if (metric === "l2") return (candidates === null ? this.#s.l2.all(blob(q), k) : this.#s.l2In.all(blob(q), json, k)) as Array<[string, number]>;
      return (candidates === null ? this.#s.knn.all(blob(q), k) : this.#s.knnIn.all(blob(q), k, json)) as Array<[string, number]>;
    }, "search");
    return rows.map(([id, distance]) => ({ id, score: metric === "l2" ? -distance : 1 - distance }));
  }

  #guard<T>(op: () => T, what: string): T {
    try {
      return op();
    } catch (error) {
      if (isDgentError(error)) throw error;
      const code = (error as { code?: string }).code;
      throw wrapError(error, code === "SQLITE_BUSY" ? "DGENT_UNAVAILABLE" : "DGENT_BACKEND_ERROR", `sqlite-vec could not ${what}`, { unit: UNIT });
    }
  }
}
