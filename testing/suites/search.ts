/**
 * The search suite: what every store with the recall plugin must do, whatever its tier. Exact
 * results equal a brute-force reference written here (independently of the plugin's own loop);
 * filters apply during the search (k results whenever k datums meet the filter); deletes and
 * re-puts are reflected; a restart loads the vectors instead of embedding again; the ANN index's
 * recall is measured against exact search (a floor is checked, equality is not expected); a
 * native index (sqlite-vec) equals the reference. Runs with Vitest or node:test, as the kit does.
 */
import assert from "node:assert/strict";
import { makeDatum, type Datum } from "../../core/datum.js";
import type { QueryFilter } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import type { TestFramework } from "../types.js";
import { rng } from "../support.js";
import { vectorMemory, type Embedder, type Hit, type Metric, type RecallHandle, type RecallOptions } from "../../plugins/recall/index.js";

export interface SearchTarget {
  /** Shown in test names. */
  readonly name: string;
  /** A fresh store over storage of its own, composed with the recall plugin and these options. */
  create(options: RecallOptions): Store | Promise<Store>;
  /** A new store over the same storage as `previous` (closed by the suite), with these options. Enables the restart test. */
  reopen?(previous: Store, options: RecallOptions): Store | Promise<Store>;
  /** The tier has a native index (`index: "native"`) to check against the reference. */
  readonly nativeIndex?: boolean;
  /** Removes the storage behind a store (after it is closed). */
  destroy?(store: Store): void | Promise<void>;
}

export interface SearchSuiteOptions {
  /** Vectors in the exact and filter tests (default 600, at least 100). */
  readonly size?: number;
  /** Queries per filter case (default 5; fewer on tiers where every filtered query reads the namespace). */
  readonly filterQueries?: number;
  /** Vectors in the ANN recall test (default 3000). */
  readonly annSize?: number;
  /** The recall@10 the ANN index must reach at least (default 0.9). Measured recall is reported through `report`. */
  readonly annRecallFloor?: number;
  readonly report?: (line: string) => void;
}

const DIMS = 32;

/** An embedder that counts its calls (and texts), over a deterministic hash of each text's words. */
export function countingEmbedder(dimensions = DIMS): Embedder & { calls: number; texts: number } {
  const e = {
    id: `search-suite-words-d${dimensions}`,
    dimensions,
    calls: 0,
    texts: 0,
    async embed(texts: readonly string[]): Promise<Float32Array[]> {
      e.calls++;
      e.texts += texts.length;
      return texts.map((t) => {
        const v = new Float32Array(dimensions);
        for (const w of t.toLowerCase().split(/\W+/).filter(Boolean)) {
          let h = 2166136261;
          for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619) >>> 0;
          v[h % dimensions] = (v[h % dimensions] as number) + 1;
        }
        return v;
      });
    },
  };
  return e;
}

/** `n` random vectors; with `clusters`, around that many random centres (closer to real embeddings). */
export function randomVectors(n: number, dimensions: number, seed: number, clusters = 0): Float32Array[] {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dimensions }, gauss));
  return Array.from({ length: n }, (_, i) => {
    const c = clusters ? (centres[i % clusters] as Float32Array) : null;
    return Float32Array.from({ length: dimensions }, (_, j) => (c ? (c[j] as number) + 0.35 * gauss() : gauss()));
  });
}

/** The reference: score every vector with a plain double loop, best first, ties by id. */
export function bruteForce(vectors: ReadonlyMap<string, Float32Array>, q: Float32Array, k: number, metric: Metric): Hit[] {
  const scored: Hit[] = [];
  for (const [id, v] of vectors) scored.push({ id, score: referenceScore(v, q, metric) });
  scored.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return scored.slice(0, k);
}

