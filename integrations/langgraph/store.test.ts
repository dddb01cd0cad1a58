/**
 * DgentStore, LangGraph's long-term memory (`BaseStore`) on dgent: items, namespaces, search
 * filters and pages, listNamespaces, batches, checked against LangGraph's own InMemoryStore on the
 * same operations (where the two are meant to agree), and used from a real graph across threads.
 * The checkpoint validation package has no BaseStore suite, so this is the store's whole check.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Annotation, END, InMemoryStore, MemorySaver, START, StateGraph, type LangGraphRunnableConfig } from "@langchain/langgraph";
import type { BaseStore } from "@langchain/langgraph-checkpoint";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createStore, type Store } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { recallPlugin } from "../../plugins/recall/index.js";
import { DgentStore } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-lg-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiers: Record<string, () => Store> = {
  memory: () => createStore({ tiers: [memoryAdapter()] }),
  sqlite: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `${randomBytes(6).toString("hex")}.db`) })] }),
};

/** The same store, seen as a tier without transactions (S3, GCS). */
function withoutTransactions(store: Store): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === "capabilities") return { ...target.capabilities, transactions: false };
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Records the options of every store.query call. */
function spied(store: Store): { store: Store; queries: Array<Record<string, unknown>> } {
  const queries: Array<Record<string, unknown>> = [];
  const proxy = new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (key === "query") return (q: Record<string, unknown>) => (queries.push(q), (value as (q: unknown) => unknown).call(target, q));
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: proxy, queries };
}

const keysOf = (items: ReadonlyArray<{ namespace: string[]; key: string }>) => items.map((i) => `${i.namespace.join(".")}/${i.key}`).sort();

