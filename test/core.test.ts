import { describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import {
  assertDatum,
  contentId,
  createStore,
  defineAdapter,
  definePlugin,
  dgentError,
  makeDatum,
  Registry,
  sameValue,
  uuidv7,
  uuidv7Time,
  compareIds,
  type Adapter,
  type Datum,
} from "../core/index.js";
import { memory, memoryAdapter } from "../adapters/memory/index.js";
import { expectCode } from "../testing/index.js";
import { datumPairArb, idPairArb, pairHasSameValue } from "./arbitraries.js";
import { indexOpsArb } from "./arbitrary-scripts.js";
import { referenceCompareIds, referenceList, referenceNewestFirst, referenceSameValue } from "./references.js";

describe("datums and ids", () => {
  it("time-ordered ids are unique and sort by creation, also within one millisecond", () => {
    const ids = Array.from({ length: 20_000 }, () => uuidv7());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    const t = Date.now();
    const id = uuidv7(t + 10_000);
    expect(uuidv7Time(id)).toBe(t + 10_000);
    expect(uuidv7Time("not-a-uuid")).toBeNull();
  });

  it("makeDatum makes valid datums with time or content ids and an optional prefix", () => {
    const a = makeDatum({ content: "hello", metadata: { k: "v" }, idPrefix: "agent-1/" });
    expect(a.id.startsWith("agent-1/")).toBe(true);
    expect(new TextDecoder().decode(a.content)).toBe("hello");
    const c1 = makeDatum({ content: "same", idStrategy: "content", createdAt: 1 });
    const c2 = makeDatum({ content: "same", idStrategy: "content", createdAt: 2 });
    expect(c1.id).toBe(c2.id);
    expect(c1.id).toMatch(/^[0-9a-f]{64}$/);
    expect(makeDatum({ content: "same", idStrategy: "content", metadata: { x: "1" } }).id).not.toBe(c1.id);
    expect(makeDatum({ content: "same", idStrategy: "content", causalParent: c1.id }).id).not.toBe(c1.id);
  });

  it("content ids do not collide when fields are shifted between content and metadata", () => {
    expect(contentId(new Uint8Array([1]), null, { a: "bc" })).not.toBe(contentId(new Uint8Array([1]), null, { ab: "c" }));
    expect(contentId(new Uint8Array(0), "p", {})).not.toBe(contentId(new Uint8Array(0), null, {}));
  });

  it("makeDatum refuses bad input with coded errors", () => {
    expect(() => makeDatum({ content: "x", metadata: { n: 1 as unknown as string } })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_METADATA" }),
    );
    expect(() => makeDatum({ content: "x", id: "" })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_ID" }));
  });

  // The pairs are equal in value but held in fresh objects (bytes as an array, a Buffer or a view
  // at an offset into a larger buffer; metadata keys in another order), or one field apart (id,
  // createdAt, parent — null vs an id, or ids apart only in surrogate order —, one metadata key,
  // one value, one entry more, one content byte, the length). Three answers must agree: how the
  // pair was made, the reference written field by field, and sameValue.
  it("property: sameValue is the law's same value (content bytes, parent, metadata; not id or createdAt)", () => {
    fc.assert(
      fc.property(datumPairArb, (p) => {
        const want = referenceSameValue(p.a, p.b);
        expect(want, `the reference, on a pair made as "${p.kind}"`).toBe(pairHasSameValue(p));
        expect(sameValue(p.a, p.b), p.kind).toBe(want);
        expect(sameValue(p.b, p.a), p.kind).toBe(want);
        expect(sameValue(p.a, p.a)).toBe(true);
        assertDatum(p.a);
        assertDatum(p.b);
      }),
      { numRuns: 1000 },
    );
  });

  it("property: compareIds is the UTF-8 byte order, also where UTF-16 order disagrees (U+E000–U+FFFF vs astral)", () => {
    fc.assert(
      fc.property(idPairArb, ([a, b]) => {
        expect(Math.sign(compareIds(a, b))).toBe(referenceCompareIds(a, b));
        expect(Math.sign(compareIds(b, a))).toBe(referenceCompareIds(b, a));
      }),
      { numRuns: 1000, examples: [[["\uffff", "\u{10000}"]], [["\ue000", "\ud7ff"]], [["a\u{10ffff}", "a\uffffz"]], [["\uffff", "\uffff\u{10000}"]]] },
    );
  });
});

describe("hooks and plugins", () => {
  const order: string[] = [];
  const late = definePlugin({
    name: "late",
    apply(api) {
      api.hooks.beforePut.tapPromise({ name: "late", stage: 100 }, async (d) => {
        order.push("late");
        return { ...d, metadata: { ...d.metadata, late: "1" } };
      });
    },
  });
  const early = definePlugin({
    name: "early",
    apply(api) {
      api.hooks.beforePut.tapPromise({ name: "early", stage: -100 }, async (d) => {
        order.push("early");
        return d;
      });
    },
  });

  it("taps run by stage, not by registration order", async () => {
    order.length = 0;
    const store = createStore({ tiers: [memoryAdapter()], plugins: [late, early] });
    const d = makeDatum({ content: "x" });
    await store.put(d);
    expect(order).toEqual(["early", "late"]);
    expect((await store.get(d.id))?.metadata.late).toBe("1");
    order.length = 0;
    const other = createStore({ tiers: [memoryAdapter()], plugins: [early, late] });
    await other.put(makeDatum({ content: "y" }));
    expect(order).toEqual(["early", "late"]);
  });

  it("plugins get a tap-only view: no call, no promise", async () => {
    let seen: Record<string, unknown> = {};
    const spy = definePlugin({
      name: "spy",
      apply(api) {
        seen = api.hooks.beforePut as unknown as Record<string, unknown>;
      },
    });
    await createStore({ tiers: [memoryAdapter()], plugins: [spy] }).open();
    expect(typeof seen.tapPromise).toBe("function");
    expect(seen.call).toBeUndefined();
    expect(seen.promise).toBeUndefined();
    expect(Object.isFrozen(seen)).toBe(true);
  });

  it("a veto in beforePut writes nothing; a foreign error is wrapped naming the plugin", async () => {
    const veto = definePlugin({
      name: "veto",
      apply(api) {
        api.hooks.beforePut.tapPromise("veto", async () => {
          throw new TypeError("not today");
        });
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [veto] });
    const d = makeDatum({ content: "x" });
    const err = await expectCode(store.put(d), "DGENT_PLUGIN_FAILED");
    expect((err as unknown as { unit: string }).unit).toBe("veto");
    expect(err.message).toContain("not today");
    expect(await store.get(d.id)).toBeNull();
  });

  it("a coded error from a tap passes through unchanged", async () => {
    const budget = definePlugin({
      name: "budget",
      apply(api) {
        api.hooks.beforePut.tap("budget", () => {
          throw dgentError("DGENT_INVALID_OPTIONS", "too big");
        });
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [budget] });
    await expectCode(store.put(makeDatum({ content: "x" })), "DGENT_INVALID_OPTIONS");
  });

  it("synchronous beforePut taps (run without a promise) keep stage order, pass undefined on, and veto by throwing", async () => {
    const seen: string[] = [];
    const syncTaps = definePlugin({
      name: "sync-taps",
      apply(api) {
        api.hooks.beforePut.tap({ name: "second", stage: 10 }, (d) => {
          seen.push(`second:${d.metadata.first ?? "-"}`);
          if (d.metadata.veto === "1") throw new RangeError("vetoed synchronously");
          return undefined as unknown as typeof d;
        });
        api.hooks.beforePut.tap({ name: "first", stage: -10 }, (d) => ({ ...d, metadata: { ...d.metadata, first: "1" } }));
      },
    });
    for (const plugins of [[syncTaps], [syncTaps, early]]) {
      seen.length = 0;
      order.length = 0;
      const store = createStore({ tiers: [memoryAdapter()], plugins });
      const d = makeDatum({ content: "x" });
      await store.put(d);
      expect(seen).toEqual(["second:1"]);
      expect((await store.get(d.id))?.metadata.first).toBe("1");
      const vetoed = makeDatum({ content: "y", metadata: { veto: "1" } });
      const err = await expectCode(store.put(vetoed), "DGENT_PLUGIN_FAILED");
      expect(err.message).toContain("vetoed synchronously");
      expect(await store.get(vetoed.id)).toBeNull();
      expect(order).toEqual(plugins.length === 2 ? ["early", "early"] : []);
    }
  });

  it("a beforeGet tap can answer, and read transforms what callers see", async () => {
    const canned = makeDatum({ content: "from plugin", id: "canned" });
    const answer = definePlugin({
      name: "answer",
      apply(api) {
        api.hooks.beforeGet.tapPromise("answer", async (id) => (id === "canned" ? canned : undefined));
        api.hooks.read.tap("answer", (d) => ({ ...d, metadata: { ...d.metadata, seen: "yes" } }));
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [answer] });
    expect((await store.get("canned"))?.metadata.seen).toBe("yes");
    const d = makeDatum({ content: "stored" });
    await store.put(d);
    expect((await store.get(d.id))?.metadata.seen).toBe("yes");
    expect((await store.list())[0]?.metadata.seen).toBe("yes");
    expect((await store.causalChain(d.id))[0]?.metadata.seen).toBe("yes");
  });

  it("plugin options are checked with ajv at composition, with the path in the message", () => {
    const typed = definePlugin<{ size: number }>({
      name: "typed",
      optionsSchema: { type: "object", properties: { size: { type: "integer", minimum: 1 } }, required: ["size"], additionalProperties: false },
      apply() {},
    });
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [{ plugin: typed, options: { size: "big" } as never }] })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS", message: expect.stringContaining("/size") }),
    );
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [{ plugin: typed, options: { size: 2, extra: 1 } as never }] })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('"extra"') }),
    );
  });

  it("missing and cyclic plugin dependencies and duplicates fail at composition", () => {
    const needsA = definePlugin({ name: "needs-a", dependsOn: ["a"], apply() {} });
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [needsA] })).toThrow(
      expect.objectContaining({ code: "DGENT_PLUGIN_DEPENDENCY" }),
    );
    const a = definePlugin({ name: "a", dependsOn: ["b"], apply() {} });
    const b = definePlugin({ name: "b", dependsOn: ["a"], apply() {} });
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [a, b] })).toThrow(
      expect.objectContaining({ code: "DGENT_PLUGIN_DEPENDENCY", message: expect.stringContaining("a → b → a") }),
    );
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [late, late] })).toThrow(
      expect.objectContaining({ code: "DGENT_DUPLICATE_NAME" }),
    );
  });

  it("dependencies apply first", async () => {
    const applied: string[] = [];
    const base = definePlugin({ name: "base", apply: () => void applied.push("base") });
    const top = definePlugin({ name: "top", dependsOn: ["base"], apply: () => void applied.push("top") });
    await createStore({ tiers: [memoryAdapter()], plugins: [top, base] }).open();
    expect(applied).toEqual(["base", "top"]);
  });
});

