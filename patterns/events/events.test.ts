import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Store } from "../../compose/index.js";
import type { Adapter } from "../../core/protocol.js";
import { reactive } from "../../plugins/reactive/index.js";
import { writeBehindPlugin } from "../../plugins/write-behind/index.js";
import { eventStream, type StoredEvent } from "./index.js";

type Event = { type: "add"; n: number } | { type: "note"; text: string };
interface State {
  total: number;
  notes: string[];
}
const initial: State = { total: 0, notes: [] };
const reducer = (s: State, e: Event): State => (e.type === "add" ? { ...s, total: s.total + e.n } : { ...s, notes: [...s.notes, e.text] });
const fold = (events: readonly Event[]) => events.reduce(reducer, initial);

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ type: fc.constant("add" as const), n: fc.integer({ min: -100, max: 100 }) }),
  fc.record({ type: fc.constant("note" as const), text: fc.string({ maxLength: 8 }) }),
);

const dir = mkdtempSync(join(tmpdir(), "dgent-events-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiers: Array<[string, () => Store]> = [
  ["memory", () => createStore({ tiers: [memoryAdapter()] })],
  ["sqlite", () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `e-${Math.random().toString(36).slice(2)}.db`) })] })],
];

describe.each(tiers)("event streams on %s", (_tier, open) => {
  it("fold(snapshot + tail) = fold(all) at every point, and time travel by seq, event id and time matches a reference fold", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 7 }), fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), async (events, every, picks) => {
        const store = open();
        const stream = eventStream(store, { name: "s", reducer, initial, snapshotEvery: every });
        // Times: non-decreasing, with ties, as a stream's are.
        const times = events.map((_, i) => 1_000 + Math.floor(i / 2) * 10);
        for (const [i, e] of events.entries()) expect(await stream.append(e, { at: times[i] as number })).toBe(i + 1);
        expect(await stream.version()).toBe(events.length);
        expect(await stream.state()).toEqual(fold(events));
        for (const pick of picks) {
          const seq = pick % (events.length + 1);
          expect(await stream.stateAt({ seq })).toEqual(fold(events.slice(0, seq)));
          expect(await stream.foldAll(seq)).toEqual(fold(events.slice(0, seq)));
          if (seq > 0) expect(await stream.stateAt({ eventId: stream.eventId(seq) })).toEqual(fold(events.slice(0, seq)));
          const t = 995 + (pick % (events.length * 6 + 10));
          expect(await stream.stateAt({ time: t })).toEqual(fold(events.filter((_, i) => (times[i] as number) <= t)));
        }
        const replayed: StoredEvent<Event>[] = [];
        for await (const e of stream.replay({ from: 2 })) replayed.push(e);
        expect(replayed.map((e) => e.event)).toEqual(events.slice(1));
        expect(replayed.map((e) => e.seq)).toEqual(events.slice(1).map((_, i) => i + 2));
        await store.close();
      }),
      { numRuns: 25 },
    );
  });

  it("rebuilding a state folds at most snapshotEvery events, however long the stream", async () => {
    const store = open();
    let calls = 0;
    const counting = (s: State, e: Event) => {
      calls++;
      return reducer(s, e);
    };
    const stream = eventStream(store, { name: "long", reducer: counting, initial, snapshotEvery: 50 });
    await stream.append(Array.from({ length: 1_030 }, (_, i): Event => ({ type: "add", n: i })));
    calls = 0;
    const state = await stream.state();
    expect(state.total).toBe((1_029 * 1_030) / 2);
    expect(calls).toBe(30); // the snapshot at 1000 plus the 30 events after it
    calls = 0;
    expect((await stream.stateAt({ seq: 499 })).total).toBe((498 * 499) / 2);
    expect(calls).toBe(49);
    await store.close();
  });

  it("optimistic appends: an expected version that moved is DGENT_REF_CONFLICT and appends nothing; racing appenders all land, in some order", async () => {
    const store = open();
    const stream = eventStream(store, { name: "race", reducer, initial });
    await stream.append({ type: "add", n: 1 });
    await expect(stream.append({ type: "add", n: 2 }, { expectedVersion: 0 })).rejects.toMatchObject({ code: "DGENT_REF_CONFLICT" });
    expect(await stream.version()).toBe(1);
    // Two writers expecting version 1: exactly one wins.
    const results = await Promise.allSettled([stream.append({ type: "note", text: "a" }, { expectedVersion: 1 }), stream.append({ type: "note", text: "b" }, { expectedVersion: 1 })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    // Without an expectation, every one of many concurrent appends lands exactly once.
    await Promise.all(Array.from({ length: 20 }, (_, i) => stream.append({ type: "add", n: 10 + i })));
    expect(await stream.version()).toBe(22);
    const state = await stream.state();
    expect(state.total).toBe(1 + Array.from({ length: 20 }, (_, i) => 10 + i).reduce((a, b) => a + b, 0));
    const chain = await store.causalChain(stream.eventId(22));
    expect(chain.map((d) => d.id)).toEqual(Array.from({ length: 22 }, (_, i) => stream.eventId(i + 1)));
    await store.close();
  });

  it("two stream objects appending identical events at once: every append lands once (the writer tag keeps them apart)", async () => {
    const store = open();
    const a = eventStream(store, { name: "same", reducer, initial, snapshotEvery: 7 });
    const b = eventStream(store, { name: "same", reducer, initial, snapshotEvery: 7 });
    const at = 5_000; // one time for all: the datums would be identical but for the writer
    const seqs = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).append({ type: "add", n: 1 }, { at })));
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(await a.version()).toBe(40);
    expect(await b.state()).toEqual({ total: 40, notes: [] });
    expect((await b.stateAt({ seq: 21 })).total).toBe(21);
    await store.close();
  });

  it("a batch is one transaction: it lands whole at consecutive positions, or (with an expected version that moved) not at all", async () => {
    const store = open();
    const a = eventStream(store, { name: "batch", reducer, initial, snapshotEvery: 3 });
    const b = eventStream(store, { name: "batch", reducer, initial, snapshotEvery: 3 });
    expect(await a.append([{ type: "add", n: 1 }, { type: "add", n: 2 }])).toBe(2);
    expect(await b.append({ type: "note", text: "b" })).toBe(3); // a's cached end (2) is now stale
    await expect(a.append([{ type: "add", n: 10 }, { type: "add", n: 20 }], { expectedVersion: 2 })).rejects.toMatchObject({ code: "DGENT_REF_CONFLICT" });
    expect(await a.version()).toBe(3);
    // Without an expectation the batch loses position 3, and lands whole after it.
    const c = eventStream(store, { name: "batch", reducer, initial, snapshotEvery: 3 });
    await c.version();
    await b.append({ type: "add", n: 100 });
    expect(await a.append([{ type: "add", n: 10 }, { type: "add", n: 20 }, { type: "add", n: 30 }])).toBe(7);
    const events: Event[] = [];
    for await (const e of c.replay()) events.push(e.event);
    expect(events).toEqual([{ type: "add", n: 1 }, { type: "add", n: 2 }, { type: "note", text: "b" }, { type: "add", n: 100 }, { type: "add", n: 10 }, { type: "add", n: 20 }, { type: "add", n: 30 }]);
    expect(await c.state()).toEqual(fold(events));
    expect(await store.get("stream/batch/c/000000000006")).not.toBeNull(); // the snapshot inside the batch
    await expect(a.append({ type: "add", n: 1 }, { expectedVersion: -1 })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await store.close();
  });

  it("the head ref is a hint: it follows every 64 events; a lagging or missing hint (a crash before it moved, an older writer) still gives the exact version", async () => {
    const store = open();
    const stream = eventStream(store, { name: "hint", reducer, initial, snapshotEvery: 50 });
    for (let i = 0; i < 130; i++) await stream.append({ type: "add", n: 1 });
    expect((await store.refs.get("stream/hint/head"))?.target).toBe(stream.eventId(128));
    await store.refs.set("stream/hint/head", stream.eventId(3)); // as if the last moves were lost
    const fresh = eventStream(store, { name: "hint", reducer, initial, snapshotEvery: 50 });
    expect(await fresh.version()).toBe(130);
    expect(await fresh.append({ type: "add", n: 1 })).toBe(131);
    await store.refs.delete("stream/hint/head");
    const other = eventStream(store, { name: "hint", reducer, initial, snapshotEvery: 50 });
    expect(await other.version()).toBe(131);
    expect((await other.state()).total).toBe(131);
    await store.close();
  });

  it("reads and appends to a stream in the earlier layout (the head ref moved with every event, its version the stream's)", async () => {
    const store = open();
    const enc = new TextEncoder();
    // Written as the earlier layout did: event + head move in one transaction, no writer tag.
    for (let seq = 1; seq <= 5; seq++) {
      const id = `stream/old/e/${String(seq).padStart(12, "0")}`;
      const datum = { id, content: enc.encode(JSON.stringify({ type: "add", n: seq })), createdAt: 1_000 + seq, causalParent: seq === 1 ? null : `stream/old/e/${String(seq - 1).padStart(12, "0")}`, metadata: { stream: "old", seq: String(seq), "dgent.codec": "json", type: "add" } };
      await store.transaction([
        { op: "put", datum },
        { op: "setRef", name: "stream/old/head", target: id, expect: seq === 1 ? { absent: true } : { version: seq - 1 } },
      ]);
    }
    // Its snapshot at 4, where that layout kept them; the state in it is marked (total + 1000) so
    // the test can tell a rebuild started from it.
    await store.put({ id: "stream/old/s/000000000004", content: enc.encode(JSON.stringify({ total: 1_010, notes: [] })), createdAt: 2_000, causalParent: "stream/old/e/000000000004", metadata: { stream: "old", snapshotOf: "4", "dgent.codec": "json" } });
    const stream = eventStream(store, { name: "old", reducer, initial, snapshotEvery: 4 });
    expect(await stream.version()).toBe(5);
    expect((await stream.state()).total).toBe(1_015);
    expect((await stream.foldAll()).total).toBe(15);
    await store.delete("stream/old/s/000000000004");
    expect((await stream.state()).total).toBe(15);
    expect(await stream.append({ type: "add", n: 6 }, { expectedVersion: 5 })).toBe(6);
    expect((await stream.stateAt({ time: 1_003 })).total).toBe(6);
    expect((await stream.stateAt({ seq: 6 })).total).toBe(21);
    expect((await store.causalChain(stream.eventId(6))).map((d) => d.id)).toEqual(Array.from({ length: 6 }, (_, i) => stream.eventId(i + 1)));
    await store.close();
  });

  it("bad options are coded errors", async () => {
    const store = open();
    expect(() => eventStream(store, { name: "a/b", reducer, initial })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => eventStream(store, { name: "x", reducer, initial, snapshotEvery: 0 })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    const stream = eventStream(store, { name: "x", reducer, initial });
    await expect(stream.stateAt({ seq: 5 })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(stream.stateAt({ eventId: "nope" })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(stream.append((() => 1) as unknown as Event)).rejects.toMatchObject({ code: "DGENT_INVALID_CONTENT" });
    expect(await stream.version()).toBe(0);
    await store.close();
  });
});

describe("where an append may not be a plain put", () => {
  it("a plugin that defers puts (write-behind) does not take an append's position: appends commit on the tier, racing appenders each land once", async () => {
    // Without the append-only check at put time, a deferred put would be acknowledged whatever the tier holds.
    const store = createStore({ tiers: [memoryAdapter()], plugins: [writeBehindPlugin({ intervalMs: 3_600_000, checkOnPut: false })] });
    const a = eventStream(store, { name: "wb", reducer, initial });
    const b = eventStream(store, { name: "wb", reducer, initial });
    const seqs = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).append({ type: "add", n: 1 }, { at: 7_000 })));
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await store.tiers[0]?.get(a.eventId(20))).not.toBeNull(); // on the tier, not in the buffer
    expect((await b.state()).total).toBe(20);
    await store.close();
  });

  it("a tier without transactions (as S3 and GCS) refuses appends with DGENT_UNSUPPORTED and stores nothing", async () => {
    const inner = memoryAdapter() as Required<Adapter>;
    const tier: Adapter = { ...inner, name: "refs-only", rank: inner.rank, capabilities: { ...inner.capabilities, transactions: false }, open: (c) => inner.open(c), close: () => inner.close(), put: (d) => inner.put(d), get: (id) => inner.get(id), delete: (id) => inner.delete(id), list: (o) => inner.list(o), getRef: (n) => inner.getRef(n), listRefs: (p) => inner.listRefs(p), reflog: (n, l) => inner.reflog(n, l), setRef: (n, t, e, m) => inner.setRef(n, t, e, m), deleteRef: (n, e, m) => inner.deleteRef(n, e, m), commit: undefined as never };
    const store = createStore({ tiers: [tier] });
    const stream = eventStream(store, { name: "s3ish", reducer, initial });
    await expect(stream.append({ type: "add", n: 1 })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    expect(await stream.version()).toBe(0);
    expect(await store.count({ prefix: "stream/s3ish/" })).toBe(0);
    await store.close();
  });
});

