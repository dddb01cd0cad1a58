/**
 * DgentSaver's own guarantees beyond LangGraph's suite: pending writes replaced by generations
 * (atomically, on tiers with and without transactions, and under racing writers), reads bounded
 * in store calls (no N+1), `list` filters pushed down to the store's query, the id layout's
 * escaping, checkpoint replacement, the `ref` mode, errors and versions.
 */
import { uuid6, type CheckpointTuple } from "@langchain/langgraph-checkpoint";
import { v6 } from "@langchain/core/utils/uuid";
import { describe, expect, it } from "vitest";
import { createStore, type Store } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { DgentSaver, checkpointTime } from "./index.js";
import { part, unpart } from "./keys.js";
import { dumpsTyped } from "./codec.js";
import { JsonPlusSerializer } from "@langchain/langgraph-checkpoint";
import { HumanMessage } from "@langchain/core/messages";

const memory = () => createStore({ tiers: [memoryAdapter()] });

/** A store whose method calls are counted (what a saver costs in round trips). */
function counted(store: Store): { store: Store; calls: Record<string, number>; reset(): void; log: unknown[][] } {
  const calls: Record<string, number> = {};
  const log: unknown[][] = [];
  const proxy = new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function" || typeof key !== "string" || key === "constructor") return value;
      return (...args: unknown[]) => {
        calls[key] = (calls[key] ?? 0) + 1;
        log.push([key, ...args]);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls, log, reset: () => (Object.keys(calls).forEach((k) => delete calls[k]), log.splice(0)) };
}

/** The same store, seen as a tier without transactions (the object stores' path). */
function withoutTransactions(store: Store): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === "capabilities") return { ...target.capabilities, transactions: false };
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function checkpoint(id = uuid6(-1), values: Record<string, unknown> = {}, version = 1) {
  return {
    v: 4,
    id,
    ts: new Date().toISOString(),
    channel_values: values,
    channel_versions: Object.fromEntries(Object.keys(values).map((k) => [k, version])),
    versions_seen: {},
  };
}
const meta = (extra: Record<string, unknown> = {}) => ({ source: "loop" as const, step: 0, parents: {}, ...extra });
const cfg = (thread_id: string, checkpoint_ns = "", checkpoint_id?: string) => ({ configurable: { thread_id, checkpoint_ns, ...(checkpoint_id ? { checkpoint_id } : {}) } });

async function all<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

describe.each([
  ["with transactions", (s: Store) => s],
  ["without transactions", withoutTransactions],
])("pending writes %s", (_name, view) => {
  it("a special write (error, interrupt) replaces the earlier one of its task and index; a regular write keeps its first value", async () => {
    const base = memory();
    const saver = new DgentSaver({ store: view(base) });
    const at = await saver.put(cfg("t"), checkpoint(), meta(), {});
    await saver.putWrites(at, [["__error__", { message: "first" }]], "task-1");
    await saver.putWrites(at, [["out", 1]], "task-1");
    await saver.putWrites(at, [["__error__", { message: "second" }]], "task-1");
    await saver.putWrites(at, [["out", 2]], "task-1"); // ignored: index 0 of task-1 is taken
    await saver.putWrites(at, [["__interrupt__", "ask"]], "task-2");
    await saver.putWrites(at, [["__interrupt__", "ask again"]], "task-2");
    await saver.putWrites(at, [["__interrupt__", "and again"]], "task-2");
    await saver.putWrites(at, [["out", 3]], "task-1"); // ignored: index 0 of task-1 is taken
    const tuple = await saver.getTuple(at);
    expect(tuple?.pendingWrites).toEqual([
      ["task-1", "__error__", { message: "second" }],
      ["task-1", "out", 1],
      ["task-2", "__interrupt__", "and again"],
    ]);
    // What is stored: each task's first call (generation 0, kept), task-1's regular write and last
    // error; task-2's middle generation, superseded by the last, is gone.
    const ids = (await base.query({ prefix: saver.layout.writes("t", "", at.configurable?.checkpoint_id as string), select: "ids", order: "oldest" })).items;
    expect(ids.map((id) => id.split("/").slice(-2).join("/")).sort()).toEqual(["task-1/0", "task-1/1", "task-1/2", "task-2/0", "task-2/2"]);
    await base.close();
  });

  it("writers racing to replace the same special write all succeed, each in its own generation, and one value is read", async () => {
    const base = memory();
    const saver = new DgentSaver({ store: view(base) });
    const at = await saver.put(cfg("race"), checkpoint(), meta(), {});
    await Promise.all(Array.from({ length: 8 }, (_, i) => saver.putWrites(at, [["__error__", `e${i}`]], "task")));
    const writes = (await saver.getTuple(at))?.pendingWrites ?? [];
    expect(writes).toHaveLength(1);
    expect(writes[0]?.[2]).toMatch(/^e[0-7]$/);
    await base.close();
  });
});

