import assert from "node:assert/strict";
import { assertSameDatum, ids, type Suite } from "../support.js";

export function deleteSuite(s: Suite): void {
  s.test("delete returns true for a stored id and false for a missing one", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum();
    await store.put(d);
    assert.equal(await store.delete(d.id), true);
    assert.equal(await store.delete(d.id), false);
    assert.equal(await store.delete(`${scope.prefix}never`), false);
  });

  s.test("a deleted datum is gone from get, list and causal chains; others stay", async (scope) => {
    const { store } = await scope.fresh();
    const a = scope.datum({ key: "a", createdAt: 1 });
    const b = scope.datum({ key: "b", createdAt: 2, causalParent: a.id });
    const c = scope.datum({ key: "c", createdAt: 3, causalParent: b.id });
    for (const d of [a, b, c]) await store.put(d);
    await store.delete(b.id);
    assert.equal(await store.get(b.id), null);
    assert.deepEqual(ids(await store.list({ prefix: scope.prefix })), [c.id, a.id]);
    assert.deepEqual(ids(await store.causalChain(c.id)), [c.id], "the chain stops at the deleted parent");
    assertSameDatum(await store.get(a.id), a);
  });

  s.test("after a delete the id may hold a new datum", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum();
    await store.put(d);
    await store.delete(d.id);
    const replacement = { ...d, content: new TextEncoder().encode("second life") };
    await store.put(replacement);
    assertSameDatum(await store.get(d.id), replacement);
  });
}
