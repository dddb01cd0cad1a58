/**
 * The sqlite-vec storage: filtered searches (few candidates scored one by one by rowid, many by
 * sqlite-vec's KNN with `rowid IN (…)`) equal the brute-force reference; the cells (k-means
 * partitions searched a few at a time) are trained by reindex (never a save), kept across a restart, and their
 * recall is measured against exact search; a file written before the cells is upgraded on open.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { bruteForce, randomVectors } from "../../testing/suites/search.js";
import type { Metric } from "./exact.js";
import { recallPlugin, vectorMemory } from "./index.js";
import { modelKey } from "./keys.js";
import { CELLS_FROM, DIRECT_CANDIDATES, PROBES, sqliteVecSql, tableNames } from "./sqlite-vec.js";

interface RawDb {
  prepare(sql: string): { get(...p: unknown[]): unknown; all(...p: unknown[]): unknown[]; run(...p: unknown[]): unknown };
  exec(sql: string): void;
  close(): void;
}
const require = createRequire(import.meta.url);
/** A second connection to the file, with sqlite-vec loaded, to look at (or rewrite) the tables. */
function raw(path: string): RawDb {
  const Database = require("better-sqlite3") as new (path: string) => RawDb;
  const db = new Database(path);
  (require("sqlite-vec") as { load(db: unknown): void }).load(db);
  return db;
}
const given = (dimensions: number) => ({ id: `given-d${dimensions}`, dimensions, embed: async (): Promise<Float32Array[]> => Promise.reject(new Error("vectors are given")) });

const DIMS = 16;
const N = DIRECT_CANDIDATES + 700;
let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dgent-recall-sqlite-vec-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("sqlite-vec storage: filtered native searches", () => {
  it("scores few candidates by rowid and many by KNN, both equal to the reference", async () => {
    const path = join(dir, "filtered.db");
    const embedder = given(DIMS);
    const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "sqlite-vec", ann: false })] });
    try {
      const memory = await vectorMemory(store);
      expect(memory.stats().storage).toBe("sqlite-vec");
      const vectors = randomVectors(N, DIMS, 17, 8);
      // "small": every 100th datum (32 candidates); "large": all but every 7th (more than DIRECT_CANDIDATES).
      const items = vectors.map((vector, i) => ({
        datum: makeDatum({ id: `d/${String(i).padStart(5, "0")}`, content: `item ${i}`, createdAt: 1_000 + i, metadata: { small: i % 100 === 0 ? "yes" : "no", large: i % 7 === 0 ? "no" : "yes" } }),
        vector,
      }));
      for (let i = 0; i < items.length; i += 500) await memory.add(items.slice(i, i + 500));
      const inSet = (tag: "small" | "large") => new Map(items.filter((it) => it.datum.metadata[tag] === "yes").map((it) => [it.datum.id, it.vector] as const));
      const small = inSet("small");
      const large = inSet("large");
      expect(small.size).toBeLessThanOrEqual(DIRECT_CANDIDATES);
      expect(large.size).toBeGreaterThan(DIRECT_CANDIDATES);
      const queries = randomVectors(5, DIMS, 99, 8);
      for (const metric of ["cosine", "l2"] as Metric[]) {
        for (const q of queries) {
          for (const [tag, set] of [["small", small], ["large", large]] as const) {
            const got = await memory.search(q, { k: 10, metric, index: "native", filter: { where: { [tag]: "yes" } } });
            const want = bruteForce(set, q, 10, metric);
            expect(got.map((h) => h.id), `${metric} ${tag}`).toEqual(want.map((h) => h.id));
            got.forEach((h, i) => expect(h.score).toBeCloseTo((want[i] as { score: number }).score, 4));
          }
        }
      }
    } finally {
      await store.close();
    }
  });

  it("the per-candidate statement scores by the table's metric, by rowid, bounded by k", () => {
    const sql = sqliteVecSql("m", 16, "cosine");
    expect(sql.cosineIn).toContain("vec_distance_cosine(v.embedding, ?)");
    expect(sql.cosineIn).toContain("ON v.rowid = i.rowid");
    expect(sql.cosineIn).toMatch(/LIMIT \?$/);
  });
});