it("a reader skips generations a writer without transactions had no time to delete (a crash between put and delete)", async () => {
  const store = memory();
  const saver = new DgentSaver({ store });
  const at = await saver.put(cfg("crash"), checkpoint(), meta(), {});
  await saver.putWrites(at, [["__interrupt__", "old"]], "task");
  // The next generation as a writer stores it, its predecessor left in place.
  const gen0 = (await store.get(`${saver.layout.taskWrites("crash", "", at.configurable?.checkpoint_id as string, "task")}0`))!;
  const body = await saver.serde.dumpsTyped({ t: "task", p: "", w: [[-3, "__interrupt__", "new"]] });
  await store.put({ ...gen0, id: gen0.id.replace(/0$/, "1"), content: body[1] });
  expect((await saver.getTuple(at))?.pendingWrites).toEqual([["task", "__interrupt__", "new"]]);
  // A regular write found in two generations (as another writer could leave it): the first one counts.
  const regular = await saver.serde.dumpsTyped({ t: "task", p: "", w: [[0, "out", "later"]] });
  const earlier = await saver.serde.dumpsTyped({ t: "task", p: "", w: [[0, "out", "first"]] });
  await store.put({ ...gen0, id: gen0.id.replace(/0$/, "3"), content: regular[1] });
  await store.put({ ...gen0, id: gen0.id.replace(/0$/, "2"), content: earlier[1] });
  expect((await saver.getTuple(at))?.pendingWrites).toEqual([
    ["task", "__interrupt__", "new"],
    ["task", "out", "first"],
  ]);
  await store.close();
});

it("a putWrites call is one datum: all of its writes are stored together", async () => {
  const { store, calls } = counted(memory());
  const saver = new DgentSaver({ store });
  const at = await saver.put(cfg("t"), checkpoint(), meta(), {});
  const before = { ...calls };
  await saver.putWrites(at, [["a", 1], ["b", 2], ["c", 3]], "task", "~path");
  expect((calls.put ?? 0) - (before.put ?? 0)).toBe(1);
  expect((calls.putMany ?? 0) - (before.putMany ?? 0)).toBe(0);
  expect((await saver.getTuple(at))?.pendingWrites).toEqual([["task", "a", 1], ["task", "b", 2], ["task", "c", 3]]);
});

