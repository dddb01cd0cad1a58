/**
 * The i8 graph with its exact re-rank (the default for cosine): recall against exact search is
 * measured (a floor is checked, equality is not expected), the scores returned are the exact
 * ones, filters still apply during the search, deletes and re-puts reach the graph, and a graph
 * saved with another quantization is rebuilt rather than loaded.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../../adapters/jsonl/index.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { bruteForce, countingEmbedder, randomVectors, recallAt, referenceScore } from "../../testing/suites/search.js";
import { quantizeI8 } from "./ann.js";
import { recallPlugin, vectorMemory, type RecallHandle, type RecallOptions } from "./index.js";

const DIMS = 48;
const report = (line: string) => process.stdout.write(`${line}\n`);
let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dgent-recall-ann-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function withMemory<T>(options: RecallOptions, run: (store: Store, memory: RecallHandle) => Promise<T>): Promise<T> {
  const store = createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ embedder: countingEmbedder(DIMS), ann: true, buildThreads: 1, ...options })] });
  try {
    return await run(store, await vectorMemory(store));
  } finally {
    await store.close();
  }
}

/** `vectors` as datums `v/NNNNN` (tag `parity`), put with their vectors; the id → vector map. */
async function load(memory: RecallHandle, vectors: readonly Float32Array[]): Promise<Map<string, Float32Array>> {
  const byId = new Map<string, Float32Array>();
  const items = vectors.map((vector, i) => {
    const id = `v/${String(i).padStart(5, "0")}`;
    byId.set(id, vector);
    return { datum: makeDatum({ id, content: `item ${i}`, metadata: { parity: i % 2 ? "odd" : "even", group: String(i % 50) } }), vector };
  });
  for (let i = 0; i < items.length; i += 500) await memory.add(items.slice(i, i + 500));
  return byId;
}

describe("quantizeI8", () => {
  it("scales each vector to its own largest component (±127) and keeps its direction", () => {
    const [a, b] = randomVectors(2, 384, 3);
    const big = (a as Float32Array).map((x) => x * 1000);
    const q = quantizeI8(a as Float32Array);
    expect(Math.max(...q.map(Math.abs))).toBe(127);
    // Cosine does not see the scale: a vector and 1000 times it code the same.
    expect([...quantizeI8(big)]).toEqual([...q]);
    expect([...quantizeI8(new Float32Array(8))]).toEqual(Array(8).fill(0));
    for (const v of [a, b] as Float32Array[]) {
      const cos = referenceScore(v, Float32Array.from(quantizeI8(v)), "cosine");
      expect(cos).toBeGreaterThan(0.9995);
    }
  });
});

