import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { ProbeTier, expectDgent, removeTempDirs, sqliteTier, text } from "../../test/plugins-support.js";
import { cache, cachePlugin, entrySize, type CacheOptions } from "./index.js";

afterAll(removeTempDirs);

const storeWith = (tier: ProbeTier, options: CacheOptions = {}) => createStore({ tiers: [tier], plugins: [cachePlugin(options)] });

describe("cache", () => {
  it("answers repeated gets without the tier and counts hits and misses", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier);
    const d = makeDatum({ content: "hello" });
    await store.put(d);
    const stats = (await store.plugin(cache)).stats;
    for (let i = 0; i < 5; i++) expect(text(await store.get(d.id))).toBe("hello");
    expect(tier.calls.get).toBe(0); // filled on put: never asked the tier
    expect(await store.get("missing")).toBeNull();
    expect(await store.get("missing")).toBeNull(); // misses are not cached
    expect(tier.calls.get).toBe(2);
    expect(stats()).toMatchObject({ hits: 5, misses: 2, fills: 1, entries: 1, hitRate: 5 / 7 });
    await store.close();
    expect(stats().hits).toBe(5); // the handle outlives the store
  });

  it("fills from a slower tier on read (read-through), then serves from memory", async () => {
    const sqlite = sqliteTier();
    const writer = createStore({ tiers: [sqlite] });
    const d = makeDatum({ content: "written elsewhere" });
    await writer.put(d);
    await writer.close();
    const tier = new ProbeTier(sqliteAdapter({ path: sqlite.path }));
    const store = storeWith(tier);
    const handle = await store.plugin(cache);
    expect(handle.has(d.id)).toBe(false);
    expect(text(await store.get(d.id))).toBe("written elsewhere");
    expect(handle.has(d.id)).toBe(true);
    expect(text(await store.get(d.id))).toBe("written elsewhere");
    expect(tier.calls.get).toBe(1);
    expect(handle.stats()).toMatchObject({ hits: 1, misses: 1, fills: 1 });
    await store.close();
  });

  it("fillOnPut: false caches only what reads bring in", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier, { fillOnPut: false });
    const d = makeDatum({ content: "x" });
    await store.put(d);
    const handle = await store.plugin(cache);
    expect(handle.has(d.id)).toBe(false);
    await store.get(d.id);
    await store.get(d.id);
    expect(tier.calls.get).toBe(1);
    expect(handle.stats()).toMatchObject({ hits: 1, misses: 1, fills: 1 });
  });

  it("is bounded by count: the least recently used go first", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier, { maxEntries: 3 });
    const ds = Array.from({ length: 5 }, (_, i) => makeDatum({ content: `d${i}`, id: `d${i}` }));
    for (const d of ds.slice(0, 3)) await store.put(d);
    await store.get("d0"); // d0 becomes most recent; d1 is now the least recently used
    for (const d of ds.slice(3)) await store.put(d);
    const handle = await store.plugin(cache);
    expect(["d0", "d1", "d2", "d3", "d4"].map((id) => handle.has(id))).toEqual([true, false, false, true, true]);
    expect(handle.stats()).toMatchObject({ entries: 3, evictions: 2 });
    expect(text(await store.get("d1"))).toBe("d1"); // still in the tier
    expect(tier.calls.get).toBe(1);
  });

  it("is bounded by bytes, and a datum bigger than the bound is not cached", async () => {
    const tier = new ProbeTier();
    const one = makeDatum({ content: new Uint8Array(1000), id: "a" });
    const maxBytes = entrySize(one) * 3 + 10;
    const store = storeWith(tier, { maxBytes });
    for (let i = 0; i < 10; i++) await store.put(makeDatum({ content: new Uint8Array(1000), id: `b${i}` }));
    const handle = await store.plugin(cache);
    expect(handle.stats().bytes).toBeLessThanOrEqual(maxBytes);
    expect(handle.stats().entries).toBe(3);
    const big = makeDatum({ content: new Uint8Array(maxBytes + 1) });
    await store.put(big);
    expect(handle.has(big.id)).toBe(false);
    expect((await store.get(big.id))?.content.byteLength).toBe(maxBytes + 1);
    expect(handle.stats().entries).toBe(3);
  });

  it("is invalidated by delete, and a deleted id reads null", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier);
    const d = makeDatum({ content: "doomed" });
    await store.put(d);
    await store.get(d.id);
    expect(await store.delete(d.id)).toBe(true);
    const handle = await store.plugin(cache);
    expect(handle.has(d.id)).toBe(false);
    expect(await store.get(d.id)).toBeNull();
    expect(handle.stats().invalidations).toBe(1);
    // The id may be reused with a different value (the law is per stored datum).
    await store.put(makeDatum({ id: d.id, content: "reborn" }));
    expect(text(await store.get(d.id))).toBe("reborn");
  });

  it("hands out copies: mutating what get returned or what was put changes nothing cached", async () => {
    const store = storeWith(new ProbeTier());
    const d = makeDatum({ content: "abc", metadata: { k: "v" } });
    await store.put(d);
    (d.content as Uint8Array)[0] = 120;
    (d.metadata as Record<string, string>).k = "changed";
    const first = await store.get(d.id);
    expect(text(first)).toBe("abc");
    expect(first?.metadata.k).toBe("v");
    (first?.content as Uint8Array)[1] = 120;
    (first?.metadata as Record<string, string>).k = "mutated";
    const second = await store.get(d.id);
    expect(text(second)).toBe("abc");
    expect(second?.metadata.k).toBe("v");
    expect(second).not.toBe(first);
  });

  it("a read that raced a delete does not put the deleted datum back", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier, { fillOnPut: false });
    const d = makeDatum({ content: "racy" });
    await store.put(d);
    const gate = tier.hold("get", "after");
    const reading = store.get(d.id); // misses, reads the datum from the tier, and waits there
    await gate.reached;
    expect(await store.delete(d.id)).toBe(true); // the delete completes while the read waits
    gate.open();
    expect(text(await reading)).toBe("racy"); // linearised before the delete: fine to return
    const handle = await store.plugin(cache);
    expect(handle.has(d.id)).toBe(false); // but not cached
    expect(handle.stats().skippedFills).toBe(1);
    expect(await store.get(d.id)).toBeNull();
  });

  it("a put that raced a delete of the same id does not cache the deleted datum", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier);
    const d = makeDatum({ content: "racy put" });
    const gate = tier.hold("put", "after");
    const putting = store.put(d); // stored on the tier, waiting before afterPut
    await gate.reached;
    expect(await store.delete(d.id)).toBe(true); // the delete completes in between
    gate.open();
    await putting;
    const handle = await store.plugin(cache);
    expect(await tier.inner.get(d.id)).toBeNull();
    expect(handle.has(d.id)).toBe(false);
    expect(await store.get(d.id)).toBeNull();
  });

  it("is invalidated when a bounded tier evicts a datum", async () => {
    const store = createStore({ tiers: [memoryAdapter({ maxDatums: 2 })], plugins: [cache] });
    for (let i = 0; i < 3; i++) await store.put(makeDatum({ content: `e${i}`, id: `e${i}`, createdAt: i + 1 }));
    const handle = await store.plugin(cache);
    expect(handle.has("e0")).toBe(false);
    expect(await store.get("e0")).toBeNull(); // the store no longer has it; neither does the cache
    expect(text(await store.get("e2"))).toBe("e2");
  });

  it("a conflicting put is refused and leaves the cached datum as it was", async () => {
    const store = storeWith(new ProbeTier());
    const d = makeDatum({ content: "first" });
    await store.put(d);
    await expectDgent(store.put({ ...d, content: new TextEncoder().encode("second") }), "DGENT_CONFLICT");
    expect(text(await store.get(d.id))).toBe("first");
  });

  it("an identical re-put keeps the first createdAt in the cache, as in the tiers", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier);
    const d = makeDatum({ content: "same", idStrategy: "content", createdAt: 1 });
    await store.put(d);
    expect(await store.put({ ...d, createdAt: 2 })).toBe(d.id);
    expect((await store.get(d.id))?.createdAt).toBe(1);
    expect(tier.calls.get).toBe(0);
  });

  it("ttlMs expires entries older than ttlMs, measured with the injected clock", async () => {
    let now = 5_000;
    const tier = new ProbeTier();
    const store = storeWith(tier, { ttlMs: 30, now: () => now });
    const stats = (await store.plugin(cache)).stats;
    const d = makeDatum({ content: "brief" });
    await store.put(d); // cached at 5000
    now += 30;
    expect(text(await store.get(d.id))).toBe("brief"); // exactly ttlMs old: still cached
    expect(tier.calls.get).toBe(0);
    now += 1;
    expect(text(await store.get(d.id))).toBe("brief"); // older: expired, read from the tier, cached again
    expect(tier.calls.get).toBe(1);
    expect(stats()).toMatchObject({ evictions: 1, fills: 2, entries: 1 });
    now += 30;
    await store.get(d.id); // 30 ms after the refill: cached
    expect(tier.calls.get).toBe(1);
    now += 1_000_000;
    await store.get(d.id);
    expect(tier.calls.get).toBe(2);
    await store.close();
  });

  it("ttlMs without an injected clock uses the real one; no ttlMs never asks the clock", async () => {
    const tier = new ProbeTier();
    const store = storeWith(tier, { ttlMs: 3_600_000 });
    const d = makeDatum({ content: "an hour" });
    await store.put(d);
    await store.get(d.id);
    expect(tier.calls.get).toBe(0);
    let asked = 0;
    const forever = storeWith(new ProbeTier(), {
      now: () => {
        asked++;
        return 0;
      },
    });
    await forever.put(d);
    expect((await forever.get(d.id))?.id).toBe(d.id);
    expect(asked).toBe(0);
  });

  it("checks its options with ajv", () => {
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [cachePlugin({ maxEntries: 0 })] })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS", message: expect.stringContaining("/maxEntries") }),
    );
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [cachePlugin({ size: 1 } as never)] })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
    );
    for (const now of [1_000, "Date.now", null, {}]) {
      expect(() => createStore({ tiers: [memoryAdapter()], plugins: [cachePlugin({ now } as never)] })).toThrow(
        expect.objectContaining({ code: "DGENT_INVALID_OPTIONS", message: expect.stringContaining("/now") }),
      );
    }
  });

  it("store.plugin names a plugin the store does not use with a coded error", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await expectDgent(store.plugin(cache), "DGENT_UNKNOWN_PLUGIN");
    await expectDgent(store.plugin("cache"), "DGENT_UNKNOWN_PLUGIN");
  });
});