describe("reads are bounded in store calls", () => {
  async function big(saver: DgentSaver) {
    const values = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`ch${i}`, { i }]));
    let config = cfg("big");
    for (let step = 0; step < 5; step++) {
      const cp = checkpoint(uuid6(step), values);
      config = (await saver.put(config, cp, meta({ step }), cp.channel_versions)) as typeof config;
      for (let t = 0; t < 30; t++) await saver.putWrites(config, [["ch0", t]], `task-${t}`);
    }
    return config;
  }

  it("getTuple: two calls (the checkpoint with its small values, its writes) whatever the number of channels and writes", async () => {
    const { store, calls, reset } = counted(memory());
    const saver = new DgentSaver({ store });
    const last = await big(saver);
    reset();
    const latest = await saver.getTuple(cfg("big"));
    expect(Object.keys(latest?.checkpoint.channel_values ?? {})).toHaveLength(20);
    expect(latest?.pendingWrites).toHaveLength(30);
    expect(calls).toEqual({ query: 2 });
    reset();
    expect((await saver.getTuple(last))?.checkpoint.channel_values).toEqual(latest?.checkpoint.channel_values);
    expect(calls).toEqual({ get: 1, query: 1 });
  });

  it("getTuple of the latest reads the writes of the checkpoint this saver put last alongside, and again when another writer put a newer one", async () => {
    const base = memory();
    const { store, calls, reset } = counted(base);
    const mine = new DgentSaver({ store });
    const other = new DgentSaver({ store: base });
    const first = await mine.put(cfg("g"), checkpoint(uuid6(1), { x: 1 }), meta(), { x: 1 });
    await mine.putWrites(first, [["x", "mine"]], "task");
    reset();
    expect((await mine.getTuple(cfg("g")))?.pendingWrites).toEqual([["task", "x", "mine"]]);
    expect(calls).toEqual({ query: 2 });
    const newer = await other.put(first, checkpoint(uuid6(2), { x: 2 }, 2), meta(), { x: 2 });
    await other.putWrites(newer, [["x", "other"]], "task");
    reset();
    const latest = await mine.getTuple(cfg("g"));
    expect(latest?.config.configurable?.checkpoint_id).toBe(newer.configurable?.checkpoint_id);
    expect(latest?.pendingWrites).toEqual([["task", "x", "other"]]);
    expect(calls).toEqual({ query: 3 });
    await mine.deleteThread("g");
    expect(await mine.getTuple(cfg("g"))).toBeUndefined();
  });

  it("getTuple: three calls when values are stored apart (large ones, or `inlineLimit: 0`), whatever their number", async () => {
    for (const options of [{ inlineLimit: 0 }, { inlineLimit: 4 }]) {
      const { store, calls, reset } = counted(memory());
      const saver = new DgentSaver({ store, ...options });
      const last = await big(saver);
      reset();
      const latest = await saver.getTuple(cfg("big"));
      expect(latest?.checkpoint.channel_values).toEqual(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`ch${i}`, { i }])));
      expect(latest?.pendingWrites).toHaveLength(30);
      expect(calls).toEqual({ query: 2, getMany: 1 });
      reset();
      await saver.getTuple(last);
      expect(calls).toEqual({ get: 1, query: 1, getMany: 1 });
    }
  });

  it.each([
    ["values in the checkpoint", {}, { query: 6 }],
    ["values apart", { inlineLimit: 0 }, { query: 6, getMany: 3 }],
  ])("list: two or three calls per page of 100 checkpoints, not one per checkpoint (%s)", async (_name, options, expected) => {
    const { store, calls, reset } = counted(memory());
    const saver = new DgentSaver({ store, ...options });
    let config = cfg("long");
    for (let i = 0; i < 250; i++) {
      config = (await saver.put(config, checkpoint(uuid6(i), { x: i }, i + 1), meta({ step: i }), { x: i + 1 })) as typeof config;
      await saver.putWrites(config, [["x", i]], "task");
    }
    reset();
    const listed = await all(saver.list(cfg("long")));
    expect(listed).toHaveLength(250);
    expect(listed.map((t) => t.metadata?.step)).toEqual(Array.from({ length: 250 }, (_, i) => 249 - i));
    expect(listed.every((t) => t.pendingWrites?.length === 1 && t.pendingWrites[0]?.[2] === t.metadata?.step)).toBe(true);
    expect(listed.every((t) => (t.checkpoint.channel_values as { x: number }).x === t.metadata?.step)).toBe(true);
    expect(calls).toEqual(expected);
  });
});

