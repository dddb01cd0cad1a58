/**
 * Expiry beyond the kit's suite (core/EXPIRY.md): the suite run over an adapter of only the five
 * methods, across tiers (the upgrader carries the tag and never promotes an expired datum), the
 * background sweeper (started only by an expiring datum, unref'd, stopped at close), a plugin's
 * answer, and makeDatum's options. Clocks are fake; the sweeper's timer is driven by Vitest's
 * fake timers, never waited for.
 */
import { afterEach, afterAll, describe, expect, it, vi } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, makeDatum, type Datum } from "../compose/index.js";
import { EXPIRES_AT, withTtl } from "../core/expiry.js";
import type { Adapter, ResolvedListOptions } from "../core/protocol.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { cachePlugin } from "../plugins/cache/index.js";
import { runConformance } from "../testing/index.js";
import { conflictError } from "../core/tiers.js";
import { sameValue } from "../core/datum.js";

/** A third-party adapter written against the five methods only: no scan, no query, no refs. */
function fiveMethods(): Adapter {
  const data = new Map<string, Datum>();
  return {
    name: "five",
    rank: 10,
    capabilities: { persistent: false, multiProcess: false, nativeCausalChain: false, batch: false, scan: false, evicts: false },
    open: async () => undefined,
    close: async () => undefined,
    put: async (d) => {
      const had = data.get(d.id);
      if (had && !sameValue(had, d)) throw conflictError(d.id, "five");
      if (!had) data.set(d.id, d);
      return d.id;
    },
    get: async (id) => data.get(id) ?? null,
    delete: async (id) => data.delete(id),
    list: async (o: ResolvedListOptions) =>
      [...data.values()]
        .filter((d) => d.id.startsWith(o.prefix) && d.createdAt > o.after)
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1))
        .slice(0, o.limit),
  };
}

runConformance({ name: "five methods, no expiry of their own", create: fiveMethods }, { describe, it }, { only: ["expiry"] });

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), "dgent-expiry-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("expiry across tiers", () => {
  it("the upgrader carries the tag up, never promotes an expired datum, and the copy expires at the same instant", async () => {
    const clock = { now: 1_000_000 };
    const upper = sqliteAdapter({ dataDir: tmp() });
    const lower = memoryAdapter();
    const live = makeDatum({ id: "live", content: "a", createdAt: 1, expiresAt: clock.now + 100 });
    const dead = makeDatum({ id: "dead", content: "b", createdAt: 2, expiresAt: clock.now + 10 });
    const plain = makeDatum({ id: "plain", content: "c", createdAt: 3 });
    // What a fallback tier holds after an outage of the upper one: written there directly.
    await lower.open();
    await lower.putMany?.([live, dead, plain]);
    const store = createStore({ tiers: [upper, lower], upgrader: false, clock: () => clock.now, expirySweepMs: false });
    await store.open();
    clock.now += 10; // "dead" has expired, "live" has not
    await store.upgrade();
    expect((await upper.get("live"))?.metadata[EXPIRES_AT]).toBe(String(1_000_100));
    expect(await upper.get("plain")).not.toBeNull();
    expect(await upper.get("dead")).toBeNull(); // not promoted
    expect((await store.list()).map((d) => d.id)).toEqual(["plain", "live"]);
    clock.now += 90;
    expect(await store.get("live")).toBeNull();
    expect((await store.list()).map((d) => d.id)).toEqual(["plain"]);
    expect(await store.sweepExpired()).toBe(2); // "live" from sqlite, "dead" from memory
    expect(await lower.get("dead")).toBeNull();
    expect(await upper.get("live")).toBeNull();
    await store.close();
  });

  it("a put over an id that expired on the landing tier replaces it across tiers", async () => {
    const clock = { now: 5_000 };
    const store = createStore({ tiers: [sqliteAdapter({ dataDir: tmp() }), memoryAdapter()], upgrader: false, clock: () => clock.now, expirySweepMs: false });
    const first = makeDatum({ id: "s", content: "one", ttlMs: 50, createdAt: clock.now });
    await store.put(first);
    clock.now += 50;
    const second = makeDatum({ id: "s", content: "two", createdAt: clock.now });
    await store.put(second);
    expect(Buffer.from((await store.get("s"))?.content ?? []).toString()).toBe("two");
    await store.close();
  });
});