describe.each(Object.keys(tiers))("DgentStore on %s", (tier) => {
  const make = tiers[tier] as () => Store;

  it("put, get, delete: an item keeps its createdAt across updates, its updatedAt moves", async () => {
    const store = new DgentStore({ store: make() });
    expect(await store.get(["users", "u1"], "prefs")).toBeNull();
    await store.put(["users", "u1"], "prefs", { theme: "dark", n: 1 });
    const first = await store.get(["users", "u1"], "prefs");
    expect(first).toMatchObject({ namespace: ["users", "u1"], key: "prefs", value: { theme: "dark", n: 1 } });
    await store.put(["users", "u1"], "prefs", { theme: "light", n: 2 });
    const second = await store.get(["users", "u1"], "prefs");
    expect(second?.value).toEqual({ theme: "light", n: 2 });
    expect(second?.createdAt.getTime()).toBe(first?.createdAt.getTime());
    expect(second!.updatedAt.getTime()).toBeGreaterThan(first!.updatedAt.getTime());
    await store.delete(["users", "u1"], "prefs");
    expect(await store.get(["users", "u1"], "prefs")).toBeNull();
    await store.delete(["users", "u1"], "prefs"); // deleting nothing is fine
    await (await store.store()).close();
  });

  it("keys and labels with /, spaces and % stay apart; a namespace prefix is a prefix of labels, not of text", async () => {
    const store = new DgentStore({ store: make() });
    await store.put(["a"], "k/1", { v: 1 });
    await store.put(["a", "b c"], "k 2", { v: 2 });
    await store.put(["a/b"], "k%3", { v: 3 });
    await store.put(["ab"], "k", { v: 4 });
    expect((await store.get(["a"], "k/1"))?.value).toEqual({ v: 1 });
    expect((await store.get(["a/b"], "k%3"))?.value).toEqual({ v: 3 });
    expect(keysOf(await store.search(["a"]))).toEqual(["a.b c/k 2", "a/k/1"]);
    expect(keysOf(await store.search([]))).toEqual(["a.b c/k 2", "a/b/k%3", "a/k/1", "ab/k"]);
    await (await store.store()).close();
  });

  it("search: equality and $in are the store's tag filters; pages are newest first and complete", async () => {
    const { store: spy, queries } = spied(make());
    const store = new DgentStore({ store: spy });
    for (let i = 0; i < 30; i++) await store.put(["docs"], `d${i}`, { type: i % 3 === 0 ? "report" : "note", n: i });
    queries.length = 0;
    const reports = await store.search(["docs"], { filter: { type: "report" }, limit: 100 });
    expect(reports.map((r) => r.key).sort()).toEqual([0, 12, 15, 18, 21, 24, 27, 3, 6, 9].map((i) => `d${i}`));
    // Most recently updated first (items put within one millisecond tie, and go by id).
    const times = reports.map((r) => r.updatedAt.getTime());
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(queries[0]).toMatchObject({ where: { "v.type": '"report"' } });

    queries.length = 0;
    const some = await store.search(["docs"], { filter: { n: { $in: [1, 2, 3, "4"] } } });
    expect(some.map((r) => r.key).sort()).toEqual(["d1", "d2", "d3"]);
    expect(queries[0]).toMatchObject({ where: { "v.n": { in: ["1", "2", "3", '"4"'] } } });

    // Paging with offset: every item once, in the order of one big page, the skipped part read as ids only.
    const whole = (await store.search(["docs"], { limit: 100 })).map((p) => p.key);
    expect(whole.slice().sort()).toEqual(Array.from({ length: 30 }, (_, i) => `d${i}`).sort());
    queries.length = 0;
    const pages = [];
    for (let offset = 0; offset < 30; offset += 7) pages.push(...(await store.search(["docs"], { limit: 7, offset })));
    expect(pages.map((p) => p.key)).toEqual(whole);
    expect(queries.some((q) => q.select === "ids")).toBe(true);
    expect(await store.search(["docs"], { offset: 30 })).toEqual([]);
    expect(await store.search(["docs"], { offset: 29, limit: 5 })).toHaveLength(1);
    await (await store.store()).close();
  });

  it("search: range, $ne and $nin are checked on the pages the pushed-down filters give, before offset and limit", async () => {
    const store = new DgentStore({ store: make() });
    for (let i = 0; i < 50; i++) await store.put(["m"], `k${i}`, { n: i, kind: i % 2 ? "odd" : "even" });
    const order = (await store.search(["m"], { limit: 100 })).map((f) => f.value.n as number);
    const expected = (keep: (n: number) => boolean) => order.filter(keep);
    const found = await store.search(["m"], { filter: { kind: "even", n: { $gte: 10, $lt: 30 } }, limit: 3, offset: 2 });
    expect(found.map((f) => f.value.n)).toEqual(expected((n) => n % 2 === 0 && n >= 10 && n < 30).slice(2, 5));
    expect(found).toHaveLength(3);
    const ne = await store.search(["m"], { filter: { n: { $ne: 3, $lte: 4 } }, limit: 10 });
    expect(ne.map((f) => f.value.n)).toEqual(expected((n) => n !== 3 && n <= 4));
    expect(ne).toHaveLength(4);
    const nin = await store.search(["m"], { filter: { n: { $nin: [0, 1, 2], $lt: 5 } }, limit: 10 });
    expect(nin.map((f) => (f.value.n as number)).sort()).toEqual([3, 4]);
    await (await store.store()).close();
  });

  it("search with a semantic query and no recall plugin on the store is DGENT_UNSUPPORTED naming the plugin", async () => {
    const store = new DgentStore({ store: make() });
    await expect(store.search(["m"], { query: "something like this" })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED", message: expect.stringContaining("recall plugin") });
    await (await store.store()).close();
  });

  it("semantic search through the recall plugin: nearest first with scores, in the namespace, with filters, offset and limit", async () => {
    const store = new DgentStore({ store: createStore({ tiers: [tier === "memory" ? memoryAdapter() : sqliteAdapter({ path: join(dir, `${randomBytes(6).toString("hex")}.db`) })], plugins: [recallPlugin()] }) });
    const foods = ["pizza with basil and tomato", "sushi rice and raw fish", "pasta with tomato sauce", "green salad with olive oil", "tomato soup"];
    for (const [i, text] of foods.entries()) await store.put(["prefs", "food"], `f${i}`, { text, n: i });
    await store.put(["other"], "x", { text: "tomato tomato tomato", n: 9 }); // outside the namespace searched
    const hits = await store.search(["prefs"], { query: "tomato", limit: 10 });
    expect(hits.map((h) => h.key)).not.toContain("x");
    expect(new Set(hits.slice(0, 3).map((h) => h.key))).toEqual(new Set(["f0", "f2", "f4"]));
    const scores = hits.map((h) => h.score as number);
    expect(scores.every((x) => typeof x === "number")).toBe(true);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores); // best first
    // An equality filter is applied during the search; a range is checked on the hits.
    expect((await store.search(["prefs"], { query: "tomato", filter: { n: 2 } })).map((h) => h.key)).toEqual(["f2"]);
    const ranged = await store.search(["prefs"], { query: "tomato", filter: { n: { $gte: 2 } }, limit: 10 });
    expect(ranged.every((h) => (h.value.n as number) >= 2)).toBe(true);
    expect(ranged.map((h) => h.key).slice(0, 2).sort()).toEqual(["f2", "f4"]);
    // offset and limit page through the same order.
    const all = hits.map((h) => h.key);
    expect((await store.search(["prefs"], { query: "tomato", offset: 1, limit: 2 })).map((h) => h.key)).toEqual(all.slice(1, 3));
    // A deleted item is not found again.
    await store.delete(["prefs", "food"], "f4");
    expect((await store.search(["prefs"], { query: "tomato", limit: 10 })).map((h) => h.key)).not.toContain("f4");
    await (await store.store()).close();
  });

  it("listNamespaces: prefix, suffix, wildcards, maxDepth, limit and offset, as LangGraph's InMemoryStore lists them", async () => {
    const store = new DgentStore({ store: make() });
    const reference = new InMemoryStore();
    const namespaces = [["a"], ["a", "b"], ["a", "b", "c"], ["a", "x", "c"], ["b", "c"], ["users", "u1", "memories"], ["users", "u2", "memories"], ["users", "u2", "prefs"]];
    for (const ns of namespaces) {
      for (const s of [store, reference] as BaseStore[]) {
        await s.put(ns, "k1", { v: 1 });
        await s.put(ns, "k2", { v: 2 });
      }
    }
    const cases = [
      {},
      { prefix: ["a"] },
      { prefix: ["a", "*", "c"] },
      { suffix: ["c"] },
      { suffix: ["memories"], prefix: ["users"] },
      { prefix: ["users", "*"], maxDepth: 2 },
      { maxDepth: 1 },
      { limit: 3, offset: 2 },
      { prefix: ["nothing"] },
    ];
    for (const options of cases) expect(await store.listNamespaces(options)).toEqual(await reference.listNamespaces(options));
    await (await store.store()).close();
  });

  it("search filters agree with InMemoryStore on random items and filters", async () => {
    const scalar = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom("a", "b", "c"), fc.boolean());
    const value = fc.record({ x: scalar, y: scalar }, { requiredKeys: ["x"] });
    const condition = fc.oneof(
      scalar,
      fc.record({ $eq: scalar }),
      fc.record({ $ne: scalar }),
      fc.record({ $in: fc.array(scalar, { minLength: 1, maxLength: 3 }) }),
      fc.record({ $nin: fc.array(scalar, { maxLength: 3 }) }),
      fc.record({ $gt: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ $lte: fc.integer({ min: 0, max: 5 }) }),
    );
    const filter = fc.dictionary(fc.constantFrom("x", "y"), condition, { maxKeys: 2 });
    const base = make();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 12 }), filter, async (values, f) => {
        const store = new DgentStore({ store: base, prefix: `p${run++}/` });
        const reference = new InMemoryStore();
        for (const [i, v] of values.entries()) {
          await store.put(["ns"], `k${i}`, v);
          await reference.put(["ns"], `k${i}`, v);
        }
        const mine = await store.search(["ns"], { filter: f, limit: 100 });
        const theirs = await reference.search(["ns"], { filter: f, limit: 100 });
        expect(keysOf(mine)).toEqual(keysOf(theirs));
      }),
      { numRuns: 60 },
    );
    await base.close();
  });

  it("batch: gets, puts, searches and listNamespaces in one call, each seeing the operations before it", async () => {
    const store = new DgentStore({ store: make() });
    const results: unknown[] = await store.batch([
      { namespace: ["b"], key: "x", value: { v: 1 } },
      { namespace: ["b"], key: "y", value: { v: 2 } },
      { namespace: ["b"], key: "x" },
      { namespace: ["b"], key: "missing" },
      { namespacePrefix: ["b"], filter: { v: 2 }, limit: 10, offset: 0 },
      { namespace: ["b"], key: "y", value: null },
      { namespacePrefix: ["b"], limit: 10, offset: 0 },
      { matchConditions: [{ matchType: "prefix", path: ["b"] }], limit: 10, offset: 0 },
    ]);
    expect(results[0]).toBeNull();
    expect((results[2] as { value: unknown }).value).toEqual({ v: 1 });
    expect(results[3]).toBeNull();
    expect((results[4] as Array<{ key: string }>).map((i) => i.key)).toEqual(["y"]);
    expect((results[6] as Array<{ key: string }>).map((i) => i.key)).toEqual(["x"]);
    expect(results[7]).toEqual([["b"]]);
    await (await store.store()).close();
  });
});

