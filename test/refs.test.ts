import { describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, definePlugin, dgentError, makeDatum, type Adapter } from "../core/index.js";
import { promoteRefs } from "../core/store-refs.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** A memory tier under another name and rank that can be switched off (every call then fails as an outage would). */
function switchable(name: string, rank: number) {
  const inner = memoryAdapter();
  const control = { down: false };
  const guard = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    if (control.down) throw dgentError("DGENT_UNAVAILABLE", `${name} is down`, { unit: name });
    return fn(...args);
  };
  const a = inner as Required<Adapter>;
  const adapter: Adapter = {
    name,
    rank,
    capabilities: { ...inner.capabilities, persistent: true },
    open: guard((c) => inner.open(c)),
    close: () => inner.close(),
    put: guard((d) => inner.put(d)),
    get: guard((id) => inner.get(id)),
    delete: guard((id) => inner.delete(id)),
    list: guard((o) => inner.list(o)),
    scan: () => a.scan(),
    probe: async () => !control.down,
    getRef: guard((n) => a.getRef(n)),
    listRefs: guard((p) => a.listRefs(p)),
    reflog: guard((n, l) => a.reflog(n, l)),
    setRef: guard((n, t, e, m) => a.setRef(n, t, e, m)),
    deleteRef: guard((n, e, m) => a.deleteRef(n, e, m)),
    commit: guard((ops, m) => a.commit(ops, m)),
  };
  return { adapter, control };
}

/** A tier written against the five methods only, as a third party's would be. */
function fiveMethods(): Adapter {
  const inner = memoryAdapter();
  const { refs: _r, transactions: _t, ...capabilities } = inner.capabilities;
  return { name: "plain", rank: 5, capabilities, open: (c) => inner.open(c), close: () => inner.close(), put: (d) => inner.put(d), get: (id) => inner.get(id), delete: (id) => inner.delete(id), list: (o) => inner.list(o) };
}

