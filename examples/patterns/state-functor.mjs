// The StateFunctor: a pure step function lifted into a stateful agent whose state is stored after
// every step, chained by causal parent, with its head moved by compare-and-set — so two writers
// stepping one agent lose no update. On the embedded default (SQLite under $XDG_DATA_HOME/dgent).
//
//   node examples/patterns/state-functor.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { openDefaultStore } from "dgent";
import { composeAgents, composeLogic, liftLogic } from "dgent/patterns";

const namespace = `state-functor-example-${process.pid}`;
let store = await openDefaultStore({ namespace });

// The logic is pure: (input, state) → [output, newState]. It may run again if another writer
// moved the head first, so it computes and never acts.
const counter = (msg, state) => [`${msg}: count ${state.count + 1}`, { count: state.count + 1 }];
const agent = liftLogic(counter, { store, key: "counter", initial: { count: 0 } });

console.log(await agent.invoke("tick"));
console.log(await agent.invoke("tock"));
assert.deepEqual(await agent.state(), { count: 2 });

// The state survives a restart: a new store, a new agent, the same key.
await store.close();
store = await openDefaultStore({ namespace });
const again = liftLogic(counter, { store, key: "counter", initial: { count: 0 } });
console.log(`after restart: ${await again.invoke("tick")}`);

// Fifty steps started at once through two connections to the same file, as two processes would
// have: compare-and-set and retry lose nothing (a step that lost a race re-read the head and ran
// its logic again; how many did varies from run to run). In one process, steps through one store
// queue instead of racing.
const other = await openDefaultStore({ namespace });
const a = liftLogic(counter, { store, key: "counter", initial: { count: 0 } });
const b = liftLogic(counter, { store: other, key: "counter", initial: { count: 0 } });
const steps = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).step(`racer ${i % 2}`)));
const retried = steps.filter((s) => s.attempts > 1).length;
console.log(`50 steps at once over two connections: state ${JSON.stringify(await a.state())} (${retried} steps re-ran their logic after losing a race)`);
assert.deepEqual(await a.state(), { count: 53 });
assert.deepEqual(await b.state(), { count: 53 });
await other.close();

// The history is the causal chain of states.
const history = await a.history({ tail: 3 });
console.log(`last 3 states: ${history.map((e) => `${e.state.count} (depth ${e.depth})`).join(" → ")}`);
assert.deepEqual(history.map((e) => e.state.count), [51, 52, 53]);
assert.equal(history[2].datum.causalParent, history[1].id);

// Composition law: lifting f-then-g equals lifting f, then g, on one key.
const add = (x, s) => [x + s.n, { n: s.n + x }];
const double = (x, s) => [x * 2, { n: s.n * 2 }];
const whole = liftLogic(composeLogic(add, double), { store, key: "whole", initial: { n: 1 } });
const parts = composeAgents(liftLogic(add, { store, key: "parts", initial: { n: 1 } }), liftLogic(double, { store, key: "parts", initial: { n: 1 } }));
const left = [await whole.invoke(3), await whole.invoke(4)];
const right = [await parts.invoke(3), await parts.invoke(4)];
console.log(`lift(add ; double): ${left.join(", ")} — lift(add) ; lift(double): ${right.join(", ")}`);
assert.deepEqual(left, right);

await store.deleteMany({ all: true });
for (const ref of await store.refs.list("state/")) await store.refs.delete(ref.name);
await store.close();