describe("registry", () => {
  it("creates built-in adapters by name and suggests the nearest name for a typo", async () => {
    const registry = new Registry().registerAdapter(memory);
    const tier = await registry.createAdapter("memory", { maxDatums: 5 });
    expect(tier.capabilities.evicts).toBe(true);
    await expect(registry.createAdapter("memroy")).rejects.toMatchObject({
      code: "DGENT_UNKNOWN_ADAPTER",
      message: expect.stringContaining('Did you mean "memory"?'),
    });
    expect(() => registry.registerAdapter(memory)).toThrow(expect.objectContaining({ code: "DGENT_DUPLICATE_NAME" }));
    await expect(registry.createAdapter("memory", { maxDatums: 0 })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
  });

  it("refuses names that cannot be config keys", () => {
    expect(() => defineAdapter({ name: "Bad Name", rank: 1, create: () => memoryAdapter() })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
    );
  });
});

describe("a store over several tiers", () => {
  // A memory tier under another name and rank, as a third-party adapter would wrap one.
  const tier = (name: string, rank: number): Adapter => {
    const inner = memoryAdapter();
    return {
      name,
      rank,
      capabilities: inner.capabilities,
      open: (c) => inner.open(c),
      close: () => inner.close(),
      put: (d) => inner.put(d),
      get: (id) => inner.get(id),
      delete: (id) => inner.delete(id),
      list: (o) => inner.list(o),
      stats: () => (inner.stats as NonNullable<Adapter["stats"]>)(),
    };
  };

  it("writes land on the most durable tier; reads, lists and deletes see every tier", async () => {
    const low = tier("low", 0);
    const high = tier("high", 20);
    const old = makeDatum({ content: "old", createdAt: 1 });
    await low.open();
    await low.put(old); // data an earlier run left on the lower tier
    const store = createStore({ tiers: [low, high], upgrader: false });
    await store.open();
    const fresh = makeDatum({ content: "fresh", createdAt: 2, causalParent: old.id });
    await store.put(fresh);
    expect(await high.get(fresh.id)).not.toBeNull();
    expect(await low.get(fresh.id)).toBeNull();
    expect((await store.get(old.id))?.id).toBe(old.id);
    expect((await store.list()).map((d) => d.id)).toEqual([fresh.id, old.id]);
    expect((await store.causalChain(fresh.id)).map((d) => d.id)).toEqual([old.id, fresh.id]);
    await expectCode(store.put({ ...old, content: new Uint8Array([1]) }), "DGENT_CONFLICT");
    expect(await store.put({ ...old })).toBe(old.id);
    expect(await store.delete(old.id)).toBe(true);
    expect(await low.get(old.id)).toBeNull();
    const report = await store.backend();
    expect(report.landing).toBe("high");
    expect(report.tiers.map((t) => [t.name, t.landing, t.count])).toEqual([["high", true, 1], ["low", false, 0]]);
    await store.close();
  });

  it("two tiers with one name are refused", () => {
    expect(() => createStore({ tiers: [memoryAdapter(), memoryAdapter()] })).toThrow(
      expect.objectContaining({ code: "DGENT_DUPLICATE_NAME" }),
    );
    expect(() => createStore({ tiers: [] })).toThrow(expect.objectContaining({ code: "DGENT_NO_TIERS" }));
  });

  it("a volatile landing tier is reported as such", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const report = await store.backend();
    expect(report.volatile).toBe(true);
    expect(report.tiers[0]).toMatchObject({ name: "memory", durability: "volatile", persistent: false, up: true });
  });
});

