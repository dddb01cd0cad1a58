import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, makeDatum, type Adapter, type Store } from "../../compose/index.js";
import { CODEC_KEY, textCodec } from "../codec/index.js";
import { liftLogic, type Logic } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A memory tier with refs but no transactions, as S3 and GCS are. */
function refsWithoutTransactions(): Adapter {
  const inner = memoryAdapter() as Required<Adapter>;
  return {
    name: "refs-only",
    rank: inner.rank,
    capabilities: { ...inner.capabilities, transactions: false },
    open: (c) => inner.open(c),
    close: () => inner.close(),
    put: (d) => inner.put(d),
    get: (id) => inner.get(id),
    delete: (id) => inner.delete(id),
    list: (o) => inner.list(o),
    getRef: (n) => inner.getRef(n),
    listRefs: (p) => inner.listRefs(p),
    reflog: (n, l) => inner.reflog(n, l),
    setRef: (n, t, e, m) => inner.setRef(n, t, e, m),
    deleteRef: (n, e, m) => inner.deleteRef(n, e, m),
  };
}

/** A tier written against the five methods only, as a third party's would be. */
function fiveMethods(): Adapter {
  const inner = memoryAdapter();
  const { refs: _r, transactions: _t, ...capabilities } = inner.capabilities;
  return { name: "plain", rank: 5, capabilities, open: (c) => inner.open(c), close: () => inner.close(), put: (d) => inner.put(d), get: (id) => inner.get(id), delete: (id) => inner.delete(id), list: (o) => inner.list(o) };
}

const tiers: Record<string, () => Store> = {
  memory: () => createStore({ tiers: [memoryAdapter()] }),
  sqlite: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `${Math.random().toString(36).slice(2)}.db`) })] }),
  "refs without transactions": () => createStore({ tiers: [refsWithoutTransactions()] }),
};

interface Counter {
  count: number;
}
const counter: Logic<string, string, Counter> = (input, state) => [`${input} #${state.count + 1}`, { count: state.count + 1 }];