export function referenceScore(v: Float32Array, q: Float32Array, metric: Metric): number {
  let dot = 0;
  let vv = 0;
  let qq = 0;
  let l2 = 0;
  for (let i = 0; i < q.length; i++) {
    const a = v[i] as number;
    const b = q[i] as number;
    dot += a * b;
    vv += a * a;
    qq += b * b;
    l2 += (a - b) * (a - b);
  }
  if (metric === "dot") return dot;
  if (metric === "l2") return -Math.sqrt(l2);
  return vv === 0 || qq === 0 ? 0 : dot / Math.sqrt(vv * qq);
}

/**
 * `actual` is the reference's result: the same length, each score within `tolerance` of the
 * reference's score for that id and of the reference's score at that rank, and every id that
 * clearly belongs (scores above the k-th by more than `tolerance`) present.
 */
export function assertSameHits(actual: readonly Hit[], expected: readonly Hit[], truth: (id: string) => number, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} results, expected ${expected.length}`);
  const got = new Set(actual.map((h) => h.id));
  assert.equal(got.size, actual.length, `${what}: an id came back twice`);
  actual.forEach((h, i) => {
    assert.ok(Math.abs(h.score - truth(h.id)) <= tolerance, `${what}: ${h.id} scored ${h.score}, its true score is ${truth(h.id)}`);
    assert.ok(Math.abs(h.score - (expected[i] as Hit).score) <= tolerance, `${what}: rank ${i} scored ${h.score}, the reference ${(expected[i] as Hit).score}`);
  });
  const kth = expected.at(-1)?.score ?? -Infinity;
  for (const e of expected) if (e.score > kth + tolerance) assert.ok(got.has(e.id), `${what}: ${e.id} (score ${e.score}) is missing`);
}

/** Recall@k of `approx` against `exact`: the share of the exact ids found. */
export function recallAt(approx: readonly Hit[], exact: readonly Hit[]): number {
  if (exact.length === 0) return 1;
  const found = new Set(approx.map((h) => h.id));
  return exact.filter((h) => found.has(h.id)).length / exact.length;
}

interface Fixture {
  readonly store: Store;
  readonly memory: RecallHandle;
  readonly vectors: Map<string, Float32Array>;
  readonly datums: Map<string, Datum>;
}

/** Puts `vectors` as datums `<prefix>NNNNN` with tags `group` (i % 100) and `parity`, and the vectors given. */
async function load(store: Store, memory: RecallHandle, prefix: string, vectors: readonly Float32Array[]): Promise<Fixture> {
  const byId = new Map<string, Float32Array>();
  const datums = new Map<string, Datum>();
  const items = vectors.map((vector, i) => {
    const id = `${prefix}${String(i).padStart(5, "0")}`;
    const datum = makeDatum({ id, content: `item ${i}`, createdAt: 1_000 + i, metadata: { group: String(i % 100), parity: i % 2 ? "odd" : "even" } });
    byId.set(id, vector);
    datums.set(id, datum);
    return { datum, vector };
  });
  for (let i = 0; i < items.length; i += 500) await memory.add(items.slice(i, i + 500));
  return { store, memory, vectors: byId, datums };
}

export function runSearchSuite(target: SearchTarget, fw: TestFramework, options: SearchSuiteOptions = {}): void {
  const size = options.size ?? 600;
  const annSize = options.annSize ?? 3000;
  const floor = options.annRecallFloor ?? 0.9;
  const report = options.report ?? (() => undefined);
  const base: RecallOptions = { ann: false, saveEvery: 0 };

  const withStore = async (opts: RecallOptions, run: (store: Store, memory: RecallHandle) => Promise<void>): Promise<void> => {
    const store = await target.create({ ...base, ...opts });
    try {
      await run(store, await vectorMemory(store));
    } finally {
      await store.close();
      await target.destroy?.(store);
    }
  };

  fw.describe(`search suite: ${target.name}`, () => {
    fw.it("exact search equals the brute-force reference, for cosine, dot and L2", async () => {
      await withStore({ embedder: countingEmbedder() }, async (store, memory) => {
        const f = await load(store, memory, "v/", randomVectors(size, DIMS, 1));
        const queries = randomVectors(12, DIMS, 2);
        for (const metric of ["cosine", "dot", "l2"] as const) {
          for (const k of [1, 10, 50]) {
            for (const [n, q] of queries.entries()) {
              const hits = await memory.search(q, { k, metric, index: "exact" });
              assertSameHits(hits, bruteForce(f.vectors, q, k, metric), (id) => referenceScore(f.vectors.get(id) as Float32Array, q, metric), 1e-9, `${metric} k=${k} query ${n}`);
            }
          }
        }
        const all = await memory.search(queries[0] as Float32Array, { k: 1000 });
        assert.equal(all.length, size, "k above the number of vectors returns them all");
      });
    });

    fw.it("filters apply during the search: a 1 % filter still returns k results, equal to the reference over the datums meeting it", async () => {
      await withStore({ embedder: countingEmbedder() }, async (store, memory) => {
        const f = await load(store, memory, "f/", randomVectors(size, DIMS, 3));
        const queries = randomVectors(options.filterQueries ?? 5, DIMS, 4);
        const after = 1_003;
        const at = (i: number) => `f/${String(i).padStart(5, "0")}`;
        const [from, to] = [at(Math.floor(size / 5)), at(Math.floor(size / 5) + 30)];
        const cases: Array<{ filter: QueryFilter; keep: (d: Datum) => boolean }> = [
          { filter: { where: { group: "7" } }, keep: (d) => d.metadata.group === "7" },
          { filter: { where: { group: { in: ["3", "4"] } }, after }, keep: (d) => ["3", "4"].includes(d.metadata.group as string) && d.createdAt > after },
          { filter: { prefix: "f/000" }, keep: (d) => d.id.startsWith("f/000") },
          { filter: { idRange: { gte: from, lt: to }, where: { parity: "odd" } }, keep: (d) => d.id >= from && d.id < to && d.metadata.parity === "odd" },
          { filter: { before: 1_005 }, keep: (d) => d.createdAt < 1_005 },
        ];
        for (const [c, { filter, keep }] of cases.entries()) {
          const subset = new Map([...f.vectors].filter(([id]) => keep(f.datums.get(id) as Datum)));
          assert.ok(subset.size > 0, `case ${c} selects something`);
          for (const q of queries) {
            const k = Math.min(10, subset.size);
            const hits = await memory.search(q, { k: 10, filter });
            assertSameHits(hits, bruteForce(subset, q, k, "cosine"), (id) => referenceScore(f.vectors.get(id) as Float32Array, q, "cosine"), 1e-9, `filter case ${c}`);
          }
        }
        assert.deepEqual(await memory.search(queries[0] as Float32Array, { filter: { where: { group: "none" } } }), [], "a filter nothing meets returns nothing");
      });
    });

    fw.it("deleted datums are never returned; a re-put id is found by its new content; non-text datums are skipped", async () => {
      const embedder = countingEmbedder();
      await withStore({ embedder }, async (store, memory) => {
        await store.put(makeDatum({ id: "d/cat", content: "the cat sat on the mat" }));
        await store.put(makeDatum({ id: "d/dog", content: "a dog barked at the postman" }));
        await store.put(makeDatum({ id: "d/bin", content: new Uint8Array([0xff, 0xfe, 0x00, 0x80]) }));
        assert.deepEqual((await memory.search("cat mat", { k: 1 })).map((h) => h.id), ["d/cat"]);
        await store.delete("d/cat");
        assert.ok(!(await memory.search("cat mat", { k: 10 })).some((h) => h.id === "d/cat"), "a deleted datum is not returned");
        await store.put(makeDatum({ id: "d/cat", content: "stock markets fell" }));
        assert.deepEqual((await memory.search("stock markets", { k: 1 })).map((h) => h.id), ["d/cat"], "the re-put id has its new vector");
        const results = await memory.search("anything at all", { k: 10 });
        assert.ok(!results.some((h) => h.id === "d/bin"), "bytes that are not UTF-8 text are not embedded");
        assert.equal(memory.stats().skipped, 1);
        assert.ok(!results.some((h) => h.id.startsWith("dgent.vec/")), "the plugin's own datums are never results");
      });
    });

    fw.it(`ANN recall@10 is measured against exact search (at least ${floor})`, async () => {
      await withStore({ embedder: countingEmbedder(), ann: true, buildThreads: 1 }, async (store, memory) => {
        const f = await load(store, memory, "a/", randomVectors(annSize, DIMS, 5, 30));
        assert.equal(memory.stats().ann.active, true);
        const queries = randomVectors(40, DIMS, 6, 30);
        let sum = 0;
        for (const q of queries) {
          const exact = await memory.search(q, { k: 10, index: "exact" });
          assertSameHits(exact, bruteForce(f.vectors, q, 10, "cosine"), (id) => referenceScore(f.vectors.get(id) as Float32Array, q, "cosine"), 1e-9, "exact");
          sum += recallAt(await memory.search(q, { k: 10, index: "ann" }), exact);
        }
        const recall = sum / queries.length;
        report(`${target.name}: ANN recall@10 = ${recall.toFixed(3)} over ${queries.length} queries, ${annSize} clustered vectors of ${DIMS} dims`);
        assert.ok(recall >= floor, `recall@10 ${recall} is below ${floor}`);
        // A broad filter (half the datums) walks the ANN results and still returns k that meet it.
        const odd = await memory.search(queries[0] as Float32Array, { k: 10, filter: { where: { parity: "odd" } } });
        assert.equal(odd.length, 10);
        for (const h of odd) assert.equal(f.datums.get(h.id)?.metadata.parity, "odd");
      });
    });

    if (target.nativeIndex) {
      fw.it("the native index equals the brute-force reference (cosine and L2, with and without a filter)", async () => {
        await withStore({ embedder: countingEmbedder() }, async (store, memory) => {
          const f = await load(store, memory, "n/", randomVectors(size, DIMS, 7));
          const queries = randomVectors(8, DIMS, 8);
          const inGroup = new Map([...f.vectors].filter(([id]) => f.datums.get(id)?.metadata.group === "12"));
          for (const metric of ["cosine", "l2"] as const) {
            for (const q of queries) {
              const truth = (id: string) => referenceScore(f.vectors.get(id) as Float32Array, q, metric);
              // sqlite-vec computes in float32: a looser tolerance.
              assertSameHits(await memory.search(q, { k: 10, metric, index: "native" }), bruteForce(f.vectors, q, 10, metric), truth, 1e-4, `native ${metric}`);
              assertSameHits(await memory.search(q, { k: 5, metric, index: "native", filter: { where: { group: "12" } } }), bruteForce(inGroup, q, 5, metric), truth, 1e-4, `native ${metric} filtered`);
            }
          }
        });
      });
    }

    if (target.reopen) {
      const reopen = target.reopen.bind(target);
      fw.it("a restart loads the index instead of embedding again, and finds the same results", async () => {
        const embedder = countingEmbedder();
        const options: RecallOptions = { ...base, embedder };
        let store = await target.create(options);
        try {
          let memory = await vectorMemory(store);
          for (let i = 0; i < 40; i++) await store.put(makeDatum({ id: `r/${i}`, content: `note ${i} about ${["cats", "dogs", "markets", "rain"][i % 4]} and item${i}` }));
          await store.delete("r/3");
          const before = await memory.search("dogs item5", { k: 5 });
          await memory.save();
          await store.close();
          const embedded = embedder.texts;
          store = await reopen(store, options);
          memory = await vectorMemory(store);
          assert.equal(memory.stats().lastCatchUp?.embedded, 0, "nothing is embedded again at a restart");
          assert.equal(memory.stats().vectors, 39);
          assert.deepEqual(await memory.search("dogs item5", { k: 5 }), before);
          assert.equal(embedder.texts, embedded + 1, "only the query was embedded");
        } finally {
          await store.close();
          await target.destroy?.(store);
        }
      });
    }
  });
}