describe("the bounded memory tier", () => {
  it("evicts the oldest first when over maxDatums, observable through the evicted hook", async () => {
    const store = createStore({ tiers: [memoryAdapter({ maxDatums: 3 })] });
    const evicted: Array<[string, string, string]> = [];
    store.hooks.evicted.tap("test", (d, info) => void evicted.push([d.id, info.tier, info.reason]));
    const ds = [5, 1, 4, 2, 3].map((t) => makeDatum({ content: `t${t}`, createdAt: t, id: `t${t}` }));
    for (const d of ds) await store.put(d);
    expect(evicted).toEqual([["t1", "memory", "maxDatums"], ["t2", "memory", "maxDatums"]]);
    expect((await store.list()).map((d) => d.id)).toEqual(["t5", "t4", "t3"]);
  });

  it("evicts by bytes, and a datum larger than the cap does not stay", async () => {
    const store = createStore({ tiers: [memoryAdapter({ maxBytes: 10_000 })] });
    const reasons: string[] = [];
    store.hooks.evicted.tap("test", (_d, info) => void reasons.push(info.reason));
    for (let i = 0; i < 10; i++) await store.put(makeDatum({ content: new Uint8Array(2_000), createdAt: i }));
    const stats = (await store.backend()).tiers[0];
    expect(stats?.bytes).toBeLessThanOrEqual(10_000);
    expect(stats?.count).toBe(4);
    expect(reasons.every((r) => r === "maxBytes")).toBe(true);
  });

  it("copy: false keeps and returns the caller's objects, declares zeroCopy, and still applies the append-only law", async () => {
    const store = createStore({ tiers: [memoryAdapter({ copy: false })] });
    expect(store.capabilities.zeroCopy).toBe(true);
    expect(createStore({ tiers: [memoryAdapter()] }).capabilities.zeroCopy).toBeUndefined();
    const a = makeDatum({ content: "a", createdAt: 1 });
    const b = makeDatum({ content: "b", createdAt: 2, causalParent: a.id });
    await store.putMany([a, b]);
    expect(await store.get(a.id)).toBe(a);
    expect(await store.list()).toEqual([b, a]);
    expect((await store.list())[0]).toBe(b);
    expect((await store.causalChain(b.id))[1]).toBe(b);
    await expectCode(store.put({ ...a, metadata: { x: "1" } }), "DGENT_CONFLICT");
    expect(() => memoryAdapter({ copy: "no" as never })).toThrow(/copy/);
  });

  it("a warning with no taps goes to process.emitWarning", async () => {
    const spy = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    const noisy = definePlugin({ name: "noisy", apply: (api) => api.warn("look at me") });
    await createStore({ tiers: [memoryAdapter()], plugins: [noisy] }).open();
    expect(spy).toHaveBeenCalledWith("[dgent:noisy] look at me", { type: "DgentWarning" });
    spy.mockRestore();
  });
});

