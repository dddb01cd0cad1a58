import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import { assertSameDatum, expectCode, ids, within, type Scope, type Suite } from "../support.js";

/** The maxChainDepth of the store the depth tests build over the adapter. */
const MAX_DEPTH = 5;

/** A chain of `length` datums under `key`, oldest first; the first names `rootParent` (or none). */
function chainOf(scope: Scope, key: string, length: number, rootParent: string | null = null): Datum[] {
  const chain: Datum[] = [];
  let parent = rootParent;
  for (let i = 0; i < length; i++) {
    const d = scope.datum({ key: `${key}${i}`, createdAt: i, causalParent: parent });
    chain.push(d);
    parent = d.id;
  }
  return chain;
}

export function causalChainSuite(s: Suite): void {
  s.test("causalChain returns ancestors oldest first, ending with the datum itself", async (scope) => {
    const { store } = await scope.fresh();
    const a = scope.datum({ key: "a", createdAt: 1 });
    const b = scope.datum({ key: "b", createdAt: 2, causalParent: a.id });
    const c = scope.datum({ key: "c", createdAt: 3, causalParent: b.id });
    for (const d of [c, a, b]) await store.put(d);
    const chain = await store.causalChain(c.id);
    assert.deepEqual(ids(chain), [a.id, b.id, c.id]);
    assertSameDatum(chain[0], a);
    assertSameDatum(chain[2], c);
    assert.deepEqual(ids(await store.causalChain(a.id)), [a.id]);
  });

  s.test("causalChain of a missing id is []", async (scope) => {
    const { store } = await scope.fresh();
    assert.deepEqual(await store.causalChain(`${scope.prefix}nothing`), []);
  });

  s.test("a dangling parent ends the chain at the last datum that exists", async (scope) => {
    const { store } = await scope.fresh();
    const b = scope.datum({ key: "b", causalParent: `${scope.prefix}never-stored` });
    const c = scope.datum({ key: "c", causalParent: b.id });
    await store.put(b);
    await store.put(c);
    assert.deepEqual(ids(await store.causalChain(c.id)), [b.id, c.id]);
  });

  s.test("a chain 300 deep comes back whole and in order", async (scope) => {
    const { store } = await scope.fresh();
    let parent: string | null = null;
    const want: string[] = [];
    for (let i = 0; i < 300; i++) {
      const d = scope.datum({ key: `n${String(i).padStart(3, "0")}`, createdAt: i, causalParent: parent });
      await store.put(d);
      want.push(d.id);
      parent = d.id;
    }
    assert.deepEqual(ids(await store.causalChain(parent as string)), want);
  });

  s.test("a cycle ends with DGENT_CAUSAL_CYCLE, never a hang", async (scope) => {
    const { store } = await scope.fresh();
    const a = scope.datum({ key: "a", causalParent: `${scope.prefix}c` });
    const b = scope.datum({ key: "b", causalParent: a.id });
    const c = scope.datum({ key: "c", causalParent: b.id });
    for (const d of [a, b, c]) await store.put(d);
    const deadline = s.options.deadlineMs;
    await within(expectCode(store.causalChain(c.id), "DGENT_CAUSAL_CYCLE"), deadline, "causalChain over a cycle");
    await within(expectCode(store.causalChain(a.id), "DGENT_CAUSAL_CYCLE"), deadline, "causalChain over a cycle");
  });

  s.test(`a chain of exactly maxChainDepth (${MAX_DEPTH}) comes back whole; a longer one ends with DGENT_CAUSAL_DEPTH`, async (scope) => {
    const { store } = await scope.fresh({ maxChainDepth: MAX_DEPTH });
    const chain = chainOf(scope, "n", MAX_DEPTH + 1);
    for (const d of [...chain].reverse()) await store.put(d);
    const exact = chain[MAX_DEPTH - 1] as Datum;
    const over = chain[MAX_DEPTH] as Datum;
    assert.deepEqual(ids(await store.causalChain(exact.id)), ids(chain.slice(0, MAX_DEPTH)), "a chain of exactly maxChainDepth datums");
    const err = await within(expectCode(store.causalChain(over.id), "DGENT_CAUSAL_DEPTH"), s.options.deadlineMs, "causalChain deeper than maxChainDepth");
    assert.ok(err.message.includes(String(MAX_DEPTH)), `the DGENT_CAUSAL_DEPTH message names the limit: ${err.message}`);
    // The limit counts datums that exist: a dangling parent beyond the last one does not count.
    const dangling = chainOf(scope, "m", MAX_DEPTH, `${scope.prefix}never-stored`);
    for (const d of dangling) await store.put(d);
    assert.deepEqual(ids(await store.causalChain((dangling[MAX_DEPTH - 1] as Datum).id)), ids(dangling), "exactly maxChainDepth datums, then a dangling parent");
  });

  s.test(`a cycle longer than maxChainDepth (${MAX_DEPTH}) ends with DGENT_CAUSAL_CYCLE or DGENT_CAUSAL_DEPTH, never a hang`, async (scope) => {
    const { store } = await scope.fresh({ maxChainDepth: MAX_DEPTH });
    const ring = chainOf(scope, "r", MAX_DEPTH * 2, `${scope.prefix}r${MAX_DEPTH * 2 - 1}`);
    for (const d of ring) await store.put(d);
    const settled = await within(
      store.causalChain((ring[3] as Datum).id).then(
        (chain) => ({ chain }),
        (error: unknown) => ({ error: error as { code?: unknown } }),
      ),
      s.options.deadlineMs,
      "causalChain over a cycle longer than maxChainDepth",
    );
    assert.ok("error" in settled, `causalChain over a ${MAX_DEPTH * 2}-datum cycle returned ${"chain" in settled ? settled.chain.length : 0} datums instead of failing`);
    assert.ok(
      settled.error.code === "DGENT_CAUSAL_CYCLE" || settled.error.code === "DGENT_CAUSAL_DEPTH",
      `expected DGENT_CAUSAL_CYCLE or DGENT_CAUSAL_DEPTH, got ${String(settled.error.code)}`,
    );
  });

  s.test("a datum naming itself as parent is refused at put", async (scope) => {
    const { store } = await scope.fresh();
    const id = `${scope.prefix}self`;
    await expectCode(store.put({ ...scope.datum({ id }), causalParent: id }), "DGENT_CAUSAL_CYCLE");
    assert.equal(await store.get(id), null);
  });
}