describe("sqlite-vec storage: cells", () => {
  it("are trained by reindex from CELLS_FROM vectors on (never by a save), kept across a restart; recall measured against exact; filters stay exact", async () => {
    const path = join(dir, "cells.db");
    const embedder = given(DIMS);
    const open = () => createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "sqlite-vec", ann: false, saveEvery: 0 })] });
    const n = CELLS_FROM + 2_000;
    const vectors = randomVectors(n, DIMS, 23, 40);
    const byId = new Map(vectors.map((v, i) => [`c/${String(i).padStart(5, "0")}`, v] as const));
    const t = tableNames(modelKey(embedder.id));
    const queries = randomVectors(30, DIMS, 31, 40);
    let store = open();
    const before: string[][] = [];
    try {
      const memory = await vectorMemory(store);
      const items = [...byId].map(([id, vector], i) => ({ datum: makeDatum({ id, content: `c ${i}`, createdAt: 5_000 + i, metadata: { g: String(i % 100) } }), vector }));
      for (let i = 0; i < items.length; i += 1_000) await memory.add(items.slice(i, i + 1_000));
      // A save trains nothing, even after native searches (training may take seconds: only reindex runs it).
      const q0 = queries[0] as Float32Array;
      // Before the cells, a native search is the exact KNN.
      expect((await memory.search(q0, { k: 10, index: "native" })).map((h) => h.id)).toEqual(bruteForce(byId, q0, 10, "cosine").map((h) => h.id));
      await memory.save();
      const peek = raw(path);
      expect((peek.prepare(`SELECT count(*) AS c FROM "${t.cells}"`).get() as { c: number }).c).toBe(0);
      peek.close();
      await memory.reindex();
      const look = raw(path);
      const cells = look.prepare(`SELECT count(*) AS c, min(trained_n) AS n FROM "${t.cells}"`).get() as { c: number; n: number };
      const probes = (look.prepare(`SELECT max(probes) AS p FROM "${t.cells}"`).get() as { p: number }).p;
      const rows = (look.prepare(`SELECT count(*) AS c FROM "${t.vec}"`).get() as { c: number }).c;
      const used = (look.prepare(`SELECT count(DISTINCT cell) AS c FROM "${t.vec}"`).get() as { c: number }).c;
      look.close();
      expect(cells).toEqual({ c: Math.round(Math.sqrt(n) / 3), n });
      expect(rows).toBe(n);
      expect(used).toBeGreaterThan(1);
      let hits = 0;
      for (const q of queries) {
        const got = await memory.search(q, { k: 10, index: "native" });
        expect(got).toHaveLength(10);
        const truth = new Set(bruteForce(byId, q, 10, "cosine").map((h) => h.id));
        hits += got.filter((h) => truth.has(h.id)).length;
        before.push(got.map((h) => h.id));
      }
      const recall = hits / (queries.length * 10);
      process.stdout.write(`sqlite-vec cells: recall@10 ${recall.toFixed(3)} over ${queries.length} queries, ${n} clustered vectors of ${DIMS} dims, ${cells.c} cells, ${probes} probed\n`);
      expect(probes).toBeGreaterThanOrEqual(PROBES);
      expect(probes).toBeLessThan(cells.c);
      expect(recall).toBeGreaterThanOrEqual(0.9);
      // A 1 % filter is exact over all cells: k results, equal to the reference.
      const inGroup = new Map([...byId].filter((_, i) => i % 100 === 7));
      for (const q of queries.slice(0, 5)) {
        const got = await memory.search(q, { k: 10, index: "native", filter: { where: { g: "7" } } });
        expect(got.map((h) => h.id)).toEqual(bruteForce(inGroup, q, 10, "cosine").map((h) => h.id));
      }
    } finally {
      await store.close();
    }
    store = open();
    try {
      const memory = await vectorMemory(store);
      const after = [];
      for (const q of queries) after.push((await memory.search(q, { k: 10, index: "native" })).map((h) => h.id));
      expect(after).toEqual(before);
    } finally {
      await store.close();
    }
  });
});

