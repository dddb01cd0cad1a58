/**
 * The lattice laws and convergence of every CRDT type, on random executions: N replicas apply
 * random operations and exchange deltas or whole states in random orders (with duplicates).
 * Pure: no store is involved (crdt.test.ts and the process tests cover storage).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CausalContext, compareVV, mergeVV, type Dot, type VersionVector } from "./clock.js";
import {
  causalDelta,
  emptyState,
  gCounterDelta,
  gCounterKind,
  gSetDelta,
  gSetKind,
  joinState,
  lwwDelta,
  lwwKind,
  mvRegisterKind,
  orMapDelta,
  orMapKind,
  orSetKind,
  pnCounterDelta,
  pnCounterKind,
  sameState,
  stateToJson,
  type DeltaInput,
  type Json,
  type Kind,
  type State,
} from "./types.js";
import type { DotStore } from "./dotstore.js";

const RUNS = Number(process.env.DGENT_CRDT_RUNS ?? 60);
/** The longest execution (operations and deliveries) a case runs. */
const STEPS = Number(process.env.DGENT_CRDT_STEPS ?? 40);
const REPLICAS = ["a", "b", "c", "d"];

/** One step of an execution: replica `at` does operation `op`, or receives `from`'s state or its last delta. */
type Step = { kind: "op"; at: number; op: number; arg: number } | { kind: "sync"; at: number; from: number; whole: boolean };

const stepArb = (ops: number): fc.Arbitrary<Step> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("op" as const), at: fc.nat(REPLICAS.length - 1), op: fc.nat(ops - 1), arg: fc.integer({ min: 0, max: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("sync" as const), at: fc.nat(REPLICAS.length - 1), from: fc.nat(REPLICAS.length - 1), whole: fc.boolean() }) },
  );

/** A type under test: its kind and operations (op number, small argument) → delta. */
interface Subject<D> {
  readonly name: string;
  readonly kind: Kind<D, unknown>;
  readonly ops: number;
  delta(input: DeltaInput<D>, op: number, arg: number): State<D>;
}

/** A subject typed on its own payload, listed with the others. */
const subject = <D,>(x: Subject<D>): Subject<never> => x as unknown as Subject<never>;

const subjects: Array<Subject<never>> = [
  subject({ name: "G-Counter", kind: gCounterKind, ops: 1, delta: (i, _op, arg) => gCounterDelta(i, arg) }),
  subject({ name: "PN-Counter", kind: pnCounterKind, ops: 2, delta: (i, op, arg) => pnCounterDelta(i, op === 0 ? arg : -arg) }),
  subject({ name: "G-Set", kind: gSetKind, ops: 1, delta: (i, _op, arg) => gSetDelta(i, `e${arg}`) }),
  subject({ name: "OR-Set", kind: orSetKind, ops: 3, delta: (i, op, arg) => causalDelta("orset", i, op === 0 ? { op: "add", element: `e${arg}` } : op === 1 ? { op: "remove", element: `e${arg}` } : { op: "clear" }) }),
  subject({ name: "LWW-Register", kind: lwwKind, ops: 1, delta: (i, _op, arg) => lwwDelta(i, arg) }),
  subject({ name: "MV-Register", kind: mvRegisterKind, ops: 1, delta: (i, _op, arg) => causalDelta("mvregister", i, { op: "set", value: arg }) }),
  subject({ name: "OR-Map of counters", kind: orMapKind("counter"), ops: 2, delta: (i, op, arg) => orMapDelta("counter", i, `k${arg % 3}`, op === 0 ? { op: "increment", by: arg - 2 } : null) }),
  subject({ name: "OR-Map of OR-Sets", kind: orMapKind("orset"), ops: 3, delta: (i, op, arg) => orMapDelta("orset", i, `k${arg % 2}`, op === 0 ? { op: "add", element: arg } : op === 1 ? { op: "remove", element: arg } : null) }),
  subject({ name: "OR-Map of LWW", kind: orMapKind("lww"), ops: 2, delta: (i, op, arg) => orMapDelta("lww", i, `k${arg % 2}`, op === 0 ? { op: "set", value: arg } : null) }),
  subject({ name: "OR-Map of MV-Registers", kind: orMapKind("mvregister"), ops: 2, delta: (i, op, arg) => orMapDelta("mvregister", i, `k${arg % 2}`, op === 0 ? { op: "set", value: arg } : null) }),
];