describe("list pushes its conditions down to the store's query", () => {
  it("the metadata filter is a where on tags, `before` an id range, `limit` the page size: the store returns only what is listed", async () => {
    const { store, log, reset } = counted(memory());
    const saver = new DgentSaver({ store });
    let config = cfg("f");
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const cp = checkpoint(uuid6(i));
      ids.push(cp.id);
      config = (await saver.put(config, cp, meta({ step: i, source: i % 4 === 0 ? "input" : "loop", user: { name: i % 2 ? "ada" : "bob" } }), {})) as typeof config;
    }
    reset();
    const listed = await all(saver.list(cfg("f"), { filter: { source: "input", user: { name: "bob" } }, before: cfg("f", "", ids[30]), limit: 5 }));
    expect(listed.map((t) => t.metadata?.step)).toEqual([28, 24, 20, 16, 12]);
    const queries = log.filter(([op]) => op === "query").map(([, q]) => q as Record<string, unknown>);
    const [checkpoints] = queries;
    expect(checkpoints).toMatchObject({
      where: { "m.source": '"input"', "m.user": '{"name":"bob"}', "lg.checkpoint": '["","f"]' },
      prefix: saver.layout.checkpoints("f"),
      idRange: { lt: saver.layout.checkpointsBefore("f", ids[30] as string) },
      limit: 5,
    });
  });

  it("filter values are compared as JSON: 1 is not \"1\", key order does not matter, undefined is no condition", async () => {
    const saver = new DgentSaver({ store: memory() });
    await saver.put(cfg("j"), checkpoint(uuid6(1)), meta({ n: 1, o: { a: 1, b: 2 } }), {});
    await saver.put(cfg("j"), checkpoint(uuid6(2)), meta({ n: "1" }), {});
    const steps = async (filter: Record<string, unknown>) => (await all(saver.list(cfg("j"), { filter }))).map((t) => (t.metadata as Record<string, unknown> | undefined)?.n);
    expect(await steps({ n: 1 })).toEqual([1]);
    expect(await steps({ n: "1" })).toEqual(["1"]);
    expect(await steps({ o: { b: 2, a: 1 } })).toEqual([1]);
    expect(await steps({ n: undefined })).toEqual(["1", 1]);
    expect(await steps({ missing: 1 })).toEqual([]);
  });

  it("long metadata values are tagged by their hash, and still filter exactly", async () => {
    const store = memory();
    const saver = new DgentSaver({ store });
    const long = "x".repeat(5000);
    await saver.put(cfg("h"), checkpoint(uuid6(1)), meta({ note: long }), {});
    await saver.put(cfg("h"), checkpoint(uuid6(2)), meta({ note: `${long}y` }), {});
    const tags = (await store.query({ prefix: saver.layout.checkpoints("h"), select: "meta" })).items.map((d) => d.metadata["m.note"]);
    expect(tags.every((t) => /^sha256:[0-9a-f]{64}$/.test(t ?? ""))).toBe(true);
    expect((await all(saver.list(cfg("h"), { filter: { note: long } }))).map((t) => (t.metadata as Record<string, unknown> | undefined)?.note)).toEqual([long]);
  });

  it("without a thread, `before` still lists exactly the older checkpoints of every thread", async () => {
    const saver = new DgentSaver({ store: memory() });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const cp = checkpoint(uuid6(i));
      ids.push(cp.id);
      await saver.put(cfg(`t${i % 3}`, i % 2 ? "sub" : ""), cp, meta({ step: i }), {});
    }
    // Across threads the order is newest first to the millisecond (these ids share one): compare as sets.
    const older = await all(saver.list({}, { before: cfg("t0", "", ids[7]) }));
    expect(older.map((t) => t.checkpoint.id).sort()).toEqual(ids.slice(0, 7).sort());
    const olderSub = await all(saver.list({ configurable: { checkpoint_ns: "sub" } }, { before: cfg("t0", "", ids[7]) }));
    expect(olderSub.map((t) => t.metadata?.step).sort()).toEqual([1, 3, 5]);
    const oneThreadEveryNs = await all(saver.list({ configurable: { thread_id: "t1" } }, { before: cfg("t1", "", ids[10]) }));
    expect(oneThreadEveryNs.map((t) => t.metadata?.step)).toEqual([7, 4, 1]);
  });
});