describe("the background sweeper", () => {
  afterEach(() => void vi.useRealTimers());

  it("starts only once an expiring datum is seen, deletes expired datums on its interval, and stops at close", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const clock = { now: 10_000 };
    const tier = memoryAdapter();
    const store = createStore({ tiers: [tier], clock: () => clock.now, expirySweepMs: 1_000 });
    await store.open();
    const plain = makeDatum({ content: "plain" });
    await store.put(plain);
    await store.get(plain.id);
    await store.list();
    expect(vi.getTimerCount()).toBe(0); // no expiring datum: no sweeper, nothing to pay
    const soon = withTtl(makeDatum({ content: "soon" }), 100, clock.now);
    await store.put(soon);
    expect(vi.getTimerCount()).toBe(1);
    clock.now += 100;
    expect(await tier.get(soon.id)).not.toBeNull(); // hidden by the store, still held by the tier
    await vi.advanceTimersByTimeAsync(1_000);
    // The sweep runs between operations: give the event loop turns (not time) until it is done.
    for (let i = 0; i < 1_000 && (await tier.get(soon.id)) !== null; i++) await new Promise((r) => setImmediate(r));
    expect(await tier.get(soon.id)).toBeNull();
    expect(await tier.get(plain.id)).not.toBeNull();
    await store.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a read of an expiring datum written by someone else starts it too; expirySweepMs: false never does", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const dir = tmp();
    const writer = createStore({ tiers: [sqliteAdapter({ dataDir: dir })], expirySweepMs: false });
    await writer.put(makeDatum({ id: "x", content: "x", ttlMs: 60_000 }));
    expect(vi.getTimerCount()).toBe(0);
    const reader = createStore({ tiers: [sqliteAdapter({ dataDir: dir })], expirySweepMs: 5_000 });
    expect(await reader.get("x")).not.toBeNull();
    expect(vi.getTimerCount()).toBe(1);
    await reader.close();
    await writer.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("expiry and plugins, options and input", () => {
  it("a datum a cache plugin answers get with is checked too", async () => {
    const clock = { now: 1_000 };
    const store = createStore({ tiers: [memoryAdapter()], plugins: [cachePlugin()], clock: () => clock.now, expirySweepMs: false });
    const d = makeDatum({ id: "c", content: "cached", createdAt: clock.now, ttlMs: 10 });
    await store.put(d);
    expect(await store.get("c")).not.toBeNull(); // now cached
    clock.now += 10;
    expect(await store.get("c")).toBeNull();
    await store.close();
  });

  it("makeDatum refuses ttlMs with expiresAt, and bad values; createStore refuses a bad clock or interval", () => {
    expect(() => makeDatum({ content: "x", ttlMs: 1, expiresAt: 2 })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => makeDatum({ content: "x", ttlMs: -1 })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => makeDatum({ content: "x", expiresAt: Number.NaN })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => makeDatum({ content: "x", metadata: { [EXPIRES_AT]: "007" } })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_METADATA" }));
    expect(makeDatum({ content: "x", createdAt: 10, ttlMs: 0.5 }).metadata[EXPIRES_AT]).toBe("11");
    expect(() => createStore({ tiers: [memoryAdapter()], clock: 5 as unknown as () => number })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => createStore({ tiers: [memoryAdapter()], expirySweepMs: 0 })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });

  it("store.tiers are the adapters as given, not the views in front of them", () => {
    const a = memoryAdapter();
    expect(createStore({ tiers: [a] }).tiers[0]).toBe(a);
  });
});

