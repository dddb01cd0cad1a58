/**
 * The SQLite storage: vectors in a `vec0` virtual table of the `sqlite-vec` extension, inside the
 * SQLite tier's own database file, through a second better-sqlite3 connection with the extension
 * loaded (the tier's connection is its own; WAL lets both work on one file). An id table maps
 * datum ids to vec0 rowids. Written in the same file, the vectors go wherever the file goes (a
 * copy of the `.db` is a copy of the index too); a connection without the extension still reads
 * every other table (only the vec0 table needs it).
 *
 * sqlite-vec 0.1 searches by brute force (no ANN index). From CELLS_FROM vectors on, the vec0
 * table is partitioned into cells (cells.ts: k-means centroids, the cell a vec0 `partition key`),
 * and an unfiltered `native` search runs sqlite-vec's KNN in the cells nearest the query only
 * (approximate: the probe count is tuned for TARGET_RECALL at each training); below that, and for
 * every filtered search, it is exact over all cells. The cells are trained by `reindex` (`dgent
 * reindex`, `memory.reindex()`), from the vectors in the table, never by a save.
 *
 * A file written before the cells (a vec0 table without the partition key, `…_vec`) is upgraded
 * when opened: its vectors are copied, in one transaction, into the partitioned table (all in
 * cell 0 until the next training) and the old table dropped.
 *
 * The connection maps the file (`PRAGMA mmap_size`, as the SQLite tier does by default): a vec0
 * chunk is a ~1.5 MB blob on overflow pages, which SQLite (built with DIRECT_OVERFLOW_READ) reads
 * with one `read` call per 4 KiB page, bypassing its page cache; at 100 000 vectors of 384
 * dimensions that was 37 500 calls and ~100 ms of CPU a query, ~33 ms through the map. A filter
 * with few candidates scores them by rowid (`vec_distance_*` on each) instead of a KNN pass over
 * every chunk, which reads all of them even when `rowid IN (…)` skips most distances.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { importOptional } from "../../core/adapter-support.js";
import { dgentError, isDgentError, wrapError } from "../../core/errors.js";
import { pruneArtefacts, readLatestArtefact, writeArtefact } from "./artefact.js";
import type { Hit, Metric } from "./exact.js";
import { Cells, cellCount } from "./cells.js";
import type { StoredVector } from "./keys.js";
import type { Loaded, NativeSearch, SavedGraph, StorageContext, VectorStorage } from "./storage.js";

const UNIT = "recall";

/** At most this many candidates, a filtered search scores them one by one (~6 µs each at 384 dims) rather than by a KNN pass over all chunks (~18 ms at 100 000 vectors); measured crossover ~3 000. */
export const DIRECT_CANDIDATES = 2500;

/** From this many vectors on, the table is split into cells (below, a KNN over all of it costs < 4 ms at 384 dims). */
export const CELLS_FROM = 10_000;

/** The fewest cells an unfiltered search reads (of ~105 at 100 000 vectors: ~4 % of the vectors). */
export const PROBES = 4;

/**
 * The recall@10 the probe count is tuned for at each training: SAMPLE_QUERIES stored vectors are
 * searched (themselves left out) with PROBES, 2 × PROBES… cells against the exact KNN, and the
 * first count that reaches it is kept — all the cells (an exact KNN) when none does, as on data
 * without clusters, so the cells never trade recall away silently.
 */
export const TARGET_RECALL = 0.95;
export const SAMPLE_QUERIES = 32;

/** The map of the connection: 2 GiB, the SQLite tier's own default `mmapSize` (SQLite caps it at 2 GiB − 64 KiB). */
export const DEFAULT_MMAP_SIZE = 2 ** 31;

/** A search's row: a datum id and its distance (NULL: a zero vector's cosine distance). */
type Row = [string, number | null];

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
  transaction<A extends unknown[]>(fn: (...args: A) => void): ((...args: A) => void) & { immediate(...args: A): void };
  close(): void;
}

/**
 * The table names of one model, from its folder name (letters, digits and `_` only). `legacyVec`:
 * the vec0 table of files written before the cells (no partition key), upgraded on open.
 */
export function tableNames(key: string): { ids: string; vec: string; cells: string; legacyVec: string } {
  const safe = key.replace(/[^a-z0-9]/gi, "_").toLowerCase();
  return { ids: `dgent_recall_${safe}_ids`, vec: `dgent_recall_${safe}_vecp`, cells: `dgent_recall_${safe}_cells`, legacyVec: `dgent_recall_${safe}_vec` };
}

