import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "redis";
import { makeDatum, type Datum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, startRedis, type RedisServer } from "../../test/harness/redis.js";
import { DEFAULT_EXPIRY_GRACE_MS } from "./options.js";
import { redisAdapter, type RedisAdapter } from "./index.js";

// Native expiry (README.md, "Expiry"): keys get PXAT at put; index entries left by a datum Redis
// removed are skipped by every read and reaped. No sleeps: a deadline far ahead is read back with
// PEXPIRETIME, and a deadline already past by the server's clock makes Redis drop the key at once.
let server: RedisServer;
beforeAll(async () => {
  assertBuilt();
  server = await startRedis();
});
afterAll(async () => {
  await server?.close();
});

let n = 0;
const fresh = (label: string) => `${label}-${process.pid}-${n++}`;
const HOUR = 3_600_000;

interface Raw {
  sendCommand<T = unknown>(args: string[]): Promise<T>;
}

async function raw<T>(fn: (c: Raw) => Promise<T>): Promise<T> {
  const c = createClient({ url: server.url, RESP: 2 });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** PEXPIRETIME of each datum's key (-1: no expiry, -2: no key). */
const expiryTimes = (namespace: string, ids: readonly string[]) =>
  raw((c) => Promise.all(ids.map((id) => c.sendCommand<number>(["PEXPIRETIME", `dgent:{${namespace}}:d:${id}`]))));

/** What the namespace's bookkeeping holds: time index, id index, expiry index, recorded sizes, byte count. */
async function books(namespace: string) {
  const p = `dgent:{${namespace}}:`;
  return raw(async (c) => ({
    t: (await c.sendCommand<string[]>(["ZRANGE", `${p}t`, "0", "-1"])).sort(),
    i: (await c.sendCommand<string[]>(["ZRANGE", `${p}i`, "0", "-1"])).sort(),
    x: (await c.sendCommand<string[]>(["ZRANGE", `${p}x`, "0", "-1"])).sort(),
    e: (await c.sendCommand<string[]>(["HKEYS", `${p}e`])).sort(),
    b: Number((await c.sendCommand<string | null>(["GET", `${p}b`])) ?? 0),
  }));
}

const text = (d: Datum | null | undefined) => (d ? Buffer.from(d.content).toString() : null);
const ids = (ds: readonly Datum[]) => ds.map((d) => d.id);

describe("native expiry: when a key gets PXAT", () => {
  it("a store on the system clock arms it: the key's PXAT is expiresAt + the margin, on put, putMany and a transaction; a datum without expiry gets none", async () => {
    const namespace = fresh("armed");
    const tier = redisAdapter({ url: server.url, namespace });
    const store = createStore({ tiers: [tier], expirySweepMs: false });
    await store.open();
    const { armed, marginMs } = tier.nativeExpiry;
    expect(armed).toBe(true);
    // The grace, plus the server clock's lead (same machine: at most a round trip's worth).
    expect(marginMs).toBeGreaterThanOrEqual(DEFAULT_EXPIRY_GRACE_MS);
    expect(marginMs).toBeLessThan(DEFAULT_EXPIRY_GRACE_MS + 1_000);
    const at = Date.now() + HOUR;
    await store.put(makeDatum({ id: "one", content: "a", expiresAt: at }));
    await store.putMany([makeDatum({ id: "many/1", content: "bb", expiresAt: at + 1 }), makeDatum({ id: "many/2", content: "ccc" })]);
    await store.transaction([{ op: "put", datum: makeDatum({ id: "tx", content: "dddd", expiresAt: at + 2 }) }]);
    await store.put(makeDatum({ id: "forever", content: "eeeee" }));
    expect(await expiryTimes(namespace, ["one", "many/1", "many/2", "tx", "forever"])).toEqual([at + marginMs, at + 1 + marginMs, -1, at + 2 + marginMs, -1]);
    expect(await books(namespace)).toMatchObject({ x: ["many/1", "one", "tx"], e: ["many/1", "one", "tx"], b: 15 });
    await raw(async (c) => {
      expect(await c.sendCommand(["ZSCORE", `dgent:{${namespace}}:x`, "one"])).toBe(String(at + marginMs));
      expect(await c.sendCommand(["HGET", `dgent:{${namespace}}:e`, "tx"])).toBe("4");
    });
    // A delete takes the expiry bookkeeping with it.
    expect(await store.delete("one")).toBe(true);
    expect(await books(namespace)).toMatchObject({ x: ["many/1", "tx"], e: ["many/1", "tx"], b: 14 });
    await store.close();
  });

  it("a store with an injected clock does not arm it under \"auto\", nor does nativeExpiry: false; nativeExpiry: true arms it whatever the clock", async () => {
    const at = Date.now() + HOUR;
    const cases = [
      { nativeExpiry: "auto" as const, clock: () => Date.now(), armed: false },
      { nativeExpiry: false, clock: undefined, armed: false },
      { nativeExpiry: true, clock: () => 0, armed: true },
    ];
    for (const c of cases) {
      const namespace = fresh("modes");
      const tier = redisAdapter({ url: server.url, namespace, nativeExpiry: c.nativeExpiry, expiryGraceMs: 5_000 });
      const store = createStore({ tiers: [tier], expirySweepMs: false, ...(c.clock ? { clock: c.clock } : {}) });
      await store.open();
      expect(tier.nativeExpiry.armed).toBe(c.armed);
      await store.put(makeDatum({ id: "d", content: "x", expiresAt: at }));
      const [time] = await expiryTimes(namespace, ["d"]);
      expect(time).toBe(c.armed ? at + tier.nativeExpiry.marginMs : -1);
      if (c.armed) expect(tier.nativeExpiry.marginMs).toBeGreaterThanOrEqual(5_000);
      expect(text(await store.get("d"))).toBe("x");
      await store.close();
    }
  });
});

describe("native expiry: index entries of a datum Redis removed", () => {
  /**
   * An adapter (no store, so no expiry view: what the tier itself returns) with no grace, and
   * datums whose expiry is long past by the real clock: Redis drops their keys at once, leaving
   * their index entries behind.
   */
  async function gone(label: string) {
    const namespace = fresh(label);
    const tier: RedisAdapter = redisAdapter({ url: server.url, namespace, expiryGraceMs: 0 });
    await tier.open();
    expect(tier.nativeExpiry.armed).toBe(true);
    const past = { expiresAt: 1_000 };
    await tier.putMany([
      makeDatum({ id: "c/0", content: "root", createdAt: 10 }),
      makeDatum({ id: "c/1", content: "gone1", createdAt: 11, causalParent: "c/0", ...past }),
      makeDatum({ id: "c/2", content: "tip", createdAt: 12, causalParent: "c/1" }),
    ]);
    await tier.put(makeDatum({ id: "g/1", content: "gone22", createdAt: 13, ...past }));
    await tier.put(makeDatum({ id: "k/1", content: "kept", createdAt: 14, expiresAt: Date.now() + HOUR }));
    // Removed by Redis, still indexed: the state every read must cope with.
    expect(await expiryTimes(namespace, ["c/1", "g/1"])).toEqual([-2, -2]);
    const before = await books(namespace);
    expect(before).toEqual({ t: ["c/0", "c/1", "c/2", "g/1", "k/1"], i: ["c/0", "c/1", "c/2", "g/1", "k/1"], x: ["c/1", "g/1", "k/1"], e: ["c/1", "g/1", "k/1"], b: 4 + 5 + 3 + 6 + 4 });
    return { namespace, tier };
  }
  /** Bookkeeping once both removed datums are reaped: only live datums, their bytes. */
  const clean = { t: ["c/0", "c/2", "k/1"], i: ["c/0", "c/2", "k/1"], x: ["k/1"], e: ["k/1"], b: 4 + 3 + 4 };

  it("get answers null; list (whole, by prefix on both paths) skips them and reaps them", async () => {
    const { namespace, tier } = await gone("list");
    expect(await tier.get("c/1")).toBeNull();
    expect(ids(await tier.list({ prefix: "", after: -1, limit: 2 }))).toEqual(["k/1", "c/2"]);
    expect(ids(await tier.list({ prefix: "", after: -1, limit: 10 }))).toEqual(["k/1", "c/2", "c/0"]);
    expect(await books(namespace)).toEqual(clean);
    await tier.close();
    const other = await gone("prefix");
    expect(ids(await other.tier.list({ prefix: "c/", after: -1, limit: 10 }))).toEqual(["c/2", "c/0"]);
    expect(ids(await other.tier.list({ prefix: "g/", after: -1, limit: 10 }))).toEqual([]);
    expect(await books(other.namespace)).toEqual(clean);
    await other.tier.close();
  });

  it("causalChain ends at the removed ancestor; scan leaves them out; both reap", async () => {
    const a = await gone("chain");
    expect(ids(await a.tier.causalChain("c/2", 100))).toEqual(["c/2"]);
    expect(await a.tier.causalChain("c/1", 100)).toEqual([]);
    expect((await books(a.namespace)).t).toEqual(["c/0", "c/2", "g/1", "k/1"]);
    await a.tier.close();
    const b = await gone("scan");
    const seen: string[] = [];
    for await (const d of b.tier.scan()) seen.push(d.id);
    expect(seen).toEqual(["c/0", "c/2", "k/1"]);
    expect(await books(b.namespace)).toEqual(clean);
    await b.tier.close();
  });

  it("stats reaps every due entry first, so count and bytes are what the namespace holds; delete answers false and reaps", async () => {
    const a = await gone("stats");
    expect(await a.tier.stats()).toMatchObject({ count: 3, bytes: 11 });
    expect(await books(a.namespace)).toEqual(clean);
    await a.tier.close();
    const b = await gone("delete");
    expect(await b.tier.deleteIds(["c/1", "g/1", "k/1"])).toEqual(["k/1"]);
    expect(await books(b.namespace)).toEqual({ t: ["c/0", "c/2"], i: ["c/0", "c/2"], x: [], e: [], b: 7 });
    await b.tier.close();
  });

  it("stats reaps due entries in ranges of 500 until none is left (1 200 removed datums)", async () => {
    const namespace = fresh("many");
    const tier = redisAdapter({ url: server.url, namespace, expiryGraceMs: 0 });
    await tier.open();
    const removed = Array.from({ length: 1_200 }, (_, k) => makeDatum({ id: `r/${k}`, content: "12345", createdAt: k, expiresAt: 1_000 }));
    await tier.putMany([...removed, makeDatum({ id: "live", content: "abc", createdAt: 5_000 })]);
    expect((await books(namespace)).t).toHaveLength(1_201);
    expect(await tier.stats()).toMatchObject({ count: 1, bytes: 3 });
    expect(await books(namespace)).toEqual({ t: ["live"], i: ["live"], x: [], e: [], b: 3 });
    await tier.close();
  });

  it("a put of the id again succeeds and takes the leftover entries over, with the byte count right", async () => {
    const { namespace, tier } = await gone("reput");
    await tier.put(makeDatum({ id: "g/1", content: "back", createdAt: 20 })); // no expiry this time
    await tier.put(makeDatum({ id: "c/1", content: "again!", createdAt: 21, causalParent: "c/0", expiresAt: Date.now() + HOUR }));
    expect(await books(namespace)).toEqual({ t: ["c/0", "c/1", "c/2", "g/1", "k/1"], i: ["c/0", "c/1", "c/2", "g/1", "k/1"], x: ["c/1", "k/1"], e: ["c/1", "k/1"], b: 4 + 6 + 3 + 4 + 4 });
    expect(await tier.stats()).toMatchObject({ count: 5, bytes: 21 });
    expect(ids(await tier.causalChain("c/2", 100))).toEqual(["c/0", "c/1", "c/2"]); // oldest first
    await tier.close();
  });

  it("a putMany of the ids again does the same in one batch (the batched writes), a repeated datum and a new id with them", async () => {
    const { namespace, tier } = await gone("reputmany");
    const back = makeDatum({ id: "g/1", content: "back", createdAt: 20 });
    await tier.putMany([
      back,
      makeDatum({ id: "c/1", content: "again!", createdAt: 21, causalParent: "c/0", expiresAt: Date.now() + HOUR }),
      back,
      makeDatum({ id: "n/1", content: "new", createdAt: 22 }),
      makeDatum({ id: "c/0", content: "root", createdAt: 99 }), // stored already with the same value: nothing written
    ]);
    expect(await books(namespace)).toEqual({
      t: ["c/0", "c/1", "c/2", "g/1", "k/1", "n/1"],
      i: ["c/0", "c/1", "c/2", "g/1", "k/1", "n/1"],
      x: ["c/1", "k/1"],
      e: ["c/1", "k/1"],
      b: 4 + 6 + 3 + 4 + 4 + 3,
    });
    expect(await tier.stats()).toMatchObject({ count: 6, bytes: 24 });
    expect((await tier.list({ prefix: "", after: -1, limit: 10 })).map((d) => [d.id, d.createdAt])).toEqual([
      ["n/1", 22],
      ["c/1", 21],
      ["g/1", 20],
      ["k/1", 14],
      ["c/2", 12],
      ["c/0", 10],
    ]);
    await expect(tier.putMany([makeDatum({ id: "x/1", content: "a" }), makeDatum({ id: "n/1", content: "other" })])).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect(await tier.get("x/1")).toBeNull(); // all or nothing
    await tier.close();
  });

  it("through a store whose clock still calls them live (nativeExpiry: true): get, list, query, count, getMany, children and chains leave them out without failing", async () => {
    const namespace = fresh("store");
    const tier = redisAdapter({ url: server.url, namespace, nativeExpiry: true, expiryGraceMs: 0 });
    // The store's clock is behind the expiry (1 000), so its expiry view hides nothing: what the
    // reads leave out, they leave out because the keys are gone.
    const store = createStore({ tiers: [tier], clock: () => 500, expirySweepMs: false });
    await store.open();
    const tags = { metadata: { role: "user" } };
    await store.put(makeDatum({ id: "s/0", content: "root", createdAt: 10, ...tags }));
    await store.put(makeDatum({ id: "s/1", content: "gone", createdAt: 11, causalParent: "s/0", expiresAt: 1_000, ...tags }));
    await store.put(makeDatum({ id: "s/2", content: "tip", createdAt: 12, causalParent: "s/0", ...tags }));
    await store.put(makeDatum({ id: "s/3", content: "leaf", createdAt: 13, causalParent: "s/1", ...tags }));
    expect(await store.get("s/1")).toBeNull();
    expect(ids(await store.list({ limit: 10 }))).toEqual(["s/3", "s/2", "s/0"]);
    expect(ids((await store.query({ where: { role: "user" }, order: "oldest", limit: 10 })).items)).toEqual(["s/0", "s/2", "s/3"]);
    expect(await store.count({ where: { role: "user" } })).toBe(3);
    expect((await store.getMany(["s/0", "s/1"])).map((d) => d?.id ?? null)).toEqual(["s/0", null]);
    expect(ids((await store.children("s/0")).items)).toEqual(["s/2"]);
    expect(ids(await store.causalChain("s/3"))).toEqual(["s/3"]);
    expect((await store.backend()).tiers[0]).toMatchObject({ count: 3, bytes: 11 });
    expect((await books(namespace)).t).toEqual(["s/0", "s/2", "s/3"]);
    await store.close();
  });
});
