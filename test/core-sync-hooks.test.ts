import { describe, expect, it } from "vitest";
import { createStore, definePlugin, makeDatum, type Datum } from "../core/index.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { expectCode } from "../testing/index.js";

// Synchronous taps on beforeGet / afterGet / afterPut / beforeDelete / afterDelete run as one plain
// call (core/hooks.ts runSeries): the answers must be those of tapable's promise.
describe("synchronous series and bail taps", () => {
  it("beforeGet answers from the first tap that returns something; every afterGet / afterPut tap runs in stage order", async () => {
    const seen: string[] = [];
    const canned = makeDatum({ content: "canned", id: "canned" });
    const plugin = definePlugin({
      name: "observer",
      apply(api) {
        api.hooks.beforeGet.tap({ name: "late", stage: 10 }, (id) => {
          seen.push(`late:${id}`);
          return undefined;
        });
        api.hooks.beforeGet.tap({ name: "early", stage: -10 }, (id) => {
          seen.push(`early:${id}`);
          return id === "canned" ? canned : undefined;
        });
        api.hooks.afterGet.tap({ name: "b", stage: 5 }, (id, d) => void seen.push(`afterGet-b:${id}:${d === null ? "miss" : "hit"}`));
        api.hooks.afterGet.tap({ name: "a", stage: 1 }, (id) => {
          seen.push(`afterGet-a:${id}`);
          return "ignored" as never; // a series hook does not stop on an answer
        });
        api.hooks.afterPut.tap("put", (d, info) => void seen.push(`afterPut:${d.id}:${info.tier}`));
        api.hooks.beforeDelete.tap("del", (id) => void seen.push(`beforeDelete:${id}`));
        api.hooks.afterDelete.tap("del", (id, existed) => void seen.push(`afterDelete:${id}:${existed}`));
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [plugin] });
    expect((await store.get("canned"))?.id).toBe("canned");
    expect(seen).toEqual(["early:canned"]);
    seen.length = 0;
    const d = makeDatum({ content: "x" });
    await store.put(d);
    expect((await store.get(d.id))?.id).toBe(d.id);
    expect(await store.get("absent")).toBeNull();
    expect(await store.delete(d.id)).toBe(true);
    expect(seen).toEqual([
      `afterPut:${d.id}:memory`,
      `early:${d.id}`, `late:${d.id}`, `afterGet-a:${d.id}`, `afterGet-b:${d.id}:hit`,
      "early:absent", "late:absent", "afterGet-a:absent", "afterGet-b:absent:miss",
      `beforeDelete:${d.id}`, `afterDelete:${d.id}:true`,
    ]);
  });

  it("a throwing synchronous tap rejects the call, attributed to its plugin; a tap added later (also asynchronous) takes effect", async () => {
    let armed = false;
    const plugin = definePlugin({
      name: "thrower",
      apply(api) {
        api.hooks.beforeGet.tap("thrower", () => {
          if (armed) throw new RangeError("no reads now");
          return undefined;
        });
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [plugin] });
    const d = makeDatum({ content: "y" });
    await store.put(d);
    expect((await store.get(d.id))?.id).toBe(d.id);
    armed = true;
    const err = await expectCode(store.get(d.id), "DGENT_PLUGIN_FAILED");
    expect(err.message).toContain("no reads now");
    armed = false;
    const replaced: Datum = makeDatum({ content: "from the async tap", id: d.id });
    store.hooks.beforeGet.tapPromise("async-answer", async (id) => (id === d.id ? replaced : undefined));
    expect(new TextDecoder().decode((await store.get(d.id))?.content)).toBe("from the async tap");
    const puts: string[] = [];
    store.hooks.afterPut.tap("late-observer", (datum) => void puts.push(datum.id));
    const e = makeDatum({ content: "z" });
    await store.put(e);
    expect(puts).toEqual([e.id]);
  });
});