describe.each(Object.keys(tiers))("StateFunctor on %s", (tier) => {
  const open = async () => {
    const store = tiers[tier]!();
    await store.open();
    return store;
  };

  it("threads the state through steps, each stored as a child of the one before, the head moved by its ref", async () => {
    const store = await open();
    const agent = liftLogic(counter, { store, key: "counter", initial: { count: 0 } });
    expect(await agent.state()).toEqual({ count: 0 });
    expect(await agent.head()).toBeNull();
    expect(await agent.invoke("tick")).toBe("tick #1");
    expect(await agent.invoke("tock")).toBe("tock #2");
    const step = await agent.step("tick");
    expect(step).toMatchObject({ output: "tick #3", state: { count: 3 }, attempts: 1 });
    expect(step.entry?.depth).toBe(3);

    const history = await agent.history();
    expect(history.map((e) => e.state)).toEqual([{ count: 1 }, { count: 2 }, { count: 3 }]);
    expect(history.map((e) => e.datum.causalParent)).toEqual([null, history[0]!.id, history[1]!.id]);
    expect(history.every((e) => e.id.startsWith("state/counter/") && e.datum.metadata[CODEC_KEY] === "json")).toBe(true);
    expect((await store.refs.get("state/counter/head"))?.target).toBe(history[2]!.id);
    expect((await agent.history({ tail: 2 })).map((e) => e.state.count)).toEqual([2, 3]);

    // Another agent object (another process, after a restart) sees the same state.
    const again = liftLogic(counter, { store, key: "counter", initial: { count: 0 } });
    expect(await again.invoke("after restart")).toBe("after restart #4");
    expect(await agent.invoke("stale cache")).toBe("stale cache #5");
    expect((await agent.history()).map((e) => e.state.count)).toEqual([1, 2, 3, 4, 5]);
    await store.close();
  });

  it("many agent objects stepping one key at once lose no update; in one process their steps queue instead of racing", async () => {
    const store = await open();
    let runs = 0;
    const counting: Logic<number, number, Counter> = (_input, state) => {
      runs++;
      return [state.count + 1, { count: state.count + 1 }];
    };
    const agents = Array.from({ length: 4 }, () => liftLogic(counting, { store, key: "shared", initial: { count: 0 } }));
    const outputs = await Promise.all(agents.flatMap((agent) => Array.from({ length: 25 }, (_, i) => agent.invoke(i))));
    expect(outputs.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await agents[0]!.state()).toEqual({ count: 100 });
    const history = await agents[1]!.history();
    expect(history.map((e) => e.state.count)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(runs).toBe(100);
    // No stray datums from lost races (the tier without transactions deletes the put that lost).
    expect(await store.count({ prefix: "state/shared/" })).toBe(100);
    await store.close();
  });

  it("a step that lost the race to another writer runs its logic again on the new head", async () => {
    const store = await open();
    // The other writer: a second store would be another process; here it moves the ref by hand.
    const other = liftLogic(counter, { store, key: "raced", initial: { count: 0 } });
    await other.invoke("first");
    const seen: number[] = [];
    let interfered = false;
    const agent = liftLogic<string, string, Counter>(
      async (input, state) => {
        seen.push(state.count);
        if (!interfered) {
          interfered = true;
          const d = await store.put(makeDatum({ id: "state/raced/000000000002-other", content: '{"count":41}', causalParent: (await store.refs.get("state/raced/head"))!.target, metadata: { [CODEC_KEY]: "json" } }));
          await store.refs.set("state/raced/head", d);
        }
        return counter(input, state);
      },
      { store, key: "raced", initial: { count: 0 } },
    );
    const step = await agent.step("mine");
    expect(seen).toEqual([1, 41]);
    expect(step).toMatchObject({ output: "mine #42", attempts: 2 });
    expect((await agent.history()).map((e) => e.state.count)).toEqual([1, 41, 42]);
    await store.close();
  });

  it("a step that leaves the state as it was writes nothing; with a stale cache it is checked against the stored head", async () => {
    const store = await open();
    const read: Logic<null, number, Counter> = (_i, state) => [state.count, state];
    const reader = liftLogic(read, { store, key: "k", initial: { count: 0 } });
    const writer = liftLogic(counter, { store, key: "k", initial: { count: 0 } });
    expect(await reader.step(null)).toMatchObject({ output: 0, entry: null });
    expect(await store.refs.get("state/k/head")).toBeNull();
    await writer.invoke("x");
    expect(await reader.invoke(null)).toBe(1); // its cached head was the initial state
    expect(await store.count({ prefix: "state/k/" })).toBe(1);
    await store.close();
  });

  it("keep: only the newest states stay, each write deleting what falls out in its own transaction", async () => {
    const store = await open();
    const agent = liftLogic(counter, { store, key: "bounded", initial: { count: 0 }, keep: 3 });
    for (let i = 0; i < 10; i++) await agent.invoke("t");
    expect((await agent.history()).map((e) => e.state.count)).toEqual([8, 9, 10]);
    expect(await store.count({ prefix: "state/bounded/" })).toBe(3);
    await store.close();
  });

  it("a failing logic changes nothing; the error is the caller's", async () => {
    const store = await open();
    const agent = liftLogic<string, string, Counter>(
      (input, state) => {
        if (input === "boom") throw new Error("the logic failed");
        return counter(input, state);
      },
      { store, key: "fails", initial: { count: 0 } },
    );
    await agent.invoke("ok");
    await expect(agent.invoke("boom")).rejects.toThrow("the logic failed");
    expect(await agent.state()).toEqual({ count: 1 });
    // A new state that does not round-trip through the codec is refused before anything is written.
    const bad = liftLogic<null, null, unknown>((_i, _s) => [null, { at: new Date(0) }], { store, key: "bad", initial: {} });
    await expect(bad.invoke(null)).rejects.toMatchObject({ code: "DGENT_INVALID_CONTENT", message: expect.stringMatching(/Date at \$\.at/) });
    expect(await store.count({ prefix: "state/bad/" })).toBe(0);
    await store.close();
  });

  it("reset forgets the key's states (and only its own: keys holding / are escaped)", async () => {
    const store = await open();
    const a = liftLogic(counter, { store, key: "a", initial: { count: 0 } });
    const ab = liftLogic(counter, { store, key: "a/b", initial: { count: 0 } });
    await a.invoke("x");
    await a.invoke("x");
    await ab.invoke("y");
    expect(ab.ref).toBe("state/a%2Fb/head");
    expect(await a.reset()).toBe(2);
    expect(await a.state()).toEqual({ count: 0 });
    expect(await a.invoke("again")).toBe("again #1");
    expect(await ab.state()).toEqual({ count: 1 });
    await store.close();
  });
});

describe("StateFunctor: options and failures", () => {
  it("a tier without refs is refused with the store's DGENT_UNSUPPORTED", async () => {
    const store = createStore({ tiers: [fiveMethods()] });
    const agent = liftLogic(counter, { store, key: "c", initial: { count: 0 } });
    await expect(agent.invoke("x")).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED", details: { capability: "refs" } });
    await store.close();
  });

  it("checks options when the agent is made", () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    expect(() => liftLogic(counter, { store, key: "", initial: { count: 0 } })).toThrow(/key must be a non-empty string/);
    expect(() => liftLogic(counter, { store, key: "k", initial: { count: 0 }, keep: 0 })).toThrow(/keep must be an integer ≥ 1/);
    expect(() => liftLogic(counter, { store, key: "k", initial: { count: Number.NaN } })).toThrow(/NaN at \$\.count/);
    expect(() => liftLogic(counter, { store, key: "k\n", initial: { count: 0 } })).toThrow(/control character/);
    expect(() => liftLogic(counter, { store, key: "k", initial: { count: 0 }, metadata: { [CODEC_KEY]: "x" } })).toThrow(/reserved/);
  });

  it("a head pointing at a missing datum is a coded error naming the key; another codec's head names the datum and the codec", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const agent = liftLogic(counter, { store, key: "c", initial: { count: 0 } });
    await agent.invoke("x");
    const head = await agent.head();
    await store.delete(head!.id);
    await expect(agent.state()).rejects.toMatchObject({ code: "DGENT_BACKEND_ERROR", details: { key: "c", target: head!.id } });
    const words = liftLogic<string, string, string>((i, s) => [s, s + i], { store, key: "w", initial: "", codec: textCodec });
    await words.invoke("a");
    const stray = makeDatum({ id: "state/w/000000000002-x", content: "{}", metadata: { [CODEC_KEY]: "json" } });
    await store.put(stray);
    await store.refs.set("state/w/head", stray.id);
    await expect(words.state()).rejects.toMatchObject({ code: "DGENT_INVALID_CONTENT", details: { id: stray.id, codec: "text", recorded: "json" } });
    await store.close();
  });

  it("gives up after retry.attempts with DGENT_REF_CONFLICT and the count", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    let other = 0;
    const agent = liftLogic<null, null, Counter>(
      async (_i, state) => {
        // Another writer moves the head while this logic runs, every time.
        await store.refs.set("state/c/head", (await store.put(makeDatum({ id: `state/c/${String(++other).padStart(12, "0")}-o`, content: "{\"count\":0}", metadata: { [CODEC_KEY]: "json" } }))));
        return [null, { count: state.count + 1 }];
      },
      { store, key: "c", initial: { count: 0 }, retry: { attempts: 3, backoffMs: { min: 0, max: 0 } } },
    );
    await expect(agent.invoke(null)).rejects.toMatchObject({ code: "DGENT_REF_CONFLICT", details: { attempts: 3 } });
    await store.close();
  });
});
