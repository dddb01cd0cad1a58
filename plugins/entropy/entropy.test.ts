import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { makeDatum } from "../../core/datum.js";
import { BudgetError } from "../../core/errors.js";
import { createStore } from "../../core/store.js";
import { ProbeTier, expectDgent } from "../../test/plugins-support.js";
import { depthFactor, entropy, measureDatum, type EntropyOptions, entropyPlugin } from "./index.js";

const storeWith = (options: EntropyOptions, tier = new ProbeTier()) => ({
  tier,
  store: createStore({ tiers: [tier], plugins: [entropyPlugin(options)] }),
});
const sized = (bytes: number, metadata: Record<string, string> = {}, id?: string) =>
  makeDatum({ content: new Uint8Array(bytes), metadata, ...(id ? { id } : {}) });

describe("entropy", () => {
  it("refuses an oversized datum before anything is written, with limit and actual size", async () => {
    const { tier, store } = storeWith({ maxBytes: 1000, measure: "content" });
    await store.put(sized(1000));
    const big = sized(1001);
    const err = await expectDgent(store.put(big), "DGENT_BUDGET_EXCEEDED");
    expect(err).toBeInstanceOf(BudgetError);
    expect(err.kind).toBe("budget");
    expect(err.unit).toBe("entropy");
    expect(err.details).toMatchObject({ limit: 1000, actual: 1001, depth: 0, namespace: null, id: big.id });
    expect(err.message).toContain("1001 bytes");
    expect(tier.calls.put).toBe(1); // only the first datum reached the tier
    expect(await store.get(big.id)).toBeNull();
    expect((await store.list()).length).toBe(1);
  });

  it("scales the budget with depth as the seed does: 1 MB at depth 0, a third at depth 2", async () => {
    const { store } = storeWith({ measure: "content" });
    const handle = await store.plugin(entropy);
    expect(handle.check(sized(0)).limit).toBe(1_000_000);
    expect(handle.check(sized(0, { depth: "2" })).limit).toBe(333_333);
    await store.put(sized(400_000));
    await store.put(sized(400_000, { depth: "1" }));
    const err = await expectDgent(store.put(sized(400_000, { depth: "2" })), "DGENT_BUDGET_EXCEEDED");
    expect(err.details).toMatchObject({ limit: 333_333, actual: 400_000, depth: 2 });
    expect(handle.stats()).toEqual({ accepted: 2, rejected: 1, largestAccepted: 400_000 });
  });

  it("budget multiplies maxBytes (the seed's budget=0.33 → 330 KB)", async () => {
    const { store } = storeWith({ budget: 0.33, depthScale: "none", measure: "content" });
    const err = await expectDgent(store.put(sized(330_001)), "DGENT_BUDGET_EXCEEDED");
    expect(err.details).toMatchObject({ limit: 330_000 });
    await store.put(sized(330_000, { depth: "5" })); // depth ignored with depthScale "none"
  });

  it("an explicit depth table applies per depth, its last entry repeating", async () => {
    const { store } = storeWith({ maxBytes: 100, depthScale: [1, 0.5, 0.1], measure: "content" });
    const handle = await store.plugin(entropy);
    expect([0, 1, 2, 3, 9].map((d) => handle.check(sized(0, { depth: String(d) })).limit)).toEqual([100, 50, 10, 10, 10]);
  });

  it("measures the whole datum by default: id, content and metadata in UTF-8", async () => {
    const d = makeDatum({ id: "é/1", content: "abc", metadata: { k: "vv" } });
    expect(measureDatum(d)).toBe(4 + 3 + 3);
    expect(measureDatum(d, "content")).toBe(3);
    const { store } = storeWith({ maxBytes: 9 });
    await expectDgent(store.put(d), "DGENT_BUDGET_EXCEEDED");
  });

  it("namespaces (id prefixes) have their own budgets; the longest prefix wins", async () => {
    const { store } = storeWith({
      maxBytes: 1000,
      measure: "content",
      namespaces: { "agent/": { budget: 0.5 }, "agent/scratch/": { maxBytes: 100 } },
    });
    const handle = await store.plugin(entropy);
    expect(handle.check(sized(0, {}, "other/1"))).toMatchObject({ limit: 1000, namespace: null });
    expect(handle.check(sized(0, {}, "agent/1"))).toMatchObject({ limit: 500, namespace: "agent/" });
    expect(handle.check(sized(0, {}, "agent/scratch/1"))).toMatchObject({ limit: 100, namespace: "agent/scratch/" });
    const err = await expectDgent(store.put(sized(600, {}, "agent/x")), "DGENT_BUDGET_EXCEEDED");
    expect(err.message).toContain('namespace "agent/"');
    await store.put(sized(600, {}, "other/x"));
  });

  it("a depth tag that is not a non-negative integer is refused", async () => {
    const { store } = storeWith({});
    for (const bad of ["-1", "two", "1.5", ""]) await expectDgent(store.put(sized(1, { depth: bad })), "DGENT_INVALID_METADATA");
  });

  it("putMany with one datum over budget writes none of them", async () => {
    const { tier, store } = storeWith({ maxBytes: 10, measure: "content" });
    await expectDgent(store.putMany([sized(5), sized(11), sized(5)]), "DGENT_BUDGET_EXCEEDED");
    expect(tier.calls.putMany + tier.calls.put).toBe(0);
    expect(await store.list()).toEqual([]);
  });

  it("property: a datum is accepted exactly when its size is within the scaled budget", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(5000), fc.nat(5), fc.integer({ min: 1, max: 4000 }), async (size, depth, maxBytes) => {
        const { store } = storeWith({ maxBytes, measure: "content" }, new ProbeTier(memoryAdapter()));
        const limit = Math.floor(maxBytes * depthFactor(depth));
        const result = await store.put(sized(size, { depth: String(depth) })).then(
          () => "ok",
          (e: { code: string }) => e.code,
        );
        expect(result).toBe(size <= limit ? "ok" : "DGENT_BUDGET_EXCEEDED");
        await store.close();
      }),
      { numRuns: 100 },
    );
  });

  it("checks its options with ajv", () => {
    const bad: unknown[] = [{ maxBytes: -1 }, { depthScale: "steep" }, { depthScale: [] }, { namespaces: { "a/": { budget: "half" } } }, { extra: 1 }];
    for (const options of bad) {
      expect(() => createStore({ tiers: [memoryAdapter()], plugins: [entropyPlugin(options as EntropyOptions)] })).toThrow(
        expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
      );
    }
  });
});