describe("sqlite-vec storage: cells on data without clusters", () => {
  it("tune the probe count up (to every cell, the exact KNN, if need be) rather than lose recall", async () => {
    const path = join(dir, "random.db");
    const dims = 48;
    const embedder = given(dims);
    const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "sqlite-vec", ann: false, saveEvery: 0 })] });
    try {
      const memory = await vectorMemory(store);
      const vectors = randomVectors(CELLS_FROM + 500, dims, 51);
      const byId = new Map(vectors.map((v, i) => [`r/${String(i).padStart(5, "0")}`, v] as const));
      const items = [...byId].map(([id, vector], i) => ({ datum: makeDatum({ id, content: `r ${i}`, createdAt: 1 + i, metadata: {} }), vector }));
      for (let i = 0; i < items.length; i += 1_000) await memory.add(items.slice(i, i + 1_000));
      await memory.reindex();
      const look = raw(path);
      const t = tableNames(modelKey(embedder.id));
      const { c, p } = look.prepare(`SELECT count(*) AS c, max(probes) AS p FROM "${t.cells}"`).get() as { c: number; p: number };
      look.close();
      expect(c).toBeGreaterThan(1);
      expect(p).toBeGreaterThan(PROBES);
      let hits = 0;
      const queries = randomVectors(20, dims, 53);
      for (const q of queries) {
        const truth = new Set(bruteForce(byId, q, 10, "cosine").map((h) => h.id));
        hits += (await memory.search(q, { k: 10, index: "native" })).filter((h) => truth.has(h.id)).length;
      }
      const recall = hits / (queries.length * 10);
      process.stdout.write(`sqlite-vec cells, random data: recall@10 ${recall.toFixed(3)}, ${c} cells, ${p} probed\n`);
      expect(recall).toBeGreaterThanOrEqual(0.9);
    } finally {
      await store.close();
    }
  });
});

describe("sqlite-vec storage: a file written before the cells", () => {
  it("is upgraded on open: the vectors move to the partitioned table, the old table goes, searches equal the reference", async () => {
    const path = join(dir, "legacy.db");
    const embedder = given(DIMS);
    const open = () => createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "sqlite-vec", ann: false, saveEvery: 0 })] });
    const vectors = randomVectors(300, DIMS, 41, 6);
    const byId = new Map(vectors.map((v, i) => [`l/${String(i).padStart(3, "0")}`, v] as const));
    let store = open();
    try {
      const memory = await vectorMemory(store);
      await memory.add([...byId].map(([id, vector], i) => ({ datum: makeDatum({ id, content: `l ${i}`, createdAt: 9_000 + i, metadata: {} }), vector })));
    } finally {
      await store.close();
    }
    // Rewrite the file as the previous code left it: one vec0 table without the partition key, no cells table.
    const t = tableNames(modelKey(embedder.id));
    const db = raw(path);
    db.exec(`CREATE VIRTUAL TABLE "${t.legacyVec}" USING vec0(embedding float[${DIMS}] distance_metric=cosine)`);
    db.exec(`INSERT INTO "${t.legacyVec}" (rowid, embedding) SELECT rowid, embedding FROM "${t.vec}"`);
    db.exec(`DROP TABLE "${t.vec}"`);
    db.exec(`DROP TABLE "${t.cells}"`);
    expect((db.prepare(`SELECT count(*) AS c FROM "${t.legacyVec}"`).get() as { c: number }).c).toBe(300);
    db.close();
    store = open();
    try {
      const memory = await vectorMemory(store);
      expect(memory.stats().storage).toBe("sqlite-vec");
      for (const q of randomVectors(5, DIMS, 43, 6)) {
        for (const metric of ["cosine", "l2"] as Metric[]) {
          const got = await memory.search(q, { k: 10, metric, index: "native" });
          expect(got.map((h) => h.id)).toEqual(bruteForce(byId, q, 10, metric).map((h) => h.id));
        }
      }
    } finally {
      await store.close();
    }
    const after = raw(path);
    const names = (after.prepare(`SELECT name FROM sqlite_master WHERE name IN (?, ?, ?)`).all(t.legacyVec, t.vec, t.cells) as Array<{ name: string }>).map((r) => r.name).sort();
    expect(names).toEqual([t.cells, t.vec].sort());
    expect((after.prepare(`SELECT count(*) AS c FROM "${t.vec}"`).get() as { c: number }).c).toBe(300);
    after.close();
  });
});