interface Execution<D> {
  readonly states: State<D>[];
  /** Every delta made, in the order made. */
  readonly deltas: State<D>[];
  /** Per delta: the op, its argument, its dot and the context its replica had seen before it. */
  readonly log: Array<{ op: number; arg: number; dot: Dot; seen: CausalContext; at: number }>;
}

function execute<D>(s: Subject<D>, steps: readonly Step[]): Execution<D> {
  const states = REPLICAS.map(() => emptyState(s.kind));
  const last: Array<State<D> | null> = REPLICAS.map(() => null);
  const deltas: State<D>[] = [];
  const log: Execution<D>["log"] = [];
  let time = 1000;
  for (const step of steps) {
    const state = states[step.at] as State<D>;
    if (step.kind === "op") {
      const r = REPLICAS[step.at] as string;
      const dot: Dot = [r, state.ctx.max(r) + 1];
      // Clocks that sometimes stand still, so LWW ties are broken by replica and write number.
      time += step.arg % 2;
      const delta = s.delta({ state, own: state, dot, burned: [], now: time }, step.op, step.arg);
      log.push({ op: step.op, arg: step.arg, dot, seen: state.ctx.clone(), at: time });
      deltas.push(delta);
      last[step.at] = delta;
      states[step.at] = joinState(s.kind, state, delta);
    } else {
      const incoming = step.whole ? states[step.from] : last[step.from];
      if (incoming) states[step.at] = joinState(s.kind, state, incoming);
    }
  }
  return { states, deltas, log };
}

const joinAll = <D>(kind: Kind<D, unknown>, states: readonly State<D>[]) => states.reduce((acc, x) => joinState(kind, acc, x), emptyState(kind));

