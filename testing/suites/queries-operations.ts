import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { QueryFilter } from "../../core/query.js";
import { assertSameDatum, expectCode, ids, rng, within, type Scope, type Suite } from "../support.js";
import * as gen from "./query-gen.js";
import { putAll } from "./query-gen.js";
import { everything } from "./query-model.js";

/** The maxChainDepth of the store the tail-beyond-the-limit case builds over the adapter. */
const MAX_DEPTH = 5;

function datum(scope: Scope, key: string, createdAt: number, causalParent: string | null = null, metadata: Record<string, string> = {}): Datum {
  return { id: scope.prefix + key, content: new TextEncoder().encode(`content of ${key}`), createdAt, causalParent, metadata };
}

/** A chain of `length` datums under `key`, oldest first; the first names `rootParent` (or none). */
function chainOf(scope: Scope, key: string, length: number, rootParent: string | null = null): Datum[] {
  const chain: Datum[] = [];
  let parent = rootParent;
  for (let i = 0; i < length; i++) {
    const d = datum(scope, `${key}${String(i).padStart(2, "0")}`, 100 + i, parent);
    chain.push(d);
    parent = d.id;
  }
  return chain;
}

/** getMany, deleteMany, children and causalChain's tail. */
export function queryOperationTests(s: Suite): void {
  s.test("getMany returns the datums in the order asked, null where there is none, duplicates as asked", async (scope) => {
    const { store } = await scope.fresh();
    const ds = ["a", "a%", "a_", "日\u{1F989}", "b\\", "z"].map((k, i) => datum(scope, k, 10 + (i % 2)));
    await putAll(store, ds);
    const [a, pct, und, astral, slash, z] = ds as [Datum, Datum, Datum, Datum, Datum, Datum];
    assert.equal(await store.delete(z.id), true);
    const missing = `${scope.prefix}missing`;
    const got = await store.getMany([astral.id, missing, a.id, astral.id, z.id, und.id, pct.id, slash.id]);
    assert.equal(got.length, 8, "one entry per id asked");
    const want = [astral, null, a, astral, null, und, pct, slash];
    want.forEach((w, i) => {
      if (w === null) assert.equal(got[i], null, `entry ${i}: no datum`);
      else assertSameDatum(got[i], w, `entry ${i}`);
    });
    assert.deepEqual(await store.getMany([]), []);
    assert.deepEqual(await store.getMany([missing]), [null]);
    assert.deepEqual(ids((await store.getMany([...ds.slice(0, 5)].reverse().map((d) => d.id))) as Datum[]), ids([...ds.slice(0, 5)].reverse()));
  });

  s.test("deleteMany deletes exactly what its filter selects and says how many; {} is refused without all: true", async (scope) => {
    const { store } = await scope.fresh();
    const random = rng(s.options.seed + 3);
    const data = gen.datums(random, scope.prefix, 40);
    await putAll(store, data);
    const model = new Map(data.map((d) => [d.id, d]));
    const remaining = async (what: string) => {
      const left = (await store.query({ select: "ids", order: "oldest", limit: 1000 })).items;
      assert.deepEqual(left, ids(everything(model.values(), {}, "oldest")), `${what}: what is left`);
    };
    await expectCode(store.deleteMany({}), "DGENT_INVALID_QUERY", { field: "all" });
    await expectCode(store.deleteMany({ all: false }), "DGENT_INVALID_QUERY", { field: "all" });
    await remaining("after the refused deleteMany({})");
    const filters: QueryFilter[] = [
      { where: { role: "user" } },
      { prefix: `${scope.prefix}%` },
      { prefix: `${scope.prefix}_` },
      { where: { thread: { prefix: "t_" } }, before: gen.T0 + 4 },
      { parent: (data.find((d) => d.causalParent !== null) as Datum).causalParent as string },
      { idRange: { gte: `${scope.prefix}a`, lt: `${scope.prefix}é` }, after: gen.T0 + 2 },
      { where: { role: "user" } },
    ];
    for (const f of filters) {
      const doomed = everything(model.values(), f, "newest");
      const n = await store.deleteMany(f);
      assert.equal(n, doomed.length, `deleteMany(${JSON.stringify(f)}) reports how many it deleted`);
      for (const d of doomed) model.delete(d.id);
      await remaining(`after deleteMany(${JSON.stringify(f)})`);
      assert.equal(await store.count(f), 0, `nothing meets ${JSON.stringify(f)} any more`);
    }
    const n = await store.deleteMany({ all: true });
    assert.equal(n, model.size, "deleteMany({ all: true }) deletes the rest");
    assert.equal(await store.count(), 0);
    assert.deepEqual(await store.list({ prefix: scope.prefix }), []);
    assert.equal(await store.deleteMany({ all: true }), 0);
  });

  s.test("children finds every branch of a datum (a regenerated reply from its parent), in both orders and by pages", async (scope) => {
    const { store } = await scope.fresh();
    const q = datum(scope, "q", 1, null, { role: "user" });
    const r1 = datum(scope, "r1", 2, q.id, { role: "assistant" });
    const r2 = datum(scope, "r2", 3, q.id, { role: "assistant", regenerated: "1" });
    const tool = datum(scope, "t%", 3, q.id, { role: "tool" });
    const grandchild = datum(scope, "g", 4, r1.id, { role: "user" });
    const other = datum(scope, "o", 5, null);
    await putAll(store, [q, r1, r2, tool, grandchild, other]);
    const newest = [tool, r2, r1]; // r2 and t% tie at 3: id descending ("t%" > "r2")
    assert.deepEqual(ids((await store.children(q.id)).items), ids(newest));
    for (const [i, d] of (await store.children(q.id)).items.entries()) assertSameDatum(d, newest[i] as Datum, "child");
    assert.deepEqual((await store.children(q.id, { order: "oldest", select: "ids" })).items, ids([...newest].reverse()));
    assert.deepEqual((await store.children(q.id, { where: { role: "assistant" }, select: "ids" })).items, [r2.id, r1.id]);
    assert.deepEqual((await store.children(q.id, { where: { regenerated: { exists: true } }, select: "ids" })).items, [r2.id], "the regenerated reply");
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await store.children(q.id, { select: "ids", limit: 1, ...(cursor === null ? {} : { cursor }) });
      paged.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null && paged.length < 10);
    assert.deepEqual(paged, ids(newest), "paged one at a time");
    assert.deepEqual((await store.children(r1.id, { select: "ids" })).items, [grandchild.id], "children, not descendants");
    assert.deepEqual((await store.children(grandchild.id)).items, []);
    assert.deepEqual((await store.children(`${scope.prefix}missing`)).items, []);
    assert.equal(await store.count({ parent: q.id }), 3);
    assert.deepEqual(ids(await store.list({ parent: q.id, order: "oldest" })), ids([...newest].reverse()));
  });

  s.test("causalChain with tail gives the last n steps, oldest first; a missing ancestor ends it; a cycle within n steps is DGENT_CAUSAL_CYCLE", async (scope) => {
    const { store } = await scope.fresh();
    const chain = chainOf(scope, "c", 12);
    const fork = datum(scope, "fork", 200, (chain[5] as Datum).id);
    const dangling = chainOf(scope, "d", 3, `${scope.prefix}never-stored`);
    const ring = chainOf(scope, "r", 4, `${scope.prefix}r03`);
    await putAll(store, [...chain, fork, ...dangling, ...ring]);
    const head = (chain[11] as Datum).id;
    assert.deepEqual(ids(await store.causalChain(head, { tail: 1 })), [head]);
    assert.deepEqual(ids(await store.causalChain(head, { tail: 4 })), ids(chain.slice(8)));
    const whole = await store.causalChain(head, { tail: 12 });
    assert.deepEqual(ids(whole), ids(chain));
    whole.forEach((d, i) => assertSameDatum(d, chain[i] as Datum, "chain step"));
    assert.deepEqual(ids(await store.causalChain(head, { tail: 100 })), ids(chain), "a tail longer than the chain is the whole chain");
    assert.deepEqual(ids(await store.causalChain(fork.id, { tail: 3 })), [(chain[4] as Datum).id, (chain[5] as Datum).id, fork.id], "a branch's own ancestors");
    assert.deepEqual(ids(await store.causalChain((dangling[2] as Datum).id, { tail: 10 })), ids(dangling), "a missing ancestor ends the chain");
    assert.deepEqual(await store.causalChain(`${scope.prefix}missing`, { tail: 5 }), []);
    await within(expectCode(store.causalChain((ring[3] as Datum).id, { tail: 10 }), "DGENT_CAUSAL_CYCLE"), s.options.deadlineMs, "a tail over a cycle");
    assert.deepEqual(ids(await store.causalChain((ring[3] as Datum).id, { tail: 3 })), ids(ring.slice(1)), "3 steps of a 4-cycle: no step repeats, so no cycle is met");
    for (const tail of [0, -1, 1.5, Number.NaN, "3"]) {
      await expectCode(store.causalChain(head, { tail: tail as number }), "DGENT_INVALID_QUERY", { field: "tail" });
    }
  });

  s.test(`causalChain with tail on a chain longer than maxChainDepth (${MAX_DEPTH}) returns exactly the last n, never DGENT_CAUSAL_DEPTH`, async (scope) => {
    const { store } = await scope.fresh({ maxChainDepth: MAX_DEPTH });
    const chain = chainOf(scope, "n", MAX_DEPTH * 2 + 3);
    for (const d of [...chain].reverse()) await store.put(d);
    const head = (chain.at(-1) as Datum).id;
    await within(expectCode(store.causalChain(head), "DGENT_CAUSAL_DEPTH"), s.options.deadlineMs, "the whole chain, deeper than maxChainDepth");
    for (const n of [1, 3, MAX_DEPTH, MAX_DEPTH + 1, chain.length, chain.length + 7]) {
      const tail = await within(store.causalChain(head, { tail: n }), s.options.deadlineMs, `causalChain(head, { tail: ${n} })`);
      assert.deepEqual(ids(tail), ids(chain.slice(-n)), `tail ${n} of a chain of ${chain.length} under maxChainDepth ${MAX_DEPTH}`);
    }
  });
}