describe("sqlite-vec storage: two stores on one file", () => {
  it("a store sees the other's training again at the same count (the centroids' generation, not the count)", async () => {
    const path = join(dir, "two.db");
    const dims = 8;
    const embedder = given(dims);
    const open = () => createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "sqlite-vec", ann: false, saveEvery: 0 })] });
    const a = open();
    const b = open();
    try {
      const ma = await vectorMemory(a);
      const mb = await vectorMemory(b);
      const n = CELLS_FROM;
      const put = async (vectors: Float32Array[]) => {
        const items = vectors.map((vector, i) => ({ datum: makeDatum({ id: `t/${String(i).padStart(5, "0")}`, content: `t ${i}`, createdAt: 1 + i, metadata: {} }), vector }));
        for (let i = 0; i < items.length; i += 1_000) await ma.add(items.slice(i, i + 1_000));
      };
      await put(randomVectors(n, dims, 3, 40));
      await ma.reindex();
      const q = randomVectors(20, dims, 5, 40);
      for (const v of q.slice(0, 3)) await mb.search(v, { k: 10, index: "native" }); // b holds the first centroids
      // The same ids, new vectors (other clusters), trained again: the count is unchanged.
      const second = randomVectors(n, dims, 999, 40);
      await put(second);
      await ma.reindex();
      for (const v of q) {
        const fromA = (await ma.search(v, { k: 10, index: "native" })).map((h) => h.id);
        const fromB = (await mb.search(v, { k: 10, index: "native" })).map((h) => h.id);
        expect(fromB).toEqual(fromA);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("sqlite-vec storage: a zero vector", () => {
  it("ranks last with score 0, as in the exact index, filtered or not", async () => {
    const path = join(dir, "zero.db");
    const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder: given(4), storage: "sqlite-vec", ann: false })] });
    try {
      const memory = await vectorMemory(store);
      const vs = [[0, 0, 0, 0], [1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0]];
      await memory.add(vs.map((v, i) => ({ datum: makeDatum({ id: `z${i}`, content: `c${i}`, createdAt: 1 + i, metadata: { t: "x" } }), vector: Float32Array.from(v) })));
      const q = Float32Array.from([1, 0, 0, 0]);
      for (const filter of [undefined, { where: { t: "x" } }]) {
        const exact = await memory.search(q, { k: 2, index: "exact", filter });
        const native = await memory.search(q, { k: 2, index: "native", filter });
        expect(native.map((h) => h.id)).toEqual(["z1", "z2"]);
        expect(native.map((h) => h.id)).toEqual(exact.map((h) => h.id));
        const all = await memory.search(q, { k: 4, index: "native", filter });
        expect(all.map((h) => h.id)).toEqual(["z1", "z2", "z3", "z0"]);
        expect(all[3]?.score).toBe(0);
      }
    } finally {
      await store.close();
    }
  });
});
