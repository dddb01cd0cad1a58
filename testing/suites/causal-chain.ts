import assert from "node:assert/strict";
import { assertSameDatum, expectCode, ids, type Suite } from "../support.js";

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
    await expectCode(store.causalChain(c.id), "DGENT_CAUSAL_CYCLE");
    await expectCode(store.causalChain(a.id), "DGENT_CAUSAL_CYCLE");
  });

  s.test("a datum naming itself as parent is refused at put", async (scope) => {
    const { store } = await scope.fresh();
    const id = `${scope.prefix}self`;
    await expectCode(store.put({ ...scope.datum({ id }), causalParent: id }), "DGENT_CAUSAL_CYCLE");
    assert.equal(await store.get(id), null);
  });
}