describe("subscriptions", () => {
  it("a subscriber sees every new event once, in order, also from another stream object on the same store, and catches up from a position", async () => {
    const store = createStore({ tiers: [memoryAdapter()], plugins: [reactive] });
    const writer = eventStream(store, { name: "feed", reducer, initial });
    const reader = eventStream(store, { name: "feed", reducer, initial });
    await writer.append([{ type: "add", n: 1 }, { type: "add", n: 2 }]);
    const seen: number[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const stop = await reader.subscribe((e) => {
      seen.push(e.seq);
      if (e.seq === 6) done();
    }, { from: 2 });
    await Promise.all([writer.append({ type: "add", n: 3 }), writer.append({ type: "add", n: 4 })]);
    await writer.append([{ type: "note", text: "x" }, { type: "note", text: "y" }]);
    await all;
    stop();
    expect(seen).toEqual([2, 3, 4, 5, 6]);
    await writer.append({ type: "add", n: 5 });
    expect(seen).toEqual([2, 3, 4, 5, 6]);
    await store.close();
  });

  it("without a change stream the store says which plugin is missing", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await expect(eventStream(store, { name: "f", reducer, initial }).subscribe(() => undefined)).rejects.toMatchObject({ code: "DGENT_UNKNOWN_PLUGIN" });
    await store.close();
  });
});
