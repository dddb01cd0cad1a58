import { describe, expect, it, vi } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStoreHooks, tapOnlyView, type WarningInfo } from "../../core/hooks.js";
import type { PluginApi } from "../../core/registry.js";
import { createStore } from "../../core/store.js";
import { checkOptions } from "../../core/registry.js";
import { dgentError } from "../../core/errors.js";
import { ProbeTier, until } from "../../test/plugins-support.js";
import { compression, compressionPlugin } from "../compression/index.js";
import { PROCESS_ORIGIN, synergy, synergyBus, type SynergyEvent, type SynergyOptions, synergyPlugin } from "./index.js";

let busCounter = 0;
const freshBus = () => `test-${process.pid}-${busCounter++}`;

const storeWith = (options: SynergyOptions = {}) => {
  const bus = options.bus ?? freshBus();
  const store = createStore({ tiers: [memoryAdapter()], plugins: [synergyPlugin({ ...options, bus })], namespace: "agents" });
  const warnings: WarningInfo[] = [];
  store.hooks.warning.tap("test", (w) => void warnings.push(w));
  return { store, warnings, bus: synergyBus(bus) };
};

describe("synergy", () => {
  it("emits typed stored and deleted events with the caller's metadata", async () => {
    const { store, bus } = storeWith();
    const events: SynergyEvent[] = [];
    bus.on("*", (e) => void events.push(e));
    const stored: string[] = [];
    bus.on("stored", (e) => void stored.push(`${e.id}:${e.metadata.kind}`)); // e is a StoredEvent
    const d = makeDatum({ content: "x", metadata: { kind: "note" } });
    await store.put(d);
    await store.delete(d.id);
    await store.delete("nothing-here");
    expect(events.map((e) => e.type)).toEqual(["stored", "deleted"]);
    expect(events[0]).toMatchObject({
      type: "stored",
      source: "dgent",
      target: "*",
      namespace: "agents",
      id: d.id,
      metadata: { kind: "note" },
      tier: "memory",
      origin: PROCESS_ORIGIN,
      remote: false,
    });
    expect(Object.isFrozen(events[0])).toBe(true);
    expect(stored).toEqual([`${d.id}:note`]);
    expect((await store.plugin(synergy)).stats()).toMatchObject({ emitted: 2, failures: 0 });
  });

  it("event metadata is the caller's, not the stored form (compression stacked)", async () => {
    const bus = freshBus();
    const store = createStore({
      tiers: [memoryAdapter()],
      plugins: [compressionPlugin({ threshold: 0 }), synergyPlugin({ bus })],
    });
    const got = synergyBus(bus).once("stored");
    await store.put(makeDatum({ content: "y".repeat(500), metadata: { a: "1" } }));
    expect((await got).metadata).toEqual({ a: "1" });
  });

  it("a listener that throws is reported through the warning hook; the write stands", async () => {
    const { store, bus, warnings } = storeWith();
    bus.on("stored", () => {
      throw new Error("listener exploded");
    });
    const seen: string[] = [];
    bus.on("stored", (e) => void seen.push(e.id)); // other listeners still get it
    const d = makeDatum({ content: "kept" });
    expect(await store.put(d)).toBe(d.id);
    expect(await store.get(d.id)).not.toBeNull();
    expect(seen).toEqual([d.id]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ unit: "synergy", details: { type: "stored", error: "listener exploded" } });
    expect((await store.plugin(synergy)).stats()).toMatchObject({ failures: 1, reported: 1 });
  });

  it("a listener that hangs holds a write for timeoutMs, no longer, and is reported", async () => {
    // Fake timers: timeoutMs is measured on a clock the test moves, not on the machine's speed.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const settle = () => new Promise((r) => setImmediate(r)); // runs every pending promise callback
    try {
      const { store, bus, warnings } = storeWith({ timeoutMs: 50 });
      await store.open();
      bus.on("stored", () => new Promise<void>(() => undefined));
      let returned = false;
      const put = store.put(makeDatum({ content: "slow listener" })).then(() => (returned = true));
      await vi.advanceTimersByTimeAsync(49);
      await settle();
      expect(returned).toBe(false); // still held by the listener
      await vi.advanceTimersByTimeAsync(1);
      await settle();
      expect(returned).toBe(true); // let go at 50 ms, however long the listener hangs
      await put;
      expect(warnings[0]?.message).toContain("longer than 50 ms");
      expect((await store.list()).length).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("wait: false does not hold the write at all; the event still arrives", async () => {
    // A listener that holds a write would hold this one for ten minutes: the test's own timeout
    // would fail it first. No clock is read.
    const { store, bus } = storeWith({ wait: false, timeoutMs: 600_000 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let finished = false;
    let listenerDone!: () => void;
    const done = new Promise<void>((r) => (listenerDone = r));
    bus.on("stored", async () => {
      await gate;
      finished = true;
      listenerDone();
    });
    await store.put(makeDatum({ content: "fire and forget" }));
    expect(finished).toBe(false);
    release();
    await done;
    expect(finished).toBe(true);
  });

  it("buses are separate by name", async () => {
    const a = storeWith();
    const b = storeWith();
    const onA: string[] = [];
    a.bus.on("*", (e) => void onA.push(e.type));
    await b.store.put(makeDatum({ content: "b only" }));
    expect(onA).toEqual([]);
    expect(a.bus).not.toBe(b.bus);
    expect(synergyBus(a.bus.name)).toBe(a.bus);
  });

  it("turns router events (promoted, degraded, restored) into bus events", async () => {
    // The router calls these sync hooks; drive them the way core does, through real hooks.
    const hooks = createStoreHooks();
    const warnings: string[] = [];
    const api: PluginApi = {
      hooks: tapOnlyView(hooks, "synergy"),
      name: "synergy",
      namespace: "ns",
      tiers: [{ name: "sqlite", rank: 30 }, { name: "memory", rank: 0 }],
      warn: (m) => void warnings.push(m),
    };
    const busName = freshBus();
    await synergy.apply(api, checkOptions(synergy, { bus: busName }));
    const events: SynergyEvent[] = [];
    synergyBus(busName).on("*", (e) => void events.push(e));
    hooks.degraded.call({ tier: "sqlite", rank: 30, landing: "memory" });
    hooks.restored.call({ tier: "sqlite", rank: 30 });
    hooks.promoted.call({ id: "d1", from: "memory", to: "sqlite" });
    hooks.promoted.call({ id: "end", from: "memory", to: "sqlite" }); // an end marker: nothing else came before it
    await until("the end marker", () => events.some((e) => "id" in e && e.id === "end"));
    expect(events.map((e) => e.type)).toEqual(["degraded", "restored", "promoted", "promoted"]);
    expect(events[0]).toMatchObject({ tier: "sqlite", rank: 30, landing: "memory", namespace: "ns" });
    expect(events[2]).toMatchObject({ id: "d1", from: "memory", to: "sqlite" });
    expect(warnings).toEqual([]);
  });

  it("a real router's degraded, restored and promoted events reach the bus", async () => {
    const durable = new ProbeTier(memoryAdapter(), "durable", 30);
    const bus = freshBus();
    const store = createStore({
      tiers: [durable, memoryAdapter()],
      plugins: [synergyPlugin({ bus })],
      probeBackoffMs: { min: 10, max: 20 },
    });
    store.hooks.warning.tap("test", () => undefined); // the router announces the degradation loudly
    const events: SynergyEvent[] = [];
    synergyBus(bus).on("*", (e) => void events.push(e));
    await store.open();
    durable.failWrites = dgentError("DGENT_UNAVAILABLE", "durable tier is down");
    const d = makeDatum({ content: "landed below" });
    await store.put(d); // lands on memory: degraded
    durable.failWrites = null; // the re-probe finds it up again: restored, then the upgrader moves d up
    await until("restored and promoted", () => events.some((e) => e.type === "restored") && events.some((e) => e.type === "promoted"));
    expect(events.find((e) => e.type === "degraded")).toMatchObject({ tier: "durable", landing: "memory" });
    expect(events.find((e) => e.type === "restored")).toMatchObject({ tier: "durable" });
    expect(events.find((e) => e.type === "promoted")).toMatchObject({ id: d.id, from: "memory", to: "durable" });
    expect(events.find((e) => e.type === "stored")).toMatchObject({ id: d.id, tier: "memory" });
    await store.close();
  });

  it("checks its options with ajv", () => {
    const bad: unknown[] = [{ timeoutMs: 0 }, { postgres: { url: "mysql://x" } }, { postgres: { url: "postgres://h/db", channel: "bad channel" } }, { postgres: {} }];
    for (const options of bad) {
      expect(() => createStore({ tiers: [memoryAdapter()], plugins: [synergyPlugin(options as SynergyOptions)] })).toThrow(
        expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
      );
    }
  });
});