describe("the layout", () => {
  it("plain JSON is written without the serializer's replacer, byte for byte what the serializer writes; anything else by the serializer", async () => {
    const serde = new JsonPlusSerializer();
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    const shared = { x: [1, 2] };
    class Point {
      constructor(readonly x: number) {}
    }
    const deep: unknown[] = [];
    let at = deep;
    for (let i = 0; i < 80; i++) at = (at[0] = []) as unknown[];
    const values: unknown[] = [
      null, 0, -0, 1.5, NaN, Infinity, "", "é\u2028\"\n", true, [], {}, [1, "a", null, [{}]],
      { step: 3, log: ["p0", "p1"], b: { result: 1, detail: "x".repeat(64) }, c: false },
      { a: undefined }, [undefined], [1, , 3], { a: new Set([1]) }, { m: new Map([["k", 1]]) }, { d: new Date(0) }, { e: new Error("boom") },
      { u: new Uint8Array([1, 2]) }, { r: /x/g }, { p: new Point(1) }, { t: { toJSON: () => "j" } }, Object.assign(Object.create(null), { n: 1 }),
      { f: () => 1 }, { s: Symbol("s") }, cycle, { one: shared, two: shared }, deep, new HumanMessage("hi"), { lc: 1, type: "constructor", id: ["x"] },
    ];
    for (const [i, value] of values.entries()) {
      const [type, bytes] = await dumpsTyped(serde, value);
      const [wantType, want] = await serde.dumpsTyped(value);
      expect(type).toBe(wantType);
      expect(Buffer.from(bytes).toString("utf8"), `value ${i}`).toBe(Buffer.from(want).toString("utf8"));
    }
    expect((await dumpsTyped(serde, new Uint8Array([7])))[0]).toBe("bytes");
  });

  it("escapes ids: threads and namespaces holding /, spaces, % and control characters stay apart", async () => {
    const store = memory();
    const saver = new DgentSaver({ store });
    const threads = ["a", "a/b", "a b", "a%2Fb", "a\u0001", "ä/ö"];
    for (const t of threads) {
      for (const ns of ["", "sub ns", "sub/ns"]) await saver.put(cfg(t, ns), checkpoint(uuid6(1), { v: `${t}|${ns}` }), meta(), { v: 1 });
    }
    for (const t of threads) {
      for (const ns of ["", "sub ns", "sub/ns"]) expect((await saver.getTuple(cfg(t, ns)))?.checkpoint.channel_values).toEqual({ v: `${t}|${ns}` });
      expect(await all(saver.list({ configurable: { thread_id: t } }))).toHaveLength(3);
    }
    await saver.deleteThread("a");
    expect(await saver.getTuple(cfg("a"))).toBeUndefined();
    expect((await saver.getTuple(cfg("a/b")))?.checkpoint.channel_values).toEqual({ v: "a/b|" });
    for (const s of threads) expect(unpart(part(s))).toBe(s);
  });

  it("a checkpoint's datums carry the time of its id, so the store's order is checkpoint id order", async () => {
    const ms = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    const id = v6({ msecs: ms, nsecs: 1234, clockseq: 0x1234, node: new Uint8Array(6) });
    expect(checkpointTime(id)).toBe(ms);
    expect(checkpointTime("0190f1a2-b3c4-7def-8123-456789abcdef")).toBe(0x0190f1a2b3c4);
    expect(checkpointTime("not a uuid")).toBe(0);
    // The arithmetic against BigInt's, on random 60-bit UUIDv6 times (the whole range, and around 1970).
    const reference = (hex: string): number => {
      const ms = BigInt(`0x${hex}`) / 10_000n - 12_219_292_800_000n;
      return ms < 0n ? 0 : Number(ms);
    };
    const random = (digits: number): string => Array.from({ length: digits }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
    for (let i = 0; i < 2000; i++) {
      const hex = i % 2 === 0 ? random(15) : (BigInt(Math.floor(Math.random() * 4e12)) * 10_000n + 122_192_928_000_000_000n + BigInt(i)).toString(16).padStart(15, "0");
      const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-6${hex.slice(12)}-8000-000000000000`;
      expect(checkpointTime(uuid)).toBe(reference(hex));
    }
  });
});

describe("checkpoints", () => {
  it("`inlineLimit: 0`: only new channel values are stored, each a datum; the rest is read from the versions the checkpoint names", async () => {
    const store = memory();
    const saver = new DgentSaver({ store, inlineLimit: 0 });
    const a = await saver.put(cfg("v"), { ...checkpoint(uuid6(1), { big: "x".repeat(1000), small: 1 }) }, meta(), { big: 1, small: 1 });
    const cp2 = { ...checkpoint(uuid6(2), { big: "x".repeat(1000), small: 2 }), channel_versions: { big: 1, small: 2 } };
    await saver.put(a, cp2, meta(), { small: 2 });
    expect(await store.count({ prefix: `${saver.layout.thread("v")}b/` })).toBe(3);
    expect((await saver.getTuple(cfg("v")))?.checkpoint.channel_values).toEqual({ big: "x".repeat(1000), small: 2 });
  });

  it("small values live in the checkpoint, a large one is a datum stored once per version; each checkpoint reads what was stored for its versions", async () => {
    const store = memory();
    const saver = new DgentSaver({ store });
    const big = "x".repeat(5000);
    const a = await saver.put(cfg("v"), checkpoint(uuid6(1), { big, small: 1 }), meta(), { big: 1, small: 1 });
    const cp2 = { ...checkpoint(uuid6(2), { big, small: 2, never: "put" }), channel_versions: { big: 1, small: 2, never: 1 } };
    const b = await saver.put(a, cp2, meta(), { small: 2 }); // `never` is in no newVersions: not stored
    const cp3 = { ...checkpoint(uuid6(3), { big, small: 2 }), channel_versions: { big: 1, small: 2 } };
    await saver.put(b, cp3, meta(), {});
    expect(await store.count({ prefix: `${saver.layout.thread("v")}b/` })).toBe(1);
    expect(await store.count({ prefix: saver.layout.thread("v") })).toBe(4);
    expect((await saver.getTuple(a))?.checkpoint.channel_values).toEqual({ big, small: 1 });
    expect((await saver.getTuple(b))?.checkpoint.channel_values).toEqual({ big, small: 2 });
    expect((await saver.getTuple(cfg("v")))?.checkpoint.channel_values).toEqual({ big, small: 2 });
    // A saver that did not write the parent reads its record from the store, once.
    const { store: viewed, calls } = counted(store);
    const other = new DgentSaver({ store: viewed });
    const cp4 = { ...checkpoint(uuid6(4), { big, small: 2 }), channel_versions: { big: 1, small: 2 } };
    const d = await other.put(cfg("v", "", cp3.id), cp4, meta(), {});
    expect(calls.get).toBe(1);
    const cp5 = { ...checkpoint(uuid6(5), { big, small: 2 }), channel_versions: { big: 1, small: 2 } };
    await other.put(d, cp5, meta(), {});
    expect(calls.get).toBe(1);
    expect((await saver.getTuple(cfg("v")))?.checkpoint.channel_values).toEqual({ big, small: 2 });
    expect((await store.get(saver.layout.checkpoint("v", "", cp5.id)))?.content.byteLength).toBeLessThan(1000);
    // A version the parent did not hold, not in newVersions: nothing was stored under it.
    const cp6 = { ...checkpoint(uuid6(6), { big, small: 2 }), channel_versions: { big: 1, small: 3 } };
    const f = await saver.put(cfg("v", "", cp5.id), cp6, meta(), {});
    expect((await saver.getTuple(f))?.checkpoint.channel_values).toEqual({ big });
  });

  it("a thread written with every value apart (the layout of earlier versions) reads, and continues with values in the checkpoints", async () => {
    const store = memory();
    const old = new DgentSaver({ store, inlineLimit: 0 });
    let config = cfg("old");
    const versions: Record<string, number> = {};
    for (let i = 0; i < 6; i++) {
      const writer = i < 3 ? old : new DgentSaver({ store });
      const changed: Record<string, number> = i % 2 === 0 ? { a: i + 1 } : { b: i + 1 };
      Object.assign(versions, changed);
      const values = { a: `a${versions.a}`, ...(versions.b !== undefined ? { b: `b${versions.b}` } : {}) };
      const cp = { ...checkpoint(uuid6(i), values), channel_versions: { ...versions } };
      config = (await writer.put(config, cp, meta({ step: i }), changed)) as typeof config;
      await writer.putWrites(config, [["a", i]], "task");
    }
    const fresh = new DgentSaver({ store });
    const listed = await all(fresh.list(cfg("old")));
    expect(listed.map((t) => t.checkpoint.channel_values)).toEqual([
      { a: "a5", b: "b6" },
      { a: "a5", b: "b4" },
      { a: "a3", b: "b4" },
      { a: "a3", b: "b2" },
      { a: "a1", b: "b2" },
      { a: "a1" },
    ]);
    expect(listed.map((t) => t.pendingWrites)).toEqual(Array.from({ length: 6 }, (_, i) => [["task", "a", 5 - i]]));
    expect(await fresh.getTuple(cfg("old"))).toEqual(listed[0]);
    expect(await store.count({ prefix: `${fresh.layout.thread("old")}b/` })).toBe(3); // the three old puts' values
  });

  it("two branches giving a channel the same version keep their own values (values in the checkpoint)", async () => {
    const saver = new DgentSaver({ store: memory() });
    const one = await saver.put(cfg("c"), checkpoint(uuid6(1), { x: "one" }), meta(), { x: 1 });
    const two = await saver.put(cfg("c"), checkpoint(uuid6(2), { x: "two" }), meta(), { x: 1 });
    expect((await saver.getTuple(one))?.checkpoint.channel_values).toEqual({ x: "one" });
    expect((await saver.getTuple(two))?.checkpoint.channel_values).toEqual({ x: "two" });
  });

  it("a checkpoint put again with other content replaces it atomically where the tier has transactions, and is refused where it has not", async () => {
    const store = memory();
    const saver = new DgentSaver({ store });
    const id = uuid6(1);
    await saver.put(cfg("r"), checkpoint(id), meta({ note: "first" }), {});
    await saver.put(cfg("r"), checkpoint(id), meta({ note: "first" }), {}); // the same: a no-op
    await saver.put(cfg("r"), checkpoint(id), meta({ note: "second" }), {});
    expect((await saver.getTuple(cfg("r")))?.metadata).toMatchObject({ note: "second" });
    expect(await store.count({ prefix: saver.layout.checkpoints("r") })).toBe(1);

    const plain = new DgentSaver({ store: withoutTransactions(store) });
    await expect(plain.put(cfg("r"), checkpoint(id), meta({ note: "third" }), {})).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect((await saver.getTuple(cfg("r")))?.metadata).toMatchObject({ note: "second" });
  });

  it("a channel value stored apart under a version with other content is refused, naming the value", async () => {
    const saver = new DgentSaver({ store: memory(), inlineLimit: 0 });
    await saver.put(cfg("c"), checkpoint(uuid6(1), { x: "one" }), meta(), { x: 1 });
    await expect(saver.put(cfg("c"), checkpoint(uuid6(2), { x: "two" }), meta(), { x: 1 })).rejects.toMatchObject({
      code: "DGENT_CONFLICT",
      message: expect.stringContaining("channel value"),
    });
  });

  it("getNextVersion: numbers, each above the one before, and two branches from one version differ", () => {
    const saver = new DgentSaver({ store: memory() });
    let v: number | undefined;
    for (let i = 0; i < 100; i++) {
      const next = saver.getNextVersion(v);
      expect(typeof next).toBe("number");
      if (v !== undefined) expect(next).toBeGreaterThan(v);
      expect(Math.floor(next)).toBe(i + 1);
      v = next;
    }
    expect(new Set(Array.from({ length: 1000 }, () => saver.getNextVersion(7))).size).toBe(1000);
  });

  it("the `ref` mode finds the latest checkpoint by a ref moved in the put's transaction", async () => {
    const { store, calls, reset } = counted(memory());
    const saver = new DgentSaver({ store, latest: "ref" });
    let config = cfg("ref");
    for (let i = 0; i < 3; i++) config = (await saver.put(config, checkpoint(uuid6(i), { i }, i + 1), meta({ step: i }), { i: i + 1 })) as typeof config;
    expect((await store.refs.get(saver.layout.latestRef("ref", "")))?.version).toBe(3);
    reset();
    const latest = (await saver.getTuple(cfg("ref"))) as CheckpointTuple;
    expect(latest.config.configurable?.checkpoint_id).toBe(config.configurable.checkpoint_id);
    expect(latest.checkpoint.channel_values).toEqual({ i: 2 });
    expect(calls.query).toBe(1); // the writes; the checkpoint came by the ref
  });

  it("the ref only moves forward: an older checkpoint put late or again leaves it; a newer one moves it, on either kind of tier", async () => {
    for (const view of [(s: Store) => s, withoutTransactions]) {
      const store = memory();
      const saver = new DgentSaver({ store: view(store), latest: "ref" });
      const [old, mid, late] = [uuid6(1), uuid6(2), uuid6(3)];
      const midCheckpoint = checkpoint(mid);
      await saver.put(cfg("m"), midCheckpoint, meta({ step: 2 }), {});
      await saver.put(cfg("m"), checkpoint(old), meta({ step: 1 }), {});
      expect((await saver.getTuple(cfg("m")))?.checkpoint.id).toBe(mid);
      await saver.put(cfg("m"), midCheckpoint, meta({ step: 2 }), {});
      expect((await store.refs.get(saver.layout.latestRef("m", "")))?.version).toBe(1);
      await saver.put(cfg("m", "", old), checkpoint(late), meta({ step: 3 }), {});
      expect((await saver.getTuple(cfg("m")))?.checkpoint.id).toBe(late);
      await Promise.all([uuid6(4), uuid6(5), uuid6(6)].map((id, i) => saver.put(cfg("m"), checkpoint(id), meta({ step: 4 + i }), {})));
      expect((await saver.getTuple(cfg("m")))?.metadata?.step).toBe(6);
      await store.close();
    }
  });
});

describe("errors", () => {
  it("a call without thread_id or checkpoint_id fails with DGENT_INVALID_OPTIONS and writes nothing", async () => {
    const store = memory();
    const saver = new DgentSaver({ store });
    await expect(saver.put({ configurable: {} }, checkpoint(), meta(), {})).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", message: expect.stringContaining("thread_id") });
    await expect(saver.put({}, checkpoint(), meta(), {})).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(saver.putWrites(cfg("t"), [["a", 1]], "task")).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", message: expect.stringContaining("checkpoint_id") });
    expect(await store.count({})).toBe(0);
  });

  it("options are checked when the saver is made", () => {
    expect(() => new DgentSaver({ store: memory(), latest: "newest" as never })).toThrow(/latest/);
  });
});