describe.each(subjects)("$name", (s) => {
  const steps = fc.array(stepArb(s.ops), { minLength: 1, maxLength: STEPS, size: "max" });

  it("join is commutative, associative and idempotent", () => {
    fc.assert(
      fc.property(steps, fc.nat(), (script, pick) => {
        const { states, deltas } = execute(s, script);
        const pool = [...states, ...deltas];
        const [a, b, c] = [0, 1, 2].map((i) => pool[(pick + i * 7) % pool.length] as State<never>) as [State<never>, State<never>, State<never>];
        const j = (x: State<never>, y: State<never>) => joinState(s.kind, x, y);
        expect(sameState(s.kind, j(a, b), j(b, a))).toBe(true);
        expect(sameState(s.kind, j(j(a, b), c), j(a, j(b, c)))).toBe(true);
        expect(sameState(s.kind, j(a, a), a)).toBe(true);
        expect(sameState(s.kind, j(j(a, b), b), j(a, b))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("every delivery order of the deltas (with duplicates) converges to the join of the replicas", () => {
    fc.assert(
      fc.property(steps, fc.array(fc.nat(), { maxLength: 200 }), fc.array(fc.nat(), { maxLength: 200 }), (script, orderA, orderB) => {
        const { states, deltas } = execute(s, script);
        const deliver = (order: readonly number[]) => {
          // A random permutation with random duplicates: every delta at least once.
          const seq = [...deltas.keys()];
          if (seq.length === 0) return emptyState(s.kind);
          for (const [i, n] of order.entries()) if (i % 3 === 0) seq.push(n % deltas.length);
          for (let i = seq.length - 1; i > 0; i--) {
            const k = (order[i % Math.max(1, order.length)] ?? i) % (i + 1);
            [seq[i], seq[k]] = [seq[k] as number, seq[i] as number];
          }
          return joinAll(s.kind, seq.map((i) => deltas[i] as State<never>));
        };
        const a = deliver(orderA);
        const b = deliver(orderB);
        expect(sameState(s.kind, a, b)).toBe(true);
        expect(sameState(s.kind, a, joinAll(s.kind, states))).toBe(true);
        // Replicas that exchange whole states end equal, whatever they saw before.
        const merged = states.map((st, i) => joinAll(s.kind, [st, ...states.slice(i + 1), ...states.slice(0, i)]));
        for (const m of merged) expect(s.kind.value(m.data)).toEqual(s.kind.value(a.data));
      }),
      { numRuns: RUNS },
    );
  });
});

describe("semantics against a model", () => {
  const counted = (name: string) => subjects.find((x) => x.name === name) as Subject<never>;

  it("counters: the merged value is the sum of every increment (minus every decrement)", () => {
    for (const name of ["G-Counter", "PN-Counter"]) {
      const s = counted(name);
      fc.assert(
        fc.property(fc.array(stepArb(s.ops), { maxLength: 60, size: "max" }), (script) => {
          const { states, log } = execute(s, script);
          const expected = log.reduce((sum, e) => sum + (e.op === 0 ? e.arg : -e.arg), 0);
          expect(s.kind.value(joinAll(s.kind, states).data)).toBe(expected);
        }),
        { numRuns: RUNS },
      );
    }
  });

  it("OR-Set is add-wins: an element is in the merged set exactly when some add of it was seen by no remove (or clear)", () => {
    const s = counted("OR-Set");
    fc.assert(
      fc.property(fc.array(stepArb(s.ops), { maxLength: 60, size: "max" }), (script) => {
        const { states, log } = execute(s, script);
        const value = s.kind.value(joinAll(s.kind, states).data) as string[];
        const expected = new Set<string>();
        for (const add of log.filter((e) => e.op === 0)) {
          const el = `e${add.arg}`;
          // Seen by a remove/clear of it, or replaced by a later add of it that saw it (which then stands in for it).
          const removed = log.some((e) => (e.op === 2 || (e.op === 1 && `e${e.arg}` === el)) && e.seen.has(add.dot));
          const replaced = log.some((e) => e.op === 0 && `e${e.arg}` === el && e.seen.has(add.dot));
          if (!removed && !replaced) expected.add(el);
        }
        expect(value).toEqual([...expected].sort());
      }),
      { numRuns: RUNS },
    );
  });

  it("OR-Set: a remove concurrent with an add leaves the element in", () => {
    const s = counted("OR-Set") as unknown as Subject<DotStore>;
    const [a, b] = [emptyState(orSetKind), emptyState(orSetKind)];
    const add1 = s.delta({ state: a, own: a, dot: ["a", 1], burned: [], now: 1 }, 0, 1);
    const a1 = joinState(orSetKind, a, add1);
    const b1 = joinState(orSetKind, b, add1); // b has seen the first add
    const remove = s.delta({ state: b1, own: b1, dot: ["b", 1], burned: [], now: 2 }, 1, 1);
    const add2 = s.delta({ state: a1, own: a1, dot: ["a", 2], burned: [], now: 2 }, 0, 1); // concurrent with the remove
    for (const order of [[add1, remove, add2], [add2, remove, add1], [remove, add2, add1]]) {
      expect(orSetKind.value(joinAll(orSetKind, order).data)).toEqual(["e1"]);
    }
    expect(orSetKind.value(joinAll(orSetKind, [add1, remove]).data)).toEqual([]);
  });

  it("MV-Register surfaces exactly the writes no other write has seen; LWW keeps the latest (time, replica, write)", () => {
    const mv = counted("MV-Register");
    const lww = counted("LWW-Register");
    fc.assert(
      fc.property(fc.array(stepArb(1), { minLength: 1, maxLength: 50, size: "max" }), (script) => {
        const m = execute(mv, script);
        const expected = m.log.filter((w) => !m.log.some((o) => o.seen.has(w.dot))).sort((x, y) => (`${x.dot[0]}:${x.dot[1]}` < `${y.dot[0]}:${y.dot[1]}` ? -1 : 1)).map((w) => w.arg);
        expect(mv.kind.value(joinAll(mv.kind, m.states).data)).toEqual(expected);
        const l = execute(lww, script);
        const value = lww.kind.value(joinAll(lww.kind, l.states).data);
        const data = stateToJson(lww.kind, joinAll(lww.kind, l.states)).data as { at: number; r: string; n: number; v: Json } | null;
        if (l.log.length === 0) expect(value).toBeUndefined();
        else {
          // No write beats the winner, and every write the winner's replica had seen is older.
          for (const w of l.log) {
            const beats = w.at > data!.at || (w.at === data!.at && (w.dot[0] > data!.r || (w.dot[0] === data!.r && w.dot[1] > data!.n)));
            expect(beats).toBe(false);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("OR-Map: deleting a key removes what the deleter saw; a concurrent write under it survives", () => {
    const k = orMapKind("orset");
    const a0 = emptyState(k);
    const add = orMapDelta("orset", { state: a0, own: a0, dot: ["a", 1], burned: [], now: 1 }, "agent-1", { op: "add", element: "search" });
    const a1 = joinState(k, a0, add);
    const del = orMapDelta("orset", { state: a1, own: a1, dot: ["b", 1], burned: [], now: 2 }, "agent-1", null);
    const concurrent = orMapDelta("orset", { state: a1, own: a1, dot: ["a", 2], burned: [], now: 2 }, "agent-1", { op: "add", element: "code" });
    expect(k.value(joinAll(k, [add, del]).data)).toEqual({});
    expect(k.value(joinAll(k, [concurrent, del, add]).data)).toEqual({ "agent-1": ["code"] });
    // No resurrection: the deleted add, delivered again after the delete, stays deleted.
    expect(k.value(joinAll(k, [add, del, add]).data)).toEqual({});
  });

  it("a write that failed (its dot burned) is covered by the replica's next write, so it never counts", () => {
    const s0 = emptyState(gCounterKind);
    const ok = gCounterDelta({ state: s0, own: s0, dot: ["a", 1], burned: [], now: 1 }, 5);
    const s1 = joinState(gCounterKind, s0, ok);
    const failed = gCounterDelta({ state: s1, own: s1, dot: ["a", 2], burned: [], now: 1 }, 100); // its put "failed" but landed
    const next = gCounterDelta({ state: s1, own: s1, dot: ["a", 3], burned: [["a", 2]], now: 1 }, 1);
    for (const order of [[ok, failed, next], [next, failed, ok], [failed, ok, next]]) expect(gCounterKind.value(joinAll(gCounterKind, order).data)).toBe(6);
    const set0 = emptyState(orSetKind);
    const failedAdd = causalDelta("orset", { state: set0, own: set0, dot: ["a", 1], burned: [], now: 1 }, { op: "add", element: "x" });
    const nextAdd = causalDelta("orset", { state: set0, own: set0, dot: ["a", 2], burned: [["a", 1]], now: 1 }, { op: "add", element: "y" });
    expect(orSetKind.value(joinAll(orSetKind, [failedAdd, nextAdd]).data)).toEqual(["y"]);
  });
});

describe("version vectors and causal contexts", () => {
  const vvArb = fc.dictionary(fc.constantFrom("a", "b", "c"), fc.nat(5)) as fc.Arbitrary<VersionVector>;
  const dotsArb = fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.integer({ min: 1, max: 12 })), { maxLength: 30 }) as fc.Arbitrary<Dot[]>;
  const flip = { before: "after", after: "before", equal: "equal", concurrent: "concurrent" } as const;

  it("compare is antisymmetric, merge is an upper bound, and comparison agrees with the entries", () => {
    fc.assert(
      fc.property(vvArb, vvArb, (a, b) => {
        const o = compareVV(a, b);
        expect(compareVV(b, a)).toBe(flip[o]);
        const m = mergeVV(a, b);
        expect(["after", "equal"]).toContain(compareVV(m, a));
        expect(["after", "equal"]).toContain(compareVV(m, b));
        expect(compareVV(mergeVV(a, b), mergeVV(b, a))).toBe("equal");
        const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
        const le = [...keys].every((k) => (a[k] ?? 0) <= (b[k] ?? 0));
        const ge = [...keys].every((k) => (a[k] ?? 0) >= (b[k] ?? 0));
        expect(o).toBe(le && ge ? "equal" : le ? "before" : ge ? "after" : "concurrent");
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it("a causal context holds exactly the dots added, compactly, and compares as sets", () => {
    fc.assert(
      fc.property(dotsArb, dotsArb, (xs, ys) => {
        const key = (d: Dot) => `${d[0]}:${d[1]}`;
        const a = CausalContext.of(xs);
        const b = CausalContext.of(ys);
        const setA = new Set(xs.map(key));
        const setB = new Set(ys.map(key));
        expect(new Set([...a.dots()].map(key))).toEqual(setA);
        const u = a.clone().join(b);
        expect(new Set([...u.dots()].map(key))).toEqual(new Set([...setA, ...setB]));
        expect(CausalContext.fromJson(u.toJson()).compare(u)).toBe("equal");
        const sub = [...setA].every((d) => setB.has(d));
        const sup = [...setB].every((d) => setA.has(d));
        expect(a.compare(b)).toBe(sub && sup ? "equal" : sub ? "before" : sup ? "after" : "concurrent");
        // Compact: no cloud dot sits right after its replica's contiguous prefix.
        for (const [r, ns] of Object.entries(u.toJson().cloud)) expect(ns).not.toContain((u.versionVector()[r] ?? 0) + 1);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});