describe("the single-tier fast path (no taps: straight to the tier)", () => {
  it("bad input rejects the promise, never throws synchronously, on an open store", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await store.open();
    const calls: Array<() => Promise<unknown>> = [
      () => store.get(42 as never),
      () => store.put({ id: "", content: new Uint8Array(), createdAt: 0, causalParent: null, metadata: {} }),
      () => store.delete("a\u0000b"),
      () => store.list({ limit: -1 }),
      () => store.causalChain(null as never),
    ];
    const codes: string[] = [];
    for (const call of calls) {
      let promise: Promise<unknown> | undefined;
      expect(() => (promise = call())).not.toThrow();
      await promise?.then(
        () => codes.push("resolved"),
        (error: { code: string }) => codes.push(error.code),
      );
    }
    expect(codes).toEqual(["DGENT_INVALID_ID", "DGENT_INVALID_ID", "DGENT_INVALID_ID", "DGENT_INVALID_OPTIONS", "DGENT_INVALID_ID"]);
  });

  it("answers the five methods as the routed path does, and DGENT_CLOSED after close", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await store.open();
    const a = makeDatum({ content: "a", createdAt: 1 });
    const b = makeDatum({ content: "b", createdAt: 2, causalParent: a.id });
    expect(await store.put(a)).toBe(a.id);
    expect(await store.put(b)).toBe(b.id);
    expect(await store.put(a)).toBe(a.id);
    await expectCode(store.put({ ...a, content: new TextEncoder().encode("other") }), "DGENT_CONFLICT");
    expect(sameValue((await store.get(b.id)) as Datum, b)).toBe(true);
    expect(await store.get("missing")).toBeNull();
    expect((await store.list()).map((d) => d.id)).toEqual([b.id, a.id]);
    expect(await store.list({ limit: 0 })).toEqual([]);
    expect((await store.causalChain(b.id)).map((d) => d.id)).toEqual([a.id, b.id]);
    expect(await store.delete(a.id)).toBe(true);
    expect(await store.delete(a.id)).toBe(false);
    await store.close();
    for (const call of [() => store.get(b.id), () => store.put(a), () => store.list(), () => store.delete(b.id), () => store.causalChain(b.id)]) {
      await expectCode(call(), "DGENT_CLOSED");
    }
  });

  it("a hook tapped after open takes effect on the next call", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const d = makeDatum({ content: "x", createdAt: 5 });
    await store.put(d);
    const seen: string[] = [];
    store.hooks.afterPut.tap("t", (x) => void seen.push(`afterPut ${x.id === d.id}`));
    store.hooks.beforeDelete.tap("t", () => void seen.push("beforeDelete"));
    store.hooks.beforeCausalChain.tap("t", () => void seen.push("beforeCausalChain"));
    store.hooks.beforeList.tap("t", (o) => ({ ...o, limit: 1 }));
    store.hooks.read.tap("t", (x) => ({ ...x, metadata: { ...x.metadata, read: "yes" } }));
    await store.put(d);
    expect((await store.get(d.id))?.metadata.read).toBe("yes");
    expect((await store.list({ limit: 50 })).map((x) => x.metadata.read)).toEqual(["yes"]);
    expect((await store.causalChain(d.id))[0]?.metadata.read).toBe("yes");
    await store.delete(d.id);
    expect(seen).toEqual(["afterPut true", "beforeCausalChain", "beforeDelete"]);
  });

  it("synchronous read taps run as one waterfall per datum; undefined passes; async taps still run", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const ds = [1, 2, 3].map((t) => makeDatum({ content: `c${t}`, createdAt: t }));
    await store.putMany(ds);
    const calls: string[] = [];
    // Typed as returning a Datum; at run time a waterfall tap returning undefined passes the value on.
    const observe = (x: Datum, info: { op: string }) => void calls.push(`${info.op}:${x.id === ds[0]?.id ? "first" : "other"}`);
    store.hooks.read.tap("observe", observe as unknown as (x: Datum) => Datum);
    store.hooks.read.tap("tag", (x) => ({ ...x, metadata: { ...x.metadata, n: String(x.createdAt * 10) } }));
    const listed = await store.list();
    expect(listed.map((x) => x.metadata.n)).toEqual(["30", "20", "10"]);
    expect(calls).toEqual(["list:other", "list:other", "list:first"]);
    store.hooks.read.tapPromise("late", async (x) => ({ ...x, metadata: { ...x.metadata, late: x.metadata.n ?? "" } }));
    expect((await store.list()).map((x) => x.metadata.late)).toEqual(["30", "20", "10"]);
    const failing = createStore({ tiers: [memoryAdapter()] });
    await failing.putMany(ds);
    failing.hooks.read.tap("boom", () => {
      throw new Error("cannot read");
    });
    await expectCode(failing.list(), "DGENT_PLUGIN_FAILED");
  });

  it("an unbounded memory tier still reports its bytes", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await store.put(makeDatum({ content: new Uint8Array(1_000), metadata: { k: "v" } }));
    const tier = (await store.backend()).tiers[0];
    expect(tier?.count).toBe(1);
    expect(tier?.bytes).toBeGreaterThan(1_000);
  });
});