/** vec0 knows cosine and L2; an index for `dot` keeps a cosine table (dot searches run in process). */
const VEC0_METRIC: Record<Metric, string> = { cosine: "cosine", l2: "l2", dot: "cosine" };

/** The statements, exported for the tests of their text. */
export function sqliteVecSql(key: string, dimensions: number, metric: Metric) {
  const t = tableNames(key);
  const ids = `"${t.ids}"`;
  const vec = `"${t.vec}"`;
  const cells = `"${t.cells}"`;
  const legacy = `"${t.legacyVec}"`;
  const createVec = `CREATE VIRTUAL TABLE IF NOT EXISTS ${vec} USING vec0(cell integer partition key, embedding float[${dimensions}] distance_metric=${VEC0_METRIC[metric]}, chunk_size=256)`;
  const arm = `SELECT rowid, distance FROM ${vec} WHERE embedding MATCH ? AND k = ? AND cell = ?`;
  return {
    schema: [
      `CREATE TABLE IF NOT EXISTS dgent_recall_models (key TEXT PRIMARY KEY, model TEXT NOT NULL, dimensions INTEGER NOT NULL, metric TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${ids} (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, is_text INTEGER NOT NULL)`,
      createVec,
      `CREATE TABLE IF NOT EXISTS ${cells} (cell INTEGER PRIMARY KEY, centroid BLOB NOT NULL, trained_n INTEGER NOT NULL, probes INTEGER NOT NULL, generation TEXT NOT NULL)`,
    ],
    /** The legacy table, if the file has one (then: upgrade, copy, drop). */
    legacy: `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '${t.legacyVec}'`,
    upgrade: [`INSERT INTO ${vec} (rowid, cell, embedding) SELECT rowid, 0, embedding FROM ${legacy}`, `DROP TABLE ${legacy}`],
    createVec,
    dropVec: `DROP TABLE IF EXISTS ${vec}`,
    count: `SELECT count(*) FROM ${ids} WHERE is_text = 1`,
    cells: `SELECT cell, centroid, trained_n, probes, generation FROM ${cells} ORDER BY cell`,
    /** The training's generation: a new random value at every training, whatever the count. */
    generation: `SELECT generation FROM ${cells} WHERE cell = 0`,
    clearCells: `DELETE FROM ${cells}`,
    addCell: `INSERT INTO ${cells} (cell, centroid, trained_n, probes, generation) VALUES (?, ?, ?, ?, ?)`,
    /** Rowids only, for the tuning of the probe count. */
    knnRowids: `SELECT rowid FROM ${vec} WHERE embedding MATCH ? AND k = ?`,
    knnCellsRowids: (p: number) => `SELECT rowid, distance FROM (${Array.from({ length: p }, () => arm).join(" UNION ALL ")}) ORDER BY distance`,
    all: `SELECT rowid, embedding FROM ${vec}`,
    /** sqlite-vec's KNN in `p` cells (a KNN per cell, merged). */
    knnCells: (p: number) => `SELECT i.id, knn.distance FROM (${Array.from({ length: p }, () => arm).join(" UNION ALL ")}) knn JOIN ${ids} i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`,
    model: `SELECT model, dimensions, metric FROM dgent_recall_models WHERE key = ?`,
    addModel: `INSERT INTO dgent_recall_models (key, model, dimensions, metric) VALUES (?, ?, ?, ?)`,
    load: `SELECT i.id, i.created_at, i.is_text, v.embedding FROM ${ids} i LEFT JOIN ${vec} v ON v.rowid = i.rowid`,
    upsert: `INSERT INTO ${ids} (id, created_at, is_text) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, is_text = excluded.is_text RETURNING rowid`,
    deleteVec: `DELETE FROM ${vec} WHERE rowid = ?`,
    insertVec: `INSERT INTO ${vec} (rowid, cell, embedding) VALUES (?, ?, ?)`,
    deleteId: `DELETE FROM ${ids} WHERE id = ? RETURNING rowid`,
    knn: `SELECT i.id, knn.distance FROM (SELECT rowid, distance FROM ${vec} WHERE embedding MATCH ? AND k = ?) knn JOIN ${ids} i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`,
    knnIn: `SELECT i.id, knn.distance FROM (SELECT rowid, distance FROM ${vec} WHERE embedding MATCH ? AND k = ? AND rowid IN (SELECT rowid FROM ${ids} WHERE id IN (SELECT value FROM json_each(?)))) knn JOIN ${ids} i ON i.rowid = knn.rowid ORDER BY knn.distance, i.id`,
    l2: `SELECT i.id, vec_distance_l2(v.embedding, ?) AS distance FROM ${vec} v JOIN ${ids} i ON i.rowid = v.rowid ORDER BY distance, i.id LIMIT ?`,
    l2In: `SELECT i.id, vec_distance_l2(v.embedding, ?) AS distance FROM ${ids} i JOIN ${vec} v ON v.rowid = i.rowid WHERE i.id IN (SELECT value FROM json_each(?)) ORDER BY distance, i.id LIMIT ?`,
    cosineIn: `SELECT i.id, vec_distance_cosine(v.embedding, ?) AS distance FROM ${ids} i JOIN ${vec} v ON v.rowid = i.rowid WHERE i.id IN (SELECT value FROM json_each(?)) ORDER BY distance, i.id LIMIT ?`,
    drop: [`DROP TABLE IF EXISTS ${vec}`, `DROP TABLE IF EXISTS ${ids}`, `DELETE FROM dgent_recall_models WHERE key = ?`, `DROP TABLE IF EXISTS ${cells}`, `DROP TABLE IF EXISTS ${legacy}`],
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
  readonly #s: Record<"upsert" | "deleteVec" | "insertVec" | "deleteId" | "knn" | "knnIn" | "cosineIn" | "l2" | "l2In" | "load", Statement>;
  readonly #putMany: (vs: readonly StoredVector[]) => void;
  readonly #delete: (id: string) => void;
  readonly #metric: Metric;
  /** The centroids (null: not trained, everything in cell 0) and the count they were trained at. */
  #cells: Cells | null = null;
  #trainedN = 0;
  /** Cells read by an unfiltered search (tuned at training; all of them: the plain KNN). */
  #probes = PROBES;
  readonly #knnCells = new Map<number, Statement>();
  readonly #generationNow: Statement;
  /** The generation of the centroids held (null: none), to notice another connection's training. */
  #generation: string | null = null;

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
        SqliteVecStorage.#dropAll(db, sql, ctx.key);
      }
      for (const statement of sql.schema) db.exec(statement);
      if (db.prepare(sql.legacy).get() !== undefined) for (const statement of sql.upgrade) db.exec(statement);
      const known = db.prepare(sql.model).get(ctx.key) as { model: string; dimensions: number; metric: string } | undefined;
      if (!known) db.prepare(sql.addModel).run(ctx.key, ctx.model, ctx.dimensions, VEC0_METRIC[metric]);
      else if (known.dimensions !== ctx.dimensions || known.metric !== VEC0_METRIC[metric]) {
        throw dgentError(
          "DGENT_INVALID_OPTIONS",
          `the SQLite file holds vectors of model ${JSON.stringify(known.model)} with ${known.dimensions} dimensions (${known.metric}); the plugin is set for ${ctx.dimensions} (${VEC0_METRIC[metric]}): run \`dgent reindex --full\` (or attach(store, { rebuild: true })) to embed everything again`,
          { unit: UNIT, details: { stored: known, wanted: { dimensions: ctx.dimensions, metric: VEC0_METRIC[metric] } } },
        );
      }
    }).immediate();
    this.#s = {
      upsert: db.prepare(sql.upsert).pluck(true),
      deleteVec: db.prepare(sql.deleteVec),
      insertVec: db.prepare(sql.insertVec),
      deleteId: db.prepare(sql.deleteId).pluck(true),
      knn: db.prepare(sql.knn).raw(true),
      knnIn: db.prepare(sql.knnIn).raw(true),
      cosineIn: db.prepare(sql.cosineIn).raw(true),
      l2: db.prepare(sql.l2).raw(true),
      l2In: db.prepare(sql.l2In).raw(true),
      load: db.prepare(sql.load).raw(true),
    };
    this.#generationNow = db.prepare(sql.generation).pluck(true);
    this.#loadCells();
    const s = this.#s;
    this.#putMany = db.transaction((vs: readonly StoredVector[]) => {
      this.#freshCells();
      for (const v of vs) {
        const rowid = s.upsert.get(v.id, v.createdAt, v.vector === null ? 0 : 1) as number;
        s.deleteVec.run(BigInt(rowid));
        if (v.vector !== null) s.insertVec.run(BigInt(rowid), BigInt(this.#cells ? this.#cells.nearest(v.vector) : 0), blob(v.vector));
      }
    });
    this.#delete = db.transaction((id: string) => {
      const rowid = s.deleteId.get(id) as number | undefined;
      if (rowid !== undefined) s.deleteVec.run(BigInt(rowid));
    });
    const supported: Metric[] = VEC0_METRIC[metric] === "cosine" ? ["cosine", "l2"] : ["l2"];
    this.native = { metrics: supported, search: (q, k, m, candidates) => this.#search(q, k, m, candidates) };
  }

  static #dropAll(db: Db, sql: ReturnType<typeof sqliteVecSql>, key: string): void {
    for (const [i, statement] of sql.drop.entries()) {
      if (i === 2) db.prepare(statement).run(key);
      else db.exec(statement);
    }
  }

  /** Reads the centroids (another process may have trained them since). */
  #loadCells(): void {
    const rows = this.#db.prepare(this.#sql.cells).raw(true).all() as Array<[number, Buffer, number, number, string]>;
    this.#cells = rows.length > 1 ? new Cells(rows.map(([, c]) => floats(c)), VEC0_METRIC[this.#metric] === "l2" ? "l2" : "cosine") : null;
    this.#trainedN = rows[0]?.[2] ?? 0;
    this.#probes = rows[0]?.[3] ?? PROBES;
    this.#generation = rows[0]?.[4] ?? null;
  }

  /** Reloads the centroids when another connection trained them again (one indexed read of the generation). */
  #freshCells(): void {
    const now = (this.#generationNow.get() as string | undefined) ?? null;
    if (now !== this.#generation) this.#loadCells();
  }

  /**
   * Splits the table into cells (again) when it has CELLS_FROM vectors: k-means on the table's
   * vectors, then the vec0 table rewritten with each vector in its nearest cell, and the probe
   * count tuned, in one transaction. Only `reindex` runs it, never a save: at 100 000 vectors of
   * 384 dimensions it took 34–83 s in the benchmark (load 5–22), all in JS and SQLite on this
   * thread, and a save runs while the store serves. Vectors added later go to their nearest cell.
   */
  #train(): void {
    this.#freshCells();
    // An L2 table is searched by a full scan of vec_distance_l2 (see #search): cells would not serve it.
    if (VEC0_METRIC[this.#metric] === "l2") return;
    const n = this.#db.prepare(this.#sql.count).pluck(true).get() as number;
    if (n < CELLS_FROM) return;
    const sql = this.#sql;
    // The centroids come from a read of the table outside any write transaction (other
    // connections keep writing meanwhile: a deferred transaction that read first would then fail
    // to take the write lock, SQLITE_BUSY_SNAPSHOT, and lose the work); the rewrite then re-reads
    // the rows under the write lock, so vectors put meanwhile are in it too.
    const sample = (this.#db.prepare(sql.all).raw(true).all() as Array<[number | bigint, Buffer]>).map(([, b]) => floats(b));
    const cells = Cells.train(sample, cellCount(sample.length), "cosine");
    this.#db.transaction(() => {
      const rows = this.#db.prepare(sql.all).raw(true).all() as Array<[number | bigint, Buffer]>;
      const vectors = rows.map(([, b]) => floats(b));
      this.#db.exec(sql.dropVec);
      this.#db.exec(sql.createVec);
      const insert = this.#db.prepare(sql.insertVec);
      rows.forEach(([rowid], i) => insert.run(BigInt(rowid), BigInt(cells.nearest(vectors[i] as Float32Array)), blob(vectors[i] as Float32Array)));
      const probes = this.#tuneProbes(cells, vectors, rows.map(([rowid]) => BigInt(rowid)));
      this.#db.prepare(sql.clearCells).run();
      const add = this.#db.prepare(sql.addCell);
      const generation = randomBytes(8).toString("hex");
      cells.centroids.forEach((c, i) => add.run(i, blob(c), vectors.length, probes, generation));
      // The table was re-created: statements prepared on it are prepared again by SQLite itself.
      this.#cells = cells;
      this.#trainedN = vectors.length;
      this.#probes = probes;
      this.#generation = generation;
    }).immediate();
  }

  /** The probe count for TARGET_RECALL on stored vectors used as queries (see TARGET_RECALL). */
  #tuneProbes(cells: Cells, vectors: readonly Float32Array[], rowids: readonly bigint[]): number {
    const k = 10;
    const picks = Array.from({ length: Math.min(SAMPLE_QUERIES, vectors.length) }, (_, i) => Math.floor(((i + 0.5) * vectors.length) / Math.min(SAMPLE_QUERIES, vectors.length)));
    const others = (list: unknown[], self: bigint) => list.map((r) => BigInt((r as [number | bigint])[0])).filter((id) => id !== self).slice(0, k);
    const exact = this.#db.prepare(this.#sql.knnRowids).raw(true);
    const truth = picks.map((i) => new Set(others(exact.all(blob(vectors[i] as Float32Array), k + 1), rowids[i] as bigint)));
    for (let p = PROBES; p < cells.size; p *= 2) {
      const statement = this.#db.prepare(this.#sql.knnCellsRowids(p)).raw(true);
      let hits = 0;
      picks.forEach((i, j) => {
        const q = vectors[i] as Float32Array;
        const qb = blob(q);
        const got = others(statement.all(...cells.probes(q, p).flatMap((c) => [qb, k + 1, BigInt(c)])), rowids[i] as bigint);
        hits += got.filter((id) => (truth[j] as Set<bigint>).has(id)).length;
      });
      if (hits >= TARGET_RECALL * k * picks.length) return p;
    }
    return cells.size;
  }

  /** The cells trained (null: none), for the tests and the benchmark. */
  get cellStats(): { cells: number; trainedAt: number; probes: number } | null {
    return this.#cells ? { cells: this.#cells.size, trainedAt: this.#trainedN, probes: this.#probes } : null;
  }

  /**
   * Opens `path` with sqlite-vec loaded; `DGENT_MISSING_DEPENDENCY` when it is not installed.
   * `mmapSize`: bytes of the file read through a memory map (default the SQLite tier's default).
   */
  static async open(ctx: StorageContext, path: string, metric: Metric, busyTimeoutMs: number, rebuild = false, mmapSize = DEFAULT_MMAP_SIZE): Promise<SqliteVecStorage> {
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
      db.pragma(`mmap_size = ${Math.trunc(mmapSize)}`);
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

  /** Trains the cells again (`reindex`): from CELLS_FROM vectors on; below, nothing to do. */
  async optimize(): Promise<void> {
    this.#guard(() => this.#train(), "split the vectors into cells");
  }

  async drop(): Promise<void> {
    const sql = this.#sql;
    this.#guard(() => {
      this.#db.transaction(() => SqliteVecStorage.#dropAll(this.#db, sql, this.#ctx.key))();
      this.#cells = null;
      this.#trainedN = 0;
      this.#generation = null;
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
    const run = (k: number) =>
      this.#guard(() => {
        if (metric === "l2") return (candidates === null ? this.#s.l2.all(blob(q), k) : this.#s.l2In.all(blob(q), json, k)) as Row[];
        if (candidates === null) return this.#knn(q, k);
        if (candidates.length <= DIRECT_CANDIDATES) return this.#s.cosineIn.all(blob(q), json, k) as Row[];
        return this.#s.knnIn.all(blob(q), k, json) as Row[];
      }, "search");
    // A stored zero vector has no cosine distance (NULL), which SQLite orders first: such rows
    // rank last with score 0, as in the exact index, and do not take the place of real neighbours.
    let rows = run(k);
    const blank = rows.filter(([, d]) => d === null).length;
    if (blank > 0) rows = run(k + blank);
    const ranked = [...rows.filter(([, d]) => d !== null), ...rows.filter(([, d]) => d === null)].slice(0, k);
    return ranked.map(([id, distance]) => ({ id, score: distance === null ? 0 : metric === "l2" ? -distance : 1 - distance }));
  }

  /** Unfiltered KNN: in the tuned number of nearest cells when trained (all cells if they hold fewer than k), else over all. */
  #knn(q: Float32Array, k: number): Row[] {
    this.#freshCells();
    const cells = this.#cells;
    if (cells !== null && this.#probes < cells.size) {
      const probes = cells.probes(q, this.#probes);
      let statement = this.#knnCells.get(probes.length);
      if (!statement) {
        statement = this.#db.prepare(this.#sql.knnCells(probes.length)).raw(true);
        this.#knnCells.set(probes.length, statement);
      }
      const qb = blob(q);
      const rows = statement.all(...probes.flatMap((c) => [qb, k, BigInt(c)])) as Row[];
      if (rows.length >= k) return rows.slice(0, k);
    }
    return this.#s.knn.all(blob(q), k) as Row[];
  }

  #guard<T>(op: () => T, what: string): T {
    try {
      return op();
    } catch (error) {
      if (isDgentError(error)) throw error;
      const code = (error as { code?: string }).code;
      throw wrapError(error, code?.startsWith("SQLITE_BUSY") ? "DGENT_UNAVAILABLE" : "DGENT_BACKEND_ERROR", `sqlite-vec could not ${what}`, { unit: UNIT });
    }
  }
}
