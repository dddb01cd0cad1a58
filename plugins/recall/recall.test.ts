import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStoreFromConfig } from "../../compose/config/compose.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { cachePlugin } from "../cache/index.js";
import { compressionPlugin } from "../compression/index.js";
import { writeBehindPlugin } from "../write-behind/index.js";
import { hashingEmbedder, recall, recallPlugin, RESERVED_PREFIX, vectorMemory, type RecallOptions } from "./index.js";
import { modelKey, vectorPrefix } from "./keys.js";
import { countingEmbedder, randomVectors } from "../../testing/suites/search.js";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dgent-recall-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = (ext: string) => join(dir, `f${++files}.${ext}`);

const memoryStore = (options: RecallOptions = {}) => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ embedder: hashingEmbedder({ dimensions: 64 }), ...options })] });

async function withStore<T>(store: Store, run: (store: Store) => Promise<T>): Promise<T> {
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

describe("hashingEmbedder", () => {
  it("is deterministic, L2-normalised, of the declared size, named after its settings", async () => {
    const e = hashingEmbedder({ dimensions: 96, ngram: 4 });
    expect(e.id).toBe("dgent-hashing-v1-d96-n4");
    expect(e.dimensions).toBe(96);
    const [a, b, empty] = await e.embed(["The cat sat on the mat", "The cat sat on the mat", "  "]);
    expect(a).toEqual(b);
    expect(a).toHaveLength(96);
    expect(Math.hypot(...(a as Float32Array))).toBeCloseTo(1, 6);
    expect([...(empty as Float32Array)].every((x) => x === 0)).toBe(true);
    expect(hashingEmbedder().id).toBe("dgent-hashing-v1-d384-n3");
  });

  it("measures shared words and spellings, not meaning", async () => {
    const e = hashingEmbedder();
    const cos = async (x: string, y: string) => {
      const [a, b] = (await e.embed([x, y])) as [Float32Array, Float32Array];
      return a.reduce((s, v, i) => s + v * (b[i] as number), 0);
    };
    expect(await cos("the running dog", "a dog running")).toBeGreaterThan(0.6);
    expect(await cos("databases", "database")).toBeGreaterThan(0.5);
    // Synonyms share nothing it can see.
    expect(Math.abs(await cos("car", "automobile"))).toBeLessThan(0.2);
  });

  it("refuses sizes it cannot make", () => {
    expect(() => hashingEmbedder({ dimensions: 1 })).toThrow(/dimensions/);
    expect(() => hashingEmbedder({ ngram: 0 })).toThrow(/ngram/);
  });
});

describe("the recall plugin", () => {
  it("checks its options when the store is made, and from a config file builds the embedder it names", async () => {
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ metric: "manhattan" as never })] })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ annThreshold: -1 })] })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin({ quantization: "b1" as never })] })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    const module = file("mjs");
    writeFileSync(module, `export default (o) => ({ id: "words-" + o.size, dimensions: o.size, embed: async (texts) => texts.map((t) => { const v = new Float32Array(o.size); v[t.length % o.size] = 1; return v; }) });\n`);
    for (const [embedder, id] of [
      [{ hashing: { dimensions: 48 } }, "dgent-hashing-v1-d48-n3"],
      [{ module, options: { size: 8 } }, "words-8"],
    ] as const) {
      const store = await createStoreFromConfig({ tiers: ["memory"], plugins: [{ plugin: "recall", options: { embedder } }] });
      await withStore(store, async () => {
        const memory = await vectorMemory(store);
        expect(memory.model.id).toBe(id);
        await store.put(makeDatum({ id: "x", content: "hello" }));
        expect((await memory.search("hello", { k: 1 }))[0]?.id).toBe("x");
      });
    }
    const bad = await createStoreFromConfig({ tiers: ["memory"], plugins: [{ plugin: "recall", options: { embedder: { module: join(dir, "nowhere.mjs") } } }] });
    await expect(bad.open()).rejects.toMatchObject({ code: "DGENT_MISSING_DEPENDENCY" });
  });

  it("refuses bad searches with DGENT_INVALID_QUERY naming the field, before reading anything", async () => {
    await withStore(memoryStore(), async (store) => {
      const memory = await vectorMemory(store);
      const field = async (p: Promise<unknown>) => ((await p.then(() => null, (e: unknown) => e)) as { code: string; details: { field: string } } | null);
      for (const [options, name] of [
        [{ k: 0 }, "k"],
        [{ k: 1001 }, "k"],
        [{ k: 2.5 }, "k"],
        [{ metric: "hamming" }, "metric"],
        [{ index: "fast" }, "index"],
        [{ limit: 3 }, "limit"],
        [{ filter: { where: { role: { like: "x" } } } }, "where.role.like"],
        [{ filter: { prefix: 7 } }, "prefix"],
      ] as const) {
        const error = await field(memory.search("q", options as never));
        expect(error, JSON.stringify(options)).toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: name } });
      }
      expect(await field(memory.search(new Float32Array(3)))).toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: "vector" } });
      expect(await field(memory.search(Float32Array.from({ length: 64 }, () => Number.NaN)))).toMatchObject({ code: "DGENT_INVALID_QUERY" });
      expect(await field(memory.search(42 as never))).toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: "query" } });
      await expect(memory.search("q", { index: "ann" })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
      await expect(memory.search("q", { index: "native" })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    });
  });

  it("is attached to its own store before it searches; another store is refused", async () => {
    const a = memoryStore();
    const b = memoryStore();
    await withStore(a, async () => {
      await withStore(b, async () => {
        const handle = await a.plugin(recall);
        await expect(handle.search("q")).rejects.toMatchObject({ code: "DGENT_NOT_OPEN" });
        // Written before attach: the catch-up embeds it.
        await a.put(makeDatum({ id: "early", content: "written before attach" }));
        expect(handle.stats().unattachedWrites).toBe(1);
        await expect(handle.attach(b)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
        expect((await handle.attach(a)).embedded).toBe(1);
        expect((await handle.search("before attach", { k: 1 }))[0]?.id).toBe("early");
      });
    });
  });

  it("takes vectors given with add(), a JSON field, a text function and a prefix", async () => {
    await withStore(memoryStore({ embedder: countingEmbedder(16) }), async (store) => {
      const memory = await vectorMemory(store);
      const [v1, v2] = randomVectors(2, 16, 9);
      await memory.add([
        { datum: makeDatum({ id: "given/1", content: "whatever" }), vector: v1 as Float32Array },
        { datum: makeDatum({ id: "given/2", content: "whatever" }), vector: v2 as Float32Array },
      ]);
      const hit = (await memory.search(v1 as Float32Array, { k: 1 }))[0];
      expect(hit?.id).toBe("given/1");
      expect(hit?.score).toBeCloseTo(1, 6);
      await expect(memory.add([{ datum: makeDatum({ content: "x" }), vector: new Float32Array(3) }])).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    });
    await withStore(memoryStore({ field: "message.text", prefix: "chat/" }), async (store) => {
      const memory = await vectorMemory(store);
      await store.put(makeDatum({ id: "chat/1", content: JSON.stringify({ role: "user", message: { text: "zebras on the savannah" } }) }));
      await store.put(makeDatum({ id: "chat/2", content: JSON.stringify({ role: "user", message: { text: 7 } }) }));
      await store.put(makeDatum({ id: "note/1", content: JSON.stringify({ message: { text: "zebras everywhere" } }) }));
      expect((await memory.search("zebras", { k: 10 })).map((h) => h.id)).toEqual(["chat/1"]);
      expect(memory.stats()).toMatchObject({ vectors: 1, skipped: 1 });
    });
    await withStore(memoryStore({ text: (d) => d.metadata.title ?? null }), async (store) => {
      const memory = await vectorMemory(store);
      await store.put(makeDatum({ id: "t/1", content: "body", metadata: { title: "quarterly earnings report" } }));
      await store.put(makeDatum({ id: "t/2", content: "quarterly earnings report" }));
      expect((await memory.search("earnings", { k: 10 })).map((h) => h.id)).toEqual(["t/1"]);
    });
  });

  it("keeps the vectors of each model id apart: another embedder starts its own index, the first one's vectors stay", async () => {
    const path = file("db");
    const open = (embedder: RecallOptions["embedder"]) => createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ embedder, storage: "datums" })] });
    const small = hashingEmbedder({ dimensions: 32 });
    const large = hashingEmbedder({ dimensions: 128 });
    let store = open(small);
    await withStore(store, async () => {
      await vectorMemory(store);
      for (let i = 0; i < 5; i++) await store.put(makeDatum({ id: `m/${i}`, content: `note number ${i}` }));
    });
    store = open(large);
    await withStore(store, async () => {
      const memory = await vectorMemory(store);
      expect(memory.stats()).toMatchObject({ model: large.id, vectors: 5, lastCatchUp: { embedded: 5 } });
      expect(await store.count({ prefix: vectorPrefix(modelKey(small.id)) })).toBe(5);
      expect(await store.count({ prefix: vectorPrefix(modelKey(large.id)) })).toBe(5);
    });
    // The same model id with other dimensions cannot be loaded; a rebuild embeds everything again.
    const liar = { ...hashingEmbedder({ dimensions: 48 }), id: small.id };
    store = open(liar);
    await withStore(store, async () => {
      await expect(vectorMemory(store)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", message: expect.stringMatching(/reindex --full/) });
      const handle = await store.plugin(recall);
      expect((await handle.attach(store, { rebuild: true })).embedded).toBe(5);
      expect(handle.stats().vectors).toBe(5);
    });
  });

  it("stacks with compression and the cache: embeds the caller's bytes, and its own datums are compressed like any other", async () => {
    const path = file("db");
    const plugins = () => [cachePlugin(), compressionPlugin({ threshold: 0 }), recallPlugin({ embedder: hashingEmbedder({ dimensions: 64 }), storage: "datums", saveEvery: 0 })];
    const long = "the zebra crossed the savannah at dawn ".repeat(20);
    let store = createStore({ tiers: [sqliteAdapter({ path })], plugins: plugins() });
    await withStore(store, async () => {
      const memory = await vectorMemory(store);
      await store.put(makeDatum({ id: "z", content: long }));
      await store.put(makeDatum({ id: "y", content: "a quiet afternoon indoors" }));
      const [hit] = await memory.search("zebra savannah dawn", { k: 1 });
      expect(hit?.id).toBe("z");
      expect(hit?.score).toBeGreaterThan(0.5);
    });
    // As stored, the long datum is compressed (vectors of floats rarely shrink, so are kept as they are).
    const raw = sqliteAdapter({ path });
    await raw.open();
    const stored = await raw.list({ prefix: "", after: -1, limit: 10 });
    await raw.close();
    expect(stored.find((d) => d.id === "z")?.metadata["dgent.compression"]).toBe("gzip");
    expect(stored.filter((d) => d.id.startsWith(RESERVED_PREFIX))).toHaveLength(2);
    store = createStore({ tiers: [sqliteAdapter({ path })], plugins: plugins() });
    await withStore(store, async () => {
      const memory = await vectorMemory(store);
      expect(memory.stats()).toMatchObject({ vectors: 2, lastCatchUp: { embedded: 0 } });
      expect((await memory.search("zebra savannah dawn", { k: 1 }))[0]?.id).toBe("z");
    });
  });

  it("writes flushed by write-behind while the store closes are embedded by the next catch-up", async () => {
    const path = file("db");
    const options = { embedder: hashingEmbedder({ dimensions: 64 }), storage: "datums" as const };
    let store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [writeBehindPlugin({ maxBatch: 1000, intervalMs: 3_600_000 }), recallPlugin(options)] });
    const memory = await vectorMemory(store);
    for (let i = 0; i < 3; i++) await store.put(makeDatum({ id: `wb/${i}`, content: `buffered note ${i}` }));
    await store.close();
    // Flushed at close (-100), after the store stopped taking writes: noted, left to the catch-up.
    expect(memory.stats().errors).toHaveLength(3);
    expect(memory.stats().errors.every((e) => /store was closing/.test(e))).toBe(true);
    store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin(options)] });
    await withStore(store, async () => {
      const again = await vectorMemory(store);
      expect(again.stats()).toMatchObject({ vectors: 3, lastCatchUp: { embedded: 3 } });
      expect((await again.search("buffered note 2", { k: 1 }))[0]?.id).toBe("wb/2");
    });
  });

  it("builds the ANN graph once the threshold is reached, saves it, and loads it at a restart instead of rebuilding", async () => {
    const path = file("jsonl");
    const { jsonlAdapter } = await import("../../adapters/jsonl/index.js");
    const options: RecallOptions = { embedder: countingEmbedder(16), annThreshold: 50, buildThreads: 1, saveEvery: 1000 };
    const vectors = randomVectors(80, 16, 11, 4);
    let store = createStore({ tiers: [jsonlAdapter({ path })], plugins: [recallPlugin(options)] });
    let before: unknown;
    await withStore(store, async () => {
      const memory = await vectorMemory(store);
      for (const [i, vector] of vectors.entries()) await memory.add([{ datum: makeDatum({ id: `a/${String(i).padStart(3, "0")}`, content: "v" }), vector }]);
      await memory.idle();
      expect(memory.stats().ann).toMatchObject({ active: true, size: 80, loadedFromArtefact: false, quantization: "i8", rerank: 4 });
      before = await memory.search(vectors[3] as Float32Array, { k: 5, index: "ann" });
      await memory.save();
      expect(await store.count({ prefix: vectorPrefix(modelKey(memory.model.id)) })).toBe(0);
      // Vector datums written after the save are loaded on top of the artefact.
      await store.put(makeDatum({ id: "a/late", content: "late words" }));
    });
    store = createStore({ tiers: [jsonlAdapter({ path })], plugins: [recallPlugin(options)] });
    await withStore(store, async () => {
      const memory = await vectorMemory(store);
      expect(memory.stats()).toMatchObject({ vectors: 81, ann: { active: true, size: 81, loadedFromArtefact: true }, lastCatchUp: { embedded: 0 } });
      expect(await memory.search(vectors[3] as Float32Array, { k: 5, index: "ann" })).toEqual(before);
    });
    // A graph saved with another quantization (i8 is the default for cosine) is rebuilt, not loaded.
    store = createStore({ tiers: [jsonlAdapter({ path })], plugins: [recallPlugin({ ...options, quantization: "f32" })] });
    await withStore(store, async () => {
      const memory = await vectorMemory(store);
      expect(memory.stats().ann).toMatchObject({ active: true, size: 81, loadedFromArtefact: false, quantization: "f32" });
      expect((await memory.search(vectors[3] as Float32Array, { k: 1, index: "ann" }))[0]?.id).toBe("a/003");
    });
  });

  it("never returns its own datums, which sit under dgent.vec/ with a tag to filter them out", async () => {
    await withStore(memoryStore(), async (store) => {
      const memory = await vectorMemory(store);
      await store.put(makeDatum({ id: "x", content: "some text" }));
      const all = await store.list();
      const own = all.filter((d) => d.id.startsWith(RESERVED_PREFIX));
      expect(own).toHaveLength(1);
      expect(own[0]?.metadata["dgent.recall"]).toBe("vector");
      expect(await store.count({ where: { "dgent.recall": { exists: false } } })).toBe(1);
      expect((await memory.search("some text", { k: 10 })).map((h) => h.id)).toEqual(["x"]);
    });
  });
});
