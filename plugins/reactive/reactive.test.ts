import { describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { makeDatum } from "../../core/datum.js";
import type { WarningInfo } from "../../core/hooks.js";
import { createStore } from "../../core/store.js";
import { expectDgent, text, until } from "../../test/plugins-support.js";
import { changes, reactive, reactivePlugin, type Change, type ReactiveOptions } from "./index.js";

const storeWith = (options: ReactiveOptions = {}) => {
  const store = createStore({ tiers: [memoryAdapter()], plugins: [reactivePlugin(options)] });
  const warnings: WarningInfo[] = [];
  store.hooks.warning.tap("test", (w) => void warnings.push(w));
  return { store, warnings };
};

async function take<T>(iterator: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await iterator.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("reactive", () => {
  it("changes() yields puts and deletes in order, numbered per store, with the caller's datum", async () => {
    const { store } = storeWith();
    const feed = (await store.plugin(reactive)).changes();
    const a = makeDatum({ content: "a", metadata: { k: "v" } });
    const b = makeDatum({ content: "b" });
    await store.put(a);
    await store.put(b);
    expect(await store.delete(a.id)).toBe(true);
    expect(await store.delete("never-there")).toBe(false); // not a change
    const events = await take(feed, 3);
    expect(events.map((e) => [e.seq, e.op, e.id, e.source])).toEqual([
      [1, "put", a.id, "local"],
      [2, "put", b.id, "local"],
      [3, "delete", a.id, "local"],
    ]);
    expect(text(events[0]?.datum)).toBe("a");
    expect(events[0]?.datum?.metadata).toEqual({ k: "v" });
    expect(events[0]?.tier).toBe("memory");
    expect(Object.isFrozen(events[0])).toBe(true);
    await store.close();
    expect((await feed.next()).done).toBe(true); // close ends the stream
  });

  it("a for-await loop ends when the store closes, and `changes(store)` is the same stream", async () => {
    const { store } = storeWith();
    await store.open();
    const seen: string[] = [];
    const handle = await store.plugin(reactive);
    const iterator = changes(store);
    const first = iterator.next(); // starts the subscription
    const loop = (async () => {
      const r = await first;
      if (!r.done) seen.push(r.value.id);
      for await (const change of iterator) seen.push(change.id);
    })();
    await until("the subscription", () => handle.stats().consumers === 1);
    await store.put(makeDatum({ content: "1", id: "one" }));
    await store.put(makeDatum({ content: "2", id: "two" }));
    await until("two changes", () => seen.length === 2);
    await store.close();
    await loop;
    expect(seen).toEqual(["one", "two"]);
  });

  it("stays ordered under 200 concurrent puts: consecutive seqs, every id once", async () => {
    const { store } = storeWith({ bufferSize: 500 });
    const feed = (await store.plugin(reactive)).changes();
    const ds = Array.from({ length: 200 }, (_, i) => makeDatum({ content: String(i) }));
    await Promise.all(ds.map((d) => store.put(d)));
    const events = await take(feed, 200);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.id))).toEqual(new Set(ds.map((d) => d.id)));
  });

  it("every consumer sees the same order", async () => {
    const { store } = storeWith();
    const handle = await store.plugin(reactive);
    const x = handle.changes();
    const y = handle.changes();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(makeDatum({ content: String(i) }))));
    const [ex, ey] = [await take(x, 50), await take(y, 50)];
    expect(ex.map((e) => e.id)).toEqual(ey.map((e) => e.id));
    expect(ex[0]).toBe(ey[0]); // one shared, frozen event
  });

  it("slow consumer, policy error: writes never wait; the consumer gets what was buffered, then DGENT_STREAM_OVERFLOW", async () => {
    const { store } = storeWith({ bufferSize: 3 });
    const feed = (await store.plugin(reactive)).changes();
    // Nobody reads the feed while these six puts run: a put that waited for the consumer would
    // never return (the test's own timeout would fail it).
    for (let i = 0; i < 6; i++) await store.put(makeDatum({ content: String(i), id: `o${i}` }));
    expect((await take(feed, 3)).map((e) => e.seq)).toEqual([1, 2, 3]);
    const err = await expectDgent(feed.next(), "DGENT_STREAM_OVERFLOW");
    expect(err.details).toMatchObject({ bufferSize: 3, lastSeq: 3 });
    expect(err.retryable).toBe(true);
    expect((await feed.next()).done).toBe(true);
    const stats = (await store.plugin(reactive)).stats();
    expect(stats).toMatchObject({ seq: 6, consumers: 0 });
    expect(stats.dropped).toBeGreaterThanOrEqual(1);
  });

  it("slow consumer, policy drop-oldest: keeps the newest, the gap shows in seq", async () => {
    const { store } = storeWith();
    const handle = await store.plugin(reactive);
    const feed = handle.changes({ bufferSize: 3, overflow: "drop-oldest" });
    for (let i = 0; i < 7; i++) await store.put(makeDatum({ content: String(i) }));
    expect((await take(feed, 3)).map((e) => e.seq)).toEqual([5, 6, 7]);
    expect(handle.stats().dropped).toBe(4);
    await store.put(makeDatum({ content: "after" }));
    expect((await take(feed, 1))[0]?.seq).toBe(8);
  });

  it("subscribe: listeners run one change at a time, in order, even when async", async () => {
    const { store } = storeWith();
    const handle = await store.plugin(reactive);
    const seen: number[] = [];
    let running = 0;
    let overlap = false;
    const stop = handle.subscribe(async (change) => {
      running++;
      if (running > 1) overlap = true;
      await new Promise((r) => setTimeout(r, change.seq % 2 === 0 ? 1 : 5));
      seen.push(change.seq);
      running--;
    });
    for (let i = 0; i < 10; i++) await store.put(makeDatum({ content: String(i) }));
    await until("ten changes", () => seen.length === 10);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(overlap).toBe(false);
    stop();
    // Detached at once: no later change can be handed to the listener, so none needs waiting for.
    expect(handle.stats().consumers).toBe(0);
    await store.put(makeDatum({ content: "late" }));
    expect(handle.stats().seq).toBe(11);
    expect(seen.length).toBe(10);
  });

  it("a listener that throws is reported through the warning hook and stays subscribed; the put succeeds", async () => {
    const { store, warnings } = storeWith();
    const handle = await store.plugin(reactive);
    const seen: string[] = [];
    handle.subscribe((change) => {
      if (change.id === "bad") throw new Error("listener broke");
      seen.push(change.id);
    });
    await store.put(makeDatum({ content: "x", id: "bad" }));
    await store.put(makeDatum({ content: "y", id: "good" }));
    await until("the good change", () => seen.includes("good"));
    expect(warnings.map((w) => [w.unit, w.details?.error])).toEqual([["reactive", "listener broke"]]);
    expect(text(await store.get("bad"))).toBe("x");
  });

  it("a subscriber that never returns does not hold writes up; its overflow is reported", async () => {
    const { store, warnings } = storeWith({ bufferSize: 2 });
    const handle = await store.plugin(reactive);
    handle.subscribe(() => new Promise<void>(() => undefined));
    for (let i = 0; i < 6; i++) await store.put(makeDatum({ content: String(i) }));
    await until("overflow warning", () => warnings.length > 0);
    expect(warnings[0]?.details?.code).toBe("DGENT_STREAM_OVERFLOW");
    expect((await store.list()).length).toBe(6);
  });

  it("an aborted signal ends the iteration", async () => {
    const { store } = storeWith();
    const controller = new AbortController();
    const feed = (await store.plugin(reactive)).changes({ signal: controller.signal });
    await store.put(makeDatum({ content: "1" }));
    const pending = take(feed, 5);
    controller.abort();
    expect((await pending).length).toBe(1);
    expect((await store.plugin(reactive)).stats().consumers).toBe(0);
  });

  it("includeDatum: false leaves the datum out of events", async () => {
    const { store } = storeWith({ includeDatum: false });
    const feed = (await store.plugin(reactive)).changes();
    await store.put(makeDatum({ content: "x" }));
    const [event] = await take(feed, 1);
    expect(event?.op).toBe("put");
    expect(event && "datum" in event).toBe(false);
  });

  it("putMany produces one event per datum, in the batch's order", async () => {
    const { store } = storeWith();
    const feed = (await store.plugin(reactive)).changes();
    const ds = ["p", "q", "r"].map((id) => makeDatum({ content: id, id }));
    await store.putMany(ds);
    expect((await take(feed, 3)).map((e: Change) => e.id)).toEqual(["p", "q", "r"]);
  });

  it("checks its options with ajv", () => {
    expect(() => storeWith({ overflow: "block" as never })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => storeWith({ bufferSize: 0 })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });
});

describe("store.changes() and store.subscribe()", () => {
  it("are the reactive plugin's stream through the store itself, typed by importing the plugin", async () => {
    const { store } = storeWith();
    const seen: Change[] = [];
    const unsubscribe = await store.subscribe((change) => void seen.push(change));
    const iterator = store.changes();
    const first = iterator.next(); // subscribes
    const handle = await store.plugin(reactive);
    await until("both subscriptions", () => handle.stats().consumers === 2);
    await store.put(makeDatum({ content: "x", id: "via-store" }));
    const r = await first;
    expect(r.done ? null : [r.value.op, r.value.id]).toEqual(["put", "via-store"]);
    await until("the listener saw it", () => seen.length === 1);
    expect(seen[0]?.seq).toBe(1);
    unsubscribe();
    await iterator.return?.();
    await store.close();
  });

  it("without the reactive plugin they fail with DGENT_UNKNOWN_PLUGIN", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await expectDgent(store.changes().next(), "DGENT_UNKNOWN_PLUGIN");
    await expectDgent(store.subscribe(() => undefined), "DGENT_UNKNOWN_PLUGIN");
    await store.close();
  });
});
