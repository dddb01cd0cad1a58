import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Adapter, type Store } from "../../compose/index.js";
import { CODEC_KEY, jsonCodec } from "../codec/index.js";
import { conversation } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-conversation-"));
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

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

const makers: Record<string, { store: () => Store; runs: number }> = {
  memory: { store: () => createStore({ tiers: [memoryAdapter()] }), runs: 60 },
  sqlite: { store: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `c-${Math.random().toString(36).slice(2)}.db`) })] }), runs: 15 },
  "refs without transactions": { store: () => createStore({ tiers: [refsWithoutTransactions()] }), runs: 15 },
};

describe.each(Object.keys(makers))("conversation memory on %s", (tier) => {
  const { store: make, runs } = makers[tier]!;
  const store = make();
  stores.push(store);
  let n = 0;
  const id = () => `chat-${++n}`;

  it("turns follow each other by causal parent; the head is a ref; the last N turns come from the chain's tail", async () => {
    const chat = conversation(store, { id: id() });
    expect(await chat.head()).toBeNull();
    expect(await chat.lastTurns(5)).toEqual([]);
    const q = await chat.append("user", "What's the weather in Lisbon?");
    const a = await chat.append("assistant", "Sunny, 24°C.");
    const q2 = await chat.append("user", "And tomorrow?");
    expect(q.parent).toBeNull();
    expect(a.parent).toBe(q.id);
    expect(q2.parent).toBe(a.id);
    expect((await chat.head())?.id).toBe(q2.id);
    expect((await store.refs.get(chat.ref))?.target).toBe(q2.id);
    expect((await chat.lastTurns(2)).map((t) => [t.role, t.content])).toEqual([
      ["assistant", "Sunny, 24°C."],
      ["user", "And tomorrow?"],
    ]);
    expect((await chat.lastTurns(10)).map((t) => t.id)).toEqual([q.id, a.id, q2.id]);
    expect((await chat.path()).map((t) => t.id)).toEqual([q.id, a.id, q2.id]);
    expect(a.datum.metadata).toMatchObject({ role: "assistant", [CODEC_KEY]: "text" });
    expect((await chat.turns({ where: { role: "user" }, order: "oldest" })).items.map((t) => t.id)).toEqual([q.id, q2.id]);
  });

  it("regenerate makes a sibling branch, found through children; checkout switches branches; appends continue on the current one", async () => {
    const chat = conversation(store, { id: id() });
    const q = await chat.append("user", "Name a colour.");
    const a1 = await chat.append("assistant", "Blue.");
    const a2 = await chat.regenerate(a1.id, "Green.");
    expect(a2).toMatchObject({ role: "assistant", parent: q.id });
    expect(a2.datum.metadata.regenerates).toBe(a1.id);
    expect((await chat.branches(q.id)).map((t) => t.content)).toEqual(["Blue.", "Green."]);
    expect((await chat.siblings(a1.id)).map((t) => t.id)).toEqual([a1.id, a2.id]);
    expect((await chat.head())?.id).toBe(a2.id);
    const more = await chat.append("user", "Another?");
    expect(more.parent).toBe(a2.id);
    await chat.checkout(a1.id);
    const onFirst = await chat.append("user", "Why blue?");
    expect(onFirst.parent).toBe(a1.id);
    expect((await chat.lastTurns(3)).map((t) => t.content)).toEqual(["Name a colour.", "Blue.", "Why blue?"]);
    expect((await chat.path(more.id)).map((t) => t.content)).toEqual(["Name a colour.", "Green.", "Another?"]);
    // Editing an earlier message is an append after its parent: a new branch from there.
    const edited = await chat.append("user", "Name a fruit.", { after: null });
    expect(edited.parent).toBeNull();
    expect((await chat.branches()).map((t) => t.content)).toEqual(["Name a colour.", "Name a fruit."]);
    expect((await chat.regenerate(q.id, "Name a shape.")).parent).toBeNull();
    expect(await chat.branches()).toHaveLength(3);
  });

  it("concurrent appends from several handles lose no turn: the head's chain holds every one of them", async () => {
    const name = id();
    const handles = Array.from({ length: 4 }, () => conversation(store, { id: name }));
    const made = await Promise.all(handles.flatMap((h, k) => Array.from({ length: 10 }, (_, i) => h.append("user", `${k}:${i}`))));
    const path = await handles[0]!.lastTurns(100);
    expect(path).toHaveLength(40);
    expect(new Set(path.map((t) => t.id))).toEqual(new Set(made.map((t) => t.id)));
    expect(path.every((t, i) => t.parent === (i === 0 ? null : path[i - 1]!.id))).toBe(true);
    expect((await handles[1]!.turns({ limit: 1000 })).items).toHaveLength(40);
  });

  it("structured turns with the JSON codec; clear deletes the conversation and no other", async () => {
    type Msg = { text: string; tools?: Array<{ name: string; args: Record<string, string> }> };
    const keep = conversation(store, { id: id() });
    await keep.append("user", "stays");
    const chat = conversation<Msg>(store, { id: id(), codec: jsonCodec<Msg>(), metadata: { session: "s-1" } });
    await chat.append("user", { text: "look it up" });
    const call = await chat.append("assistant", { text: "", tools: [{ name: "search", args: { q: "lisbon" } }] });
    expect((await chat.turn(call.id))?.content.tools?.[0]?.name).toBe("search");
    expect(call.datum.metadata).toMatchObject({ session: "s-1", role: "assistant", [CODEC_KEY]: "json" });
    expect(await chat.clear()).toBe(2);
    expect(await chat.head()).toBeNull();
    expect((await chat.turns()).items).toEqual([]);
    expect((await keep.lastTurns(1)).map((t) => t.content)).toEqual(["stays"]);
  });

  it("refuses turns of another conversation, empty roles, reserved tags and n < 1", async () => {
    const chat = conversation(store, { id: id() });
    const other = conversation(store, { id: id() });
    const foreign = await other.append("user", "elsewhere");
    await expect(chat.regenerate(foreign.id, "x")).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", details: { turn: foreign.id } });
    await expect(chat.checkout(foreign.id)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(chat.append("user", "x", { after: foreign.id })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(chat.append("", "x")).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(chat.lastTurns(0)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    expect(await chat.turn(foreign.id)).toBeNull();
    expect(() => conversation(store, { id: "x", metadata: { role: "user" } })).toThrow(/set by the conversation/);
    expect(() => conversation(store, { id: "" })).toThrow(/non-empty/);
  });

  it("matches a tree model under random appends, regenerations and checkouts (property)", async () => {
    type Op = { append: string } | { regenerate: number } | { checkout: number } | { edit: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ append: fc.constantFrom("user", "assistant") }) },
      { weight: 2, arbitrary: fc.record({ regenerate: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ checkout: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ edit: fc.nat() }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), fc.integer({ min: 1, max: 4 }), async (ops, tail) => {
        const chat = conversation(store, { id: id() });
        const parent = new Map<string, string | null>();
        const order: string[] = [];
        let head: string | null = null;
        const pathTo = (t: string | null): string[] => (t === null ? [] : [...pathTo(parent.get(t) ?? null), t]);
        for (const [i, o] of ops.entries()) {
          const pick = (k: number) => order[k % order.length] as string;
          let made: string | null = null;
          if ("append" in o) {
            made = (await chat.append(o.append, `t${i}`)).id;
            parent.set(made, head);
          } else if (order.length === 0) continue;
          else if ("regenerate" in o) {
            const old = pick(o.regenerate);
            made = (await chat.regenerate(old, `r${i}`)).id;
            parent.set(made, parent.get(old) ?? null);
          } else if ("edit" in o) {
            const after = parent.get(pick(o.edit)) ?? null;
            made = (await chat.append("user", `e${i}`, { after })).id;
            parent.set(made, after);
          } else {
            head = (await chat.checkout(pick(o.checkout))).id;
          }
          if (made) {
            order.push(made);
            head = made;
          }
          expect((await chat.head())?.id ?? null).toBe(head);
          expect((await chat.lastTurns(tail)).map((t) => t.id)).toEqual(pathTo(head).slice(-tail));
        }
        for (const t of [null, ...order]) {
          const expected = order.filter((c) => (parent.get(c) ?? null) === t);
          expect((await chat.branches(t)).map((x) => x.id)).toEqual(expected);
        }
      }),
      { numRuns: runs },
    );
  });
});