describe("refs and transactions through the store", () => {
  it("a tier without the capability is refused with DGENT_UNSUPPORTED naming the tier and the capability; its five methods still work", async () => {
    const store = createStore({ tiers: [fiveMethods()] });
    await expect(store.refs.get("x")).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED", details: { tier: "plain", capability: "refs" } });
    await expect(store.transaction([])).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED", details: { tier: "plain", capability: "transactions" } });
    const d = makeDatum({ content: "still a store" });
    await store.put(d);
    expect((await store.get(d.id))?.id).toBe(d.id);
    await store.close();
  });

  it("while the tier refs live on is down, moves fail with a retryable DGENT_UNAVAILABLE instead of forking below; they work again when it returns", async () => {
    const top = switchable("top", 30);
    const store = createStore({ tiers: [top.adapter, memoryAdapter()], upgrader: false, probeBackoffMs: { min: 1, max: 1 } });
    await store.open();
    const d = makeDatum({ content: "target" });
    await store.put(d);
    await store.refs.set("head", d.id);
    top.control.down = true;
    const e = makeDatum({ content: "written during the outage" });
    await store.put(e); // lands on memory, loudly
    await expect(store.refs.set("head", e.id, { expect: { version: 1 } })).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    await expect(store.transaction([{ op: "setRef", name: "head", target: e.id }])).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE" });
    top.control.down = false;
    await expect.poll(async () => (await store.backend()).degraded, { timeout: 300_000 }).toBe(false);
    expect((await store.refs.set("head", e.id, { expect: { version: 1 } })).version).toBe(2);
    await store.close();
  });

  it("update gives up after its attempts with DGENT_REF_CONFLICT and the count; returning null leaves the ref", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const a = makeDatum({ id: "a", content: "a" });
    await store.put(a);
    await store.refs.set("r", a.id);
    let calls = 0;
    // Another writer moves the ref between every read and commit.
    const update = store.refs.update(
      "r",
      async () => {
        calls++;
        await store.refs.set("r", a.id);
        return makeDatum({ content: `try ${calls}` });
      },
      { attempts: 3, backoffMs: { min: 0, max: 0 } },
    );
    await expect(update).rejects.toMatchObject({ code: "DGENT_REF_CONFLICT", details: { attempts: 3 } });
    expect(calls).toBe(3);
    const before = await store.refs.get("r");
    expect(await store.refs.update("r", () => null)).toEqual(before);
    await store.close();
  });

  it("reflogs say who moved a ref: the store's actor, by default host:pid", async () => {
    const named = createStore({ tiers: [memoryAdapter()], actor: "agent-7" });
    const d = makeDatum({ content: "x" });
    await named.put(d);
    await named.refs.set("r", d.id);
    expect((await named.refs.log("r"))[0]?.by).toBe("agent-7");
    const plain = createStore({ tiers: [memoryAdapter()] });
    await plain.put(d);
    await plain.refs.set("r", d.id);
    expect((await plain.refs.log("r"))[0]?.by).toMatch(new RegExp(`:${process.pid}$`));
    await expect(plain.refs.log("r", 0)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
  });

  it("a transaction's puts go through beforePut and afterPut, its deletes through afterDelete", async () => {
    const seen: string[] = [];
    const stamp = definePlugin({
      name: "stamp",
      apply(api) {
        api.hooks.beforePut.tap("stamp", (d) => ({ ...d, metadata: { ...d.metadata, stamped: "yes" } }));
        api.hooks.afterPut.tap("stamp", (d) => void seen.push(`put ${d.id}`));
        api.hooks.afterDelete.tap("stamp", (id, existed) => void seen.push(`delete ${id} ${existed}`));
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [stamp] });
    const d = makeDatum({ id: "d", content: bytes("x") });
    await store.transaction(async (tx) => {
      expect(await tx.getRef("h")).toBeNull();
      tx.put(d).setRef("h", "d", { expect: { absent: true } }).delete("nothing");
    });
    expect((await store.get("d"))?.metadata).toEqual({ stamped: "yes" });
    expect(seen).toEqual(["put d", "delete nothing false"]);
    await store.close();
  });

  it("promotion moves refs up with their targets; a name the upper tier already holds stays as the upper tier has it, with a warning", async () => {
    const lower = memoryAdapter();
    const upper = memoryAdapter();
    await lower.open();
    await upper.open();
    const move = { by: "test", at: 1 };
    for (const id of ["a", "b"]) await lower.put(makeDatum({ id, content: id }));
    await lower.setRef?.("only-below", "a", undefined, move);
    await lower.setRef?.("both", "a", undefined, move);
    await upper.setRef?.("both", "b", undefined, move);
    const warnings: string[] = [];
    expect(await promoteRefs(lower, upper, move, (m) => void warnings.push(m))).toBe(1);
    expect((await upper.getRef?.("only-below"))?.target).toBe("a");
    expect((await upper.getRef?.("both"))?.target).toBe("b");
    expect(await lower.listRefs?.("")).toEqual([]);
    expect(warnings.join("\n")).toMatch(/both/);
  });
});

describe("refs follow their targets up the lattice", () => {
  it("store.upgrade() moves a lower tier's refs to the tier refs live on", async () => {
    const lower = memoryAdapter();
    await lower.open();
    const d = makeDatum({ content: "written when only the lower tier existed" });
    await lower.put(d);
    await lower.setRef?.("agent/plan", d.id, undefined, { by: "earlier", at: 1 });
    const top = switchable("top", 30);
    const store = createStore({ tiers: [top.adapter, lower], upgrader: false });
    await store.open();
    await store.upgrade();
    expect((await store.refs.get("agent/plan"))?.target).toBe(d.id);
    expect(await lower.listRefs?.("")).toEqual([]);
    expect((await store.get(d.id))?.id).toBe(d.id);
    await store.close();
  });
});