describe("the i8 graph with exact re-rank", () => {
  it("is the default for cosine only; i8 with dot or L2 is refused when the store is made", async () => {
    await withMemory({}, async (_, memory) => {
      expect(memory.stats().ann).toMatchObject({ quantization: "i8", rerank: 4 });
    });
    await withMemory({ metric: "l2" }, async (_, memory) => {
      expect(memory.stats().ann).toMatchObject({ quantization: "f16", rerank: 0 });
    });
    for (const metric of ["dot", "l2"] as const) {
      expect(() => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ metric, quantization: "i8" })] })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ rerank: 65 })] })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });

  it("re-ranks an f16 graph too when asked (rerank > 1): exact scores on ANN hits", async () => {
    await withMemory({ quantization: "f16", rerank: 3 }, async (_, memory) => {
      const byId = await load(memory, randomVectors(600, DIMS, 11, 6));
      expect(memory.stats().ann).toMatchObject({ active: true, quantization: "f16", rerank: 3 });
      const [q] = randomVectors(1, DIMS, 12, 6) as [Float32Array];
      const hits = await memory.search(q, { k: 5, index: "ann" });
      expect(hits).toHaveLength(5);
      for (const h of hits) expect(h.score).toBeCloseTo(referenceScore(byId.get(h.id) as Float32Array, q, "cosine"), 6);
    });
  });

  it("measures recall@10 against exact search and returns the exact scores", async () => {
    const vectors = randomVectors(3000, DIMS, 21, 30);
    const queries = randomVectors(40, DIMS, 22, 30);
    const measured: Record<string, number> = {};
    for (const rerank of [4, 0]) {
      await withMemory({ rerank }, async (_, memory) => {
        const byId = await load(memory, vectors);
        expect(memory.stats().ann).toMatchObject({ active: true, size: 3000, quantization: "i8", rerank });
        let sum = 0;
        for (const q of queries) {
          const ann = await memory.search(q, { k: 10, index: "ann" });
          expect(ann).toHaveLength(10);
          sum += recallAt(ann, bruteForce(byId, q, 10, "cosine"));
          if (rerank > 1) {
            // Re-ranked: the f32 scores, best first.
            for (const h of ann) expect(h.score).toBeCloseTo(referenceScore(byId.get(h.id) as Float32Array, q, "cosine"), 6);
            expect(ann.map((h) => h.score)).toEqual([...ann.map((h) => h.score)].sort((x, y) => y - x));
          }
        }
        measured[rerank] = sum / queries.length;
      });
    }
    report(`i8 graph, 3000 clustered vectors of ${DIMS} dims: recall@10 ${measured[4]?.toFixed(3)} re-ranked (×4), ${measured[0]?.toFixed(3)} in the graph's order`);
    expect(measured[4]).toBeGreaterThanOrEqual(0.9);
    // The re-rank can only put the candidates the graph found in a better order.
    expect(measured[4]).toBeGreaterThanOrEqual(measured[0] as number);
  });

  it("applies filters during the search through the graph (k results, all meeting the filter)", async () => {
    // exactCandidates 0: even a selective filter walks the graph's results instead of the exact index.
    await withMemory({ exactCandidates: 0 }, async (_, memory) => {
      await load(memory, randomVectors(2000, DIMS, 31, 20));
      const [q] = randomVectors(1, DIMS, 32, 20) as [Float32Array];
      for (const [filter, check] of [
        [{ where: { parity: "odd" } }, (id: string) => Number(id.slice(2)) % 2 === 1],
        [{ where: { group: "7" } }, (id: string) => Number(id.slice(2)) % 50 === 7],
      ] as const) {
        const hits = await memory.search(q, { k: 10, filter });
        const exact = await memory.search(q, { k: 10, filter, index: "exact" });
        expect(hits).toHaveLength(10);
        expect(hits.every((h) => check(h.id))).toBe(true);
        expect(recallAt(hits, exact)).toBeGreaterThanOrEqual(0.7);
      }
    });
  });

  it("forgets deleted datums and finds a re-put one at its new vector", async () => {
    await withMemory({}, async (store, memory) => {
      const byId = await load(memory, randomVectors(1500, DIMS, 41, 15));
      const [q] = randomVectors(1, DIMS, 42, 15) as [Float32Array];
      const before = await memory.search(q, { k: 10, index: "ann" });
      const gone = before.slice(0, 3).map((h) => h.id);
      for (const id of gone) await store.delete(id);
      const after = await memory.search(q, { k: 10, index: "ann" });
      expect(after).toHaveLength(10);
      expect(after.some((h) => gone.includes(h.id))).toBe(false);
      // Put again, now with the query itself as its vector: first, with the exact score 1.
      const far = [...byId.keys()].find((id) => !before.some((h) => h.id === id)) as string;
      await store.delete(far);
      await memory.add([{ datum: makeDatum({ id: far, content: "again" }), vector: q }]);
      const [top] = await memory.search(q, { k: 10, index: "ann" });
      expect(top?.id).toBe(far);
      expect(top?.score).toBeCloseTo(1, 6);
      expect(memory.stats().ann.size).toBe(1500 - 3);
    });
  });

  it("rebuilds a saved f16 graph as i8, then loads the i8 graph at the next restart", async () => {
    const path = join(dir, "g.jsonl");
    const vectors = randomVectors(400, DIMS, 51, 8);
    const [q] = randomVectors(1, DIMS, 52, 8) as [Float32Array];
    const open = (options: RecallOptions) => createStore({ tiers: [jsonlAdapter({ path })], plugins: [recallPlugin({ embedder: countingEmbedder(DIMS), ann: true, buildThreads: 1, saveEvery: 0, ...options })] });
    let store = open({ quantization: "f16" });
    try {
      const memory = await vectorMemory(store);
      await load(memory, vectors);
      await memory.save();
    } finally {
      await store.close();
    }
    let first: unknown;
    store = open({});
    try {
      const memory = await vectorMemory(store);
      expect(memory.stats().ann).toMatchObject({ active: true, size: 400, quantization: "i8", loadedFromArtefact: false });
      first = await memory.search(q, { k: 10, index: "ann" });
      await memory.save();
    } finally {
      await store.close();
    }
    store = open({});
    try {
      const memory = await vectorMemory(store);
      expect(memory.stats().ann).toMatchObject({ active: true, size: 400, quantization: "i8", loadedFromArtefact: true });
      expect(await memory.search(q, { k: 10, index: "ann" })).toEqual(first);
    } finally {
      await store.close();
    }
  });
});
