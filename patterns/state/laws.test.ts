/**
 * The StateFunctor's laws, property-tested (fast-check) on memory and SQLite:
 * - identity: lifting the identity logic leaves the state unchanged (and writes nothing);
 * - composition: lifting `f` then `g` as one logic equals composing the lifts of `f` and `g` on
 *   one key, on every output and on the final state;
 * - the lift is the pure fold: a sequence of steps gives the outputs and final state of running
 *   the logic over the inputs in memory.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Store } from "../../compose/index.js";
import { composeAgents, composeLogic, identityLogic, liftLogic, type Logic } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-state-laws-"));
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const makers: Record<string, { store: () => Store; runs: number }> = {
  memory: { store: () => createStore({ tiers: [memoryAdapter()] }), runs: 100 },
  sqlite: { store: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `laws-${Math.random().toString(36).slice(2)}.db`) })] }), runs: 25 },
};

interface S {
  n: number;
  log: string[];
}

/** A family of logics, chosen by the generator: each reads and changes the state differently. */
type Spec = { kind: "add"; k: number } | { kind: "mul"; k: number } | { kind: "push"; tag: string } | { kind: "read" } | { kind: "reset" };
const spec: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ kind: fc.constant("add" as const), k: fc.integer({ min: -5, max: 5 }) }),
  fc.record({ kind: fc.constant("mul" as const), k: fc.integer({ min: -2, max: 3 }) }),
  fc.record({ kind: fc.constant("push" as const), tag: fc.string({ maxLength: 3 }) }),
  fc.constant({ kind: "read" as const }),
  fc.constant({ kind: "reset" as const }),
);

function logicOf(s: Spec): Logic<number, number, S> {
  switch (s.kind) {
    case "add":
      return (x, st) => [x + st.n, { ...st, n: st.n + s.k * x }];
    case "mul":
      // `+ 0` turns -0 into 0: JSON (the state's codec) has no -0, so a stored state could not equal it.
      return async (x, st) => [x * s.k + 0, { n: st.n * s.k + x + 0, log: st.log }];
    case "push":
      return (x, st) => [st.log.length, { n: st.n, log: [...st.log, `${s.tag}${x}`].slice(-4) }];
    case "read":
      return (x, st) => [st.n - x, st];
    case "reset":
      return (x, st) => [x, { n: 0, log: st.n > 10 ? [] : st.log }];
  }
}

/** The reference: the logic run over the inputs in memory. */
async function fold<I, O, St>(logic: Logic<I, O, St>, initial: St, inputs: readonly I[]): Promise<{ outputs: O[]; state: St }> {
  let state = structuredClone(initial);
  const outputs: O[] = [];
  for (const input of inputs) {
    const [o, next] = await logic(input, state);
    outputs.push(o);
    state = next;
  }
  return { outputs, state };
}

const initial = fc.record({ n: fc.integer({ min: -20, max: 20 }), log: fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }) });
const inputs = fc.array(fc.integer({ min: -10, max: 10 }), { minLength: 1, maxLength: 8 });

describe.each(Object.keys(makers))("StateFunctor laws on %s", (tier) => {
  const { store: make, runs } = makers[tier]!;
  const store = make();
  stores.push(store);
  let keys = 0;
  const key = () => `law-${++keys}`;

  it("identity: the lifted identity returns its inputs and leaves any state, stored or initial, unchanged, writing nothing", async () => {
    await fc.assert(
      fc.asyncProperty(initial, fc.array(spec, { maxLength: 3 }), inputs, async (init, before, xs) => {
        const k = key();
        // Some history first, so the identity runs over a stored state too.
        for (const s of before) await liftLogic(logicOf(s), { store, key: k, initial: init }).invoke(1);
        const id = liftLogic(identityLogic<S, number>(), { store, key: k, initial: init });
        const stateBefore = await id.state();
        const headBefore = await store.refs.get(id.ref);
        const outputs: number[] = [];
        for (const x of xs) outputs.push(await id.invoke(x));
        expect(outputs).toEqual(xs);
        expect(await id.state()).toEqual(stateBefore);
        expect(await store.refs.get(id.ref)).toEqual(headBefore);
      }),
      { numRuns: runs },
    );
  });

  it("composition: lift(f then g) = lift(f) then lift(g) on one key, on every output and the final state", async () => {
    await fc.assert(
      fc.asyncProperty(spec, spec, initial, inputs, async (fs, gs, init, xs) => {
        const f = logicOf(fs);
        const g = logicOf(gs);
        const whole = liftLogic(composeLogic(f, g), { store, key: key(), initial: init });
        const k = key();
        const parts = composeAgents(liftLogic(f, { store, key: k, initial: init }), liftLogic(g, { store, key: k, initial: init }));
        const left: number[] = [];
        const right: number[] = [];
        for (const x of xs) {
          left.push(await whole.invoke(x));
          right.push(await parts.invoke(x));
        }
        expect(right).toEqual(left);
        expect(await liftLogic(f, { store, key: k, initial: init }).state()).toEqual(await whole.state());
      }),
      { numRuns: runs },
    );
  });

  it("a lifted logic is its pure fold: the same outputs and final state, and the history is the states it passed through", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 1, maxLength: 3 }), initial, inputs, async (specs, init, xs) => {
        const logic = specs.map(logicOf).reduce((a, b) => composeLogic(a, b));
        const agent = liftLogic(logic, { store, key: key(), initial: init });
        const outputs: number[] = [];
        const states: S[] = [];
        for (const x of xs) {
          const step = await agent.step(x);
          outputs.push(step.output);
          if (step.entry) states.push(step.entry.state);
        }
        const expected = await fold(logic, init, xs);
        expect(outputs).toEqual(expected.outputs);
        expect(await agent.state()).toEqual(expected.state);
        expect((await agent.history()).map((e) => e.state)).toEqual(states);
      }),
      { numRuns: runs },
    );
  });
});