describe("DgentStore without transactions (S3, GCS)", () => {
  it("new items and deletes work; replacing an item is refused (no reader may find it missing), nothing changes", async () => {
    const base = createStore({ tiers: [memoryAdapter()] });
    const store = new DgentStore({ store: withoutTransactions(base) });
    await store.put(["n"], "k", { v: 1 });
    await expect(store.put(["n"], "k", { v: 2 })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED", message: expect.stringContaining("transactions") });
    expect((await store.get(["n"], "k"))?.value).toEqual({ v: 1 });
    await store.delete(["n"], "k");
    expect(await store.get(["n"], "k")).toBeNull();
    await base.close();
  });
});

it("a real graph remembers across threads through DgentStore (checkpoints per thread, memories per user)", async () => {
  const store = new DgentStore({ store: createStore({ tiers: [memoryAdapter()] }) });
  const State = Annotation.Root({ user: Annotation<string>, said: Annotation<string>, known: Annotation<string[]> });
  const graph = new StateGraph(State)
    .addNode("remember", async (s, config: LangGraphRunnableConfig) => {
      const memories = config.store as BaseStore;
      await memories.put([s.user, "facts"], randomBytes(4).toString("hex"), { text: s.said });
      const known = await memories.search([s.user, "facts"], { limit: 10 });
      return { known: known.map((k) => k.value.text as string).sort() };
    })
    .addEdge(START, "remember")
    .addEdge("remember", END)
    .compile({ checkpointer: new MemorySaver(), store });
  await graph.invoke({ user: "ada", said: "likes tea" }, { configurable: { thread_id: "1" } });
  await graph.invoke({ user: "bob", said: "likes coffee" }, { configurable: { thread_id: "2" } });
  const out = await graph.invoke({ user: "ada", said: "lives in London" }, { configurable: { thread_id: "3" } });
  expect(out.known).toEqual(["likes tea", "lives in London"]);
  expect(await store.listNamespaces()).toEqual([["ada", "facts"], ["bob", "facts"]]);
  await (await store.store()).close();
});
