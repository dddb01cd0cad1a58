/**
 * The CRDTs on real stores (memory, SQLite, JSONL): every type's operations and value, replicas
 * converging, snapshot compaction that keeps concurrent and late deltas, failed writes, replica
 * ids, type checks, and two stores on different backends converging through `migrate`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, migrate, type Store } from "../../compose/index.js";
import type { Adapter } from "../../core/protocol.js";
import { dgentError } from "../../core/errors.js";
import { reactive } from "../../plugins/reactive/index.js";
import { expectCode } from "../../testing/index.js";
import { gCounter, gSet, lwwRegister, mvRegister, orMap, orSet, pnCounter, processReplicaId } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-crdt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function memoryStore(): Promise<Store> {
  const store = createStore({ tiers: [memoryAdapter()] });
  await store.open();
  return store;
}

async function sqliteStore(path = join(dir, `s${n++}.db`)): Promise<Store> {
  const store = createStore({ tiers: [sqliteAdapter({ path })] });
  await store.open();
  return store;
}

describe("each type on a store", () => {
  it("counters, sets and registers read back what two replicas wrote", async () => {
    const store = await sqliteStore();
    const opts = (replica: string) => ({ name: "t", replica });
    const [g1, g2] = [gCounter(store, { ...opts("a"), name: "g" }), gCounter(store, { ...opts("b"), name: "g" })];
    await Promise.all([g1.increment(3), g2.increment(4), g1.increment()]);
    expect(await g1.value()).toBe(8);
    expect(await g2.value()).toBe(8);
    await expectCode(g1.increment(-1), "DGENT_INVALID_OPTIONS");

    const pn = [pnCounter(store, { name: "pn", replica: "a" }), pnCounter(store, { name: "pn", replica: "b" })] as const;
    await pn[0].increment(10);
    await pn[1].decrement(3);
    await pn[1].increment(-2);
    expect(await pn[0].value()).toBe(5);

    const gs = gSet(store, { name: "gs" });
    await gs.add({ tool: "search", v: 1 });
    await gs.add({ v: 1, tool: "search" }); // the same JSON value
    await gs.add("code");
    expect(await gs.value()).toEqual(["code", { tool: "search", v: 1 }]);

    const lww = [lwwRegister(store, { name: "lww", replica: "a", clock: () => 100 }), lwwRegister(store, { name: "lww", replica: "b", clock: () => 50 })] as const;
    expect(await lww[0].value()).toBeUndefined();
    await lww[1].value(); // b reads before a writes: its next write is concurrent with a's
    await lww[0].set("first");
    await lww[1].set("concurrent, older clock");
    expect(await lww[1].value()).toBe("first");
    await lww[1].set("seen the first"); // stamped after what it has seen, whatever its clock
    expect(await lww[0].value()).toBe("seen the first");

    const mv = [mvRegister(store, { name: "mv", replica: "a" }), mvRegister(store, { name: "mv", replica: "b" })] as const;
    await mv[1].value(); // b reads before a writes: their writes are concurrent
    await mv[0].set("plan A");
    await mv[1].set("plan B"); // b has not read: concurrent
    expect(await mv[0].value()).toEqual(["plan A", "plan B"]);
    await mv[0].set("plan C"); // a has seen both now
    expect(await mv[1].value()).toEqual(["plan C"]);
    await store.close();
  });

  it("OR-Set: remove takes back what was seen; a concurrent add wins; clear", async () => {
    const store = await memoryStore();
    const a = orSet(store, { name: "caps", replica: "a" });
    const b = orSet(store, { name: "caps", replica: "b" });
    await a.add("search");
    await a.add("code");
    expect(await b.value()).toEqual(["code", "search"]);
    await a.add("search"); // a concurrent re-add (b has not read it)
    await b.remove("search");
    expect(await b.value()).toEqual(["code", "search"]);
    await b.remove("search");
    expect(await a.value()).toEqual(["code"]);
    await a.clear();
    expect(await b.value()).toEqual([]);
    await store.close();
  });

  it("OR-Map of counters, OR-Sets and registers, with delete and wrong-type operations refused", async () => {
    const store = await memoryStore();
    const tokens = orMap(store, { name: "tokens", values: "counter", replica: "w1" });
    const tokens2 = orMap(store, { name: "tokens", values: "counter", replica: "w2" });
    await tokens.increment("gpt", 120);
    await tokens2.increment("gpt", 80);
    await tokens2.increment("claude", 5);
    expect(await tokens.value()).toEqual({ claude: 5, gpt: 200 });
    await tokens.delete("gpt");
    expect(await tokens2.value()).toEqual({ claude: 5 });
    await tokens2.increment("gpt", 1);
    expect(await tokens.value()).toEqual({ claude: 5, gpt: 1 });
    await expectCode(tokens.add("gpt", "x"), "DGENT_INVALID_OPTIONS");

    const caps = orMap(store, { name: "caps", values: "orset" });
    await caps.add("agent-1", "search");
    await caps.add("agent-1", "code");
    await caps.remove("agent-1", "search");
    await caps.add("agent-2", "review");
    expect(await caps.value()).toEqual({ "agent-1": ["code"], "agent-2": ["review"] });
    await caps.delete("agent-2");
    expect(await caps.value()).toEqual({ "agent-1": ["code"] });

    const profile = orMap(store, { name: "profile", values: "lww" });
    await profile.set("name", "Ada");
    await profile.set("name", "Ada L.");
    expect(await profile.value()).toEqual({ name: "Ada L." });
    const shared = orMap(store, { name: "shared", values: "mvregister", replica: "x" });
    const shared2 = orMap(store, { name: "shared", values: "mvregister", replica: "y" });
    await shared2.value();
    await shared.set("goal", "ship");
    await shared2.set("goal", "test");
    expect(await shared.value()).toEqual({ goal: ["ship", "test"] });
    await expectCode(Promise.resolve().then(() => orMap(store, { name: "m", values: "nope" as "lww" })), "DGENT_INVALID_OPTIONS");
    await store.close();
  });
});

describe("storage", () => {
  it("deltas are tagged datums that queries find; a read is the snapshot plus the deltas since", async () => {
    const store = await sqliteStore();
    const c = pnCounter(store, { name: "hits", replica: "r1", compactEvery: Infinity });
    for (let i = 0; i < 5; i++) await c.increment();
    expect(await store.count({ where: { crdt: "hits", "crdt.part": "delta" } })).toBe(5);
    const [first] = (await store.query({ where: { crdt: "hits", "crdt.dot": "r1:1" } })).items;
    expect(first?.id).toBe("crdt/hits/d/r1/000000000001");
    expect(first?.metadata["crdt.type"]).toBe("pncounter");

    const result = await c.compact();
    expect(result).toMatchObject({ deltas: 5, snapshots: 0, atomic: true });
    expect(await store.count({ prefix: "crdt/hits/d/" })).toBe(0);
    await c.increment(2);
    const read = await c.read();
    expect([read.snapshots.length, read.deltas.length]).toEqual([1, 1]);
    expect(await c.value()).toBe(7);
    expect(await c.compact()).toMatchObject({ deltas: 1, snapshots: 1 });
    expect(await c.compact()).toMatchObject({ snapshot: null }); // one snapshot, no delta: nothing to do
    await store.close();
  });

  it("on a tier without transactions, compaction puts the snapshot first and deletes after; the value holds", async () => {
    const inner = memoryAdapter();
    const noTx: Adapter = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === "capabilities") return { ...target.capabilities, transactions: false };
        if (prop === "commit") return undefined;
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const store = createStore({ tiers: [noTx] });
    await store.open();
    await expectCode(store.transaction([]), "DGENT_UNSUPPORTED");
    const board = orSet(store, { name: "b", replica: "a" });
    await board.add("x");
    await board.add("y");
    await board.remove("x");
    expect(await board.compact()).toMatchObject({ deltas: 3, snapshots: 0, atomic: false });
    expect(await store.count({ prefix: "crdt/b/" })).toBe(1);
    expect(await board.value()).toEqual(["y"]);
    await store.close();
  });

  it("subscribe: each distinct merged value after a change, from any replica; compactions add none", async () => {
    const store = createStore({ tiers: [memoryAdapter()], plugins: [reactive] });
    await store.open();
    const reader = pnCounter(store, { name: "live", replica: "reader" });
    const writer = pnCounter(store, { name: "live", replica: "writer" });
    const seen: number[] = [];
    let done!: () => void;
    const reached = new Promise<void>((resolve) => (done = resolve));
    const stop = await reader.subscribe((v) => {
      seen.push(v);
      if (v === 6) done();
    });
    await writer.increment(1);
    await writer.compact();
    await writer.increment(2);
    await writer.increment(3);
    await reached;
    stop();
    expect(seen.at(-1)).toBe(6);
    expect(seen.every((v, i) => i === 0 || v > (seen[i - 1] as number))).toBe(true); // in order, no value twice
    await store.close();
  });

  it("compare: what two replicas have seen, as causal order", async () => {
    const store = await memoryStore();
    const a = pnCounter(store, { name: "c", replica: "a" });
    const b = pnCounter(store, { name: "c", replica: "b" });
    expect(a.compare(b)).toBe("equal");
    await a.increment();
    expect(a.compare(b)).toBe("after");
    await b.value();
    expect(b.compare(a)).toBe("equal");
    await b.increment();
    expect(a.compare(b)).toBe("before");
    await a.increment();
    expect(a.compare(b)).toBe("concurrent");
    expect(b.seen.versionVector()).toEqual({ a: 1, b: 1 });
    await store.close();
  });

  it("a counter's value() reads one delta per replica; without a marker, or after a restart with a clock behind, it still counts every write", async () => {
    const path = join(dir, `heads${n++}.db`);
    const writer = await sqliteStore(path);
    const behind = { at: 5_000_000 };
    const [a, b] = [pnCounter(writer, { name: "h", replica: "a", clock: () => behind.at }), pnCounter(writer, { name: "h", replica: "b" })];
    for (let i = 0; i < 30; i++) await Promise.all([a.increment(), b.increment(2)]);
    await b.decrement(5);
    // A reader in a new store, counting the delta datums its tier hands back.
    let deltasRead = 0;
    const inner = sqliteAdapter({ path });
    const counting: Adapter = new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === "query") {
          return async (q: { prefix?: string }) => {
            const items = await (value as (q: unknown) => Promise<unknown[]>).call(target, q);
            if (q.prefix?.includes("/d/")) deltasRead += items.length;
            return items;
          };
        }
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const reader = createStore({ tiers: [counting] });
    await reader.open();
    expect(await pnCounter(reader, { name: "h", replica: "r" }).value()).toBe(85);
    expect(deltasRead).toBe(2);
    // The same replica id in a new process whose clock is behind its last write: its next write is
    // still its newest by time, so the one-per-replica read sees it.
    const restarted = await sqliteStore(path);
    behind.at = 1_000;
    await pnCounter(restarted, { name: "h", replica: "a", clock: () => behind.at }).increment(100);
    expect(await pnCounter(reader, { name: "h", replica: "r2" }).value()).toBe(185);
    // A writer that left no marker (deleted here): the counts disagree and everything is read.
    expect(await writer.delete("crdt/h/r/b")).toBe(true);
    deltasRead = 0;
    expect(await pnCounter(reader, { name: "h", replica: "r3" }).value()).toBe(185);
    expect(deltasRead).toBeGreaterThanOrEqual(31);
    await Promise.all([writer.close(), restarted.close(), reader.close()]);
  });

  it("value() compacts once it has read compactEvery deltas", async () => {
    const store = await memoryStore();
    const c = gCounter(store, { name: "auto", compactEvery: 4 });
    for (let i = 0; i < 4; i++) await c.increment();
    expect(await c.value()).toBe(4);
    const read = await c.read();
    expect([read.snapshots.length, read.deltas.length, c.type]).toEqual([1, 0, "gcounter"]);
    await store.close();
  });

  it("compaction never loses a concurrent write or a late one, and a covered delta delivered again changes nothing", async () => {
    const store = await sqliteStore();
    const a = orSet(store, { name: "board", replica: "a" });
    const b = orSet(store, { name: "board", replica: "b" });
    const counter = [pnCounter(store, { name: "n", replica: "a" }), pnCounter(store, { name: "n", replica: "b" })] as const;
    await a.add("task-1");
    await a.add("task-2");
    await b.remove("task-1");
    // Two compactions and writes race; each compaction removes only what it read.
    await Promise.all([a.compact(), b.add("task-3"), counter[0].increment(5), b.compact(), counter[1].increment(7), counter[0].compact(), counter[1].increment(1), counter[1].compact()]);
    expect(await a.value()).toEqual(["task-2", "task-3"]);
    expect(await counter[0].value()).toBe(13);

    // A late delta: written before the snapshot, arriving after it (as a promoted one does).
    const late = orSet(store, { name: "board", replica: "late" });
    const early = [...(await store.query({ prefix: "crdt/board/", order: "oldest" })).items];
    await a.compact();
    const snapshotOnly = (await store.query({ prefix: "crdt/board/" })).items;
    expect(snapshotOnly.map((d) => d.metadata["crdt.part"])).toEqual(["snapshot"]);
    await late.add("task-4");
    const lateDelta = (await store.query({ prefix: "crdt/board/d/" })).items[0]!;
    await store.delete(lateDelta.id);
    await store.put({ ...lateDelta, createdAt: 1 }); // older than the snapshot
    // Every covered delta delivered again (as a lower tier's copy would be): no resurrection.
    for (const d of early) if (d.metadata["crdt.part"] === "delta") await store.put(d);
    expect(await a.value()).toEqual(["task-2", "task-3", "task-4"]);
    await store.close();
  });

  it("a write whose put failed never counts, even if it landed: the replica's next write covers it", async () => {
    const inner = memoryAdapter();
    let failNext = false;
    let landFailed = false;
    const flaky: Adapter = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === "put") {
          return async (datum: Parameters<Adapter["put"]>[0]) => {
            if (failNext) {
              failNext = false;
              if (landFailed) await target.put(datum); // it landed, but the caller saw a failure
              throw dgentError("DGENT_UNAVAILABLE", "the write timed out");
            }
            return target.put(datum);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const store = createStore({ tiers: [flaky] });
    await store.open();
    const c = gCounter(store, { name: "c", replica: "r" });
    const tags = orSet(store, { name: "tags", replica: "r" });
    await c.increment(1);
    failNext = landFailed = true;
    await expectCode(c.increment(100), "DGENT_UNAVAILABLE");
    failNext = landFailed = true;
    await expectCode(tags.add("ghost"), "DGENT_UNAVAILABLE");
    expect(await c.value()).toBe(101); // an unacknowledged write that landed is visible until the next write…
    await c.increment(2);
    await tags.add("real");
    expect(await c.value()).toBe(3); // …which covers it
    expect(await tags.value()).toEqual(["real"]);
    await store.close();
  });

  it("replica ids: the process's by default; a given id carries on after a restart; two live writers on one id clash", async () => {
    const path = join(dir, "replicas.db");
    const s1 = await sqliteStore(path);
    const d = gCounter(s1, { name: "x" });
    expect(d.replica).toBe(processReplicaId());
    expect(processReplicaId()).toMatch(/^[A-Za-z0-9.-]+-\d+-[0-9a-f]{8}$/);
    await d.increment();
    // Two handles in one process share the replica's write numbers.
    await Promise.all([gCounter(s1, { name: "x" }).increment(), d.increment()]);
    const c1 = gCounter(s1, { name: "x", replica: "worker-7" });
    await c1.increment(2);
    await s1.close();

    const s2 = await sqliteStore(path); // a restart: a new store, the same id
    const c2 = gCounter(s2, { name: "x", replica: "worker-7" });
    await c2.increment(3);
    expect(await c2.value()).toBe(8);

    const s3 = await sqliteStore(path); // a second live writer with the same id
    const c3 = gCounter(s3, { name: "x", replica: "worker-7" });
    await c3.value();
    await c2.increment(1);
    await expectCode(c3.increment(2), "DGENT_CRDT_REPLICA_CLASH");
    await expectCode(Promise.resolve().then(() => gCounter(s3, { name: "x", replica: "has space" })), "DGENT_INVALID_OPTIONS");
    await expectCode(Promise.resolve().then(() => gCounter(s3, { name: "a/b" })), "DGENT_INVALID_OPTIONS");
    await expectCode(orSet(s3, { name: "x" }).value(), "DGENT_CRDT_TYPE");
    await expectCode(orSet(s3, { name: "x", replica: "worker-7" }).add("a"), "DGENT_CRDT_TYPE"); // never writes with another type's state
    await s2.close();
    await s3.close();
  });

  it("two stores on different backends converge when one is migrated into the other", async () => {
    const [pathA, pathB] = [join(dir, "site-a.db"), join(dir, "site-b.jsonl")];
    const a = createStore({ tiers: [sqliteAdapter({ path: pathA })] });
    const { jsonlAdapter } = await import("../../adapters/jsonl/index.js");
    const b = createStore({ tiers: [jsonlAdapter({ path: pathB })] });
    await Promise.all([a.open(), b.open()]);
    const ca = pnCounter(a, { name: "tokens", replica: "site-a" });
    const cb = pnCounter(b, { name: "tokens", replica: "site-b" });
    const sa = orSet(a, { name: "caps", replica: "site-a" });
    const sb = orSet(b, { name: "caps", replica: "site-b" });
    await ca.increment(10);
    await ca.compact();
    await ca.increment(1);
    await cb.increment(20);
    await sa.add("search");
    await sa.remove("search");
    await sb.add("search"); // concurrent with site a's remove: add wins
    await sb.add("code");
    await sb.compact();
    await Promise.all([a.close(), b.close()]);
    await migrate({ from: `jsonl://${pathB}`, to: `sqlite://${pathA}`, checkpointPath: join(dir, "migrate.ckpt") });
    const merged = await sqliteStore(pathA);
    expect(await pnCounter(merged, { name: "tokens" }).value()).toBe(31);
    expect(await orSet(merged, { name: "caps" }).value()).toEqual(["code", "search"]);
    await merged.close();
  });
});