describe("OrderedIndex", () => {
  it("property: list and oldest match a reference model under random sets, deletes and queries", async () => {
    const { OrderedIndex } = await import("../core/ordered-index.js");
    fc.assert(
      fc.property(indexOpsArb, (ops) => {
        const index = new OrderedIndex<{ id: string; createdAt: number }>();
        const model = new Map<string, { id: string; createdAt: number }>();
        for (const o of ops) {
          if (o.kind === "set") {
            // insert is for ids the index does not hold; set replaces.
            if (index.has(o.id)) index.set({ id: o.id, createdAt: o.createdAt });
            else index.insert({ id: o.id, createdAt: o.createdAt });
            model.set(o.id, { id: o.id, createdAt: o.createdAt });
          } else if (o.kind === "delete") {
            expect(index.delete(o.id)?.id).toBe(model.get(o.id)?.id);
            model.delete(o.id);
          } else {
            expect(index.list(o).map((e) => e.id), JSON.stringify(o)).toEqual(referenceList(model.values(), o).map((e) => e.id));
          }
          expect(index.size).toBe(model.size);
          // The oldest: smallest createdAt, then the smallest id — the last of the newest-first order.
          expect(index.oldest()?.id).toBe([...model.values()].sort(referenceNewestFirst).at(-1)?.id);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("walkCausalChain limits", () => {
  it("a chain of exactly maxDepth datums is returned even when its oldest names a missing parent", async () => {
    const { walkCausalChain } = await import("../core/causal.js");
    const byId = new Map<string, Datum>();
    let parent: string | null = "missing";
    for (let i = 0; i < 5; i++) {
      const d = makeDatum({ id: `c${i}`, content: "x", causalParent: parent });
      byId.set(d.id, d);
      parent = d.id;
    }
    const get = async (id: string) => byId.get(id) ?? null;
    expect((await walkCausalChain("c4", get, 5)).map((d) => d.id)).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    await expect(walkCausalChain("c4", get, 4)).rejects.toMatchObject({ code: "DGENT_CAUSAL_DEPTH" });
  });

  it("the synchronous walk gives the same chains and errors as the asynchronous one", async () => {
    const { walkCausalChain, walkCausalChainSync } = await import("../core/causal.js");
    const byId = new Map<string, Datum>();
    const add = (id: string, parent: string | null) => byId.set(id, makeDatum({ id, content: id, causalParent: parent }));
    add("a", null);
    add("b", "a");
    add("c", "b");
    add("x", "y");
    add("y", "x");
    add("orphan", "gone");
    const sync = (id: string) => byId.get(id) ?? null;
    const outcome = async (run: () => Promise<Datum[]> | Datum[]) => {
      try {
        return (await run()).map((d) => d.id).join(",");
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    for (const [id, depth] of [["c", 10], ["c", 2], ["x", 10], ["orphan", 10], ["missing", 10]] as const) {
      const expected = await outcome(() => walkCausalChain(id, async (n) => sync(n), depth));
      expect(await outcome(() => walkCausalChainSync(id, sync, depth)), `${id}/${depth}`).toBe(expected);
    }
    expect(await outcome(() => walkCausalChainSync("c", sync, 10))).toBe("a,b,c");
    expect(await outcome(() => walkCausalChainSync("x", sync, 10))).toBe("DGENT_CAUSAL_CYCLE");
    expect(await outcome(() => walkCausalChainSync("c", sync, 2))).toBe("DGENT_CAUSAL_DEPTH");
  });
});
