import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Store } from "../../compose/index.js";
import { liftLogic } from "../state/index.js";
import { boundedHistory } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-history-"));
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const makers: Record<string, { store: () => Store; runs: number }> = {
  memory: { store: () => createStore({ tiers: [memoryAdapter()] }), runs: 100 },
  sqlite: { store: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `h-${Math.random().toString(36).slice(2)}.db`) })] }), runs: 20 },
};

interface Doc {
  text: string;
  rev: number;
}

describe.each(Object.keys(makers))("bounded history on %s", (tier) => {
  const { store: make, runs } = makers[tier]!;
  const store = make();
  stores.push(store);
  let n = 0;
  const key = () => `doc-${++n}`;

  it("keeps the last N states; older ones are deleted as new ones are saved", async () => {
    const h = boundedHistory<Doc>(store, { key: key(), keep: 3, initial: { text: "", rev: 0 } });
    expect(await h.load()).toEqual({ text: "", rev: 0 });
    expect(await h.states()).toEqual([]);
    for (let rev = 1; rev <= 7; rev++) await h.save({ text: `draft ${rev}`, rev });
    expect(await h.load()).toEqual({ text: "draft 7", rev: 7 });
    const states = await h.states();
    expect(states.map((e) => e.state.rev)).toEqual([5, 6, 7]);
    expect(states.map((e) => e.depth)).toEqual([5, 6, 7]);
    expect(states[2]!.datum.causalParent).toBe(states[1]!.id);
    expect(await store.count({ prefix: `state/${h.key}/` })).toBe(3);
  });

  it("rolls back by moving the head ref back; the newer states are deleted with the move; saving goes on from there", async () => {
    const h = boundedHistory<Doc>(store, { key: key(), keep: 5, initial: { text: "", rev: 0 } });
    for (let rev = 1; rev <= 4; rev++) await h.save({ text: `v${rev}`, rev });
    const before = await store.refs.get(h.ref);
    const back = await h.rollback();
    expect(back?.state.rev).toBe(3);
    expect((await store.refs.get(h.ref))?.version).toBe(before!.version + 1);
    expect(await h.load()).toEqual({ text: "v3", rev: 3 });
    expect(await store.count({ prefix: `state/${h.key}/` })).toBe(3);
    const two = (await h.states())[1]!;
    expect((await h.rollback({ to: two.id }))?.id).toBe(two.id);
    const next = await h.save({ text: "v3'", rev: 3 });
    expect(next.datum.causalParent).toBe(two.id);
    expect((await h.states()).map((e) => e.state.text)).toEqual(["v1", "v2", "v3'"]);
    // Back to before the first save: the state is the initial one again.
    expect(await h.rollback(3)).toBeNull();
    expect(await h.load()).toEqual({ text: "", rev: 0 });
    expect(await h.head()).toBeNull();
    expect(await store.count({ prefix: `state/${h.key}/` })).toBe(0);
  });

  it("refuses to roll back past the kept states, or to a state that is not on the current chain", async () => {
    const h = boundedHistory<Doc>(store, { key: key(), keep: 2, initial: { text: "", rev: 0 } });
    await expect(h.rollback()).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    for (let rev = 1; rev <= 4; rev++) await h.save({ text: `v${rev}`, rev });
    await expect(h.rollback(2)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", details: { steps: 2, available: 1 } });
    const discarded = (await h.head())!;
    await h.rollback(1);
    await expect(h.rollback({ to: discarded.id })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(h.rollback({ to: "elsewhere/1" })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    expect((await h.load()).rev).toBe(3);
  });

  it("concurrent updates lose nothing, and the bound holds", async () => {
    const h = boundedHistory<{ n: number }>(store, { key: key(), keep: 10, initial: { n: 0 } });
    const others = Array.from({ length: 3 }, () => boundedHistory<{ n: number }>(store, { key: h.key, keep: 10, initial: { n: 0 } }));
    await Promise.all([h, ...others].flatMap((x) => Array.from({ length: 10 }, () => x.update((s) => ({ n: s.n + 1 })))));
    expect(await h.load()).toEqual({ n: 40 });
    expect((await h.states()).map((e) => e.state.n)).toEqual([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
    expect(await store.count({ prefix: `state/${h.key}/` })).toBe(10);
  });

  it("is the history of a StateFunctor agent's key too: roll the agent back", async () => {
    const k = key();
    const agent = liftLogic((x: number, s: { total: number }) => [s.total + x, { total: s.total + x }] as const, { store, key: k, initial: { total: 0 }, keep: 10 });
    await agent.invoke(5);
    await agent.invoke(7);
    await boundedHistory(store, { key: k, keep: 10, initial: { total: 0 } }).rollback();
    expect(await agent.invoke(1)).toBe(6);
  });

  it("matches a bounded stack under random saves and rollbacks (property)", async () => {
    type Op = { save: number } | { back: number };
    const op: fc.Arbitrary<Op> = fc.oneof({ weight: 3, arbitrary: fc.record({ save: fc.integer({ min: 0, max: 99 }) }) }, { weight: 1, arbitrary: fc.record({ back: fc.integer({ min: 0, max: 4 }) }) });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 14 }), async (keep, ops) => {
        const h = boundedHistory<number>(store, { key: key(), keep, initial: -1 });
        let model: Array<{ v: number; depth: number }> = [];
        for (const o of ops) {
          if ("save" in o) {
            model.push({ v: o.save, depth: (model.at(-1)?.depth ?? 0) + 1 });
            if (model.length > keep) model = model.slice(1);
            await h.save(o.save);
          } else if (o.back < model.length || (o.back === model.length && model[0]?.depth === 1)) {
            model = model.slice(0, model.length - o.back);
            if (o.back > 0 || model.length > 0) await h.rollback(o.back);
          } else {
            await expect(h.rollback(o.back)).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
          }
          expect((await h.states()).map((e) => [e.state, e.depth])).toEqual(model.map((m) => [m.v, m.depth]));
          expect(await h.load()).toBe(model.at(-1)?.v ?? -1);
        }
        expect(await store.count({ prefix: `state/${h.key}/` })).toBe(model.length);
      }),
      { numRuns: runs },
    );
  });
});
