import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { Ref } from "../../core/refs.js";
import { assertSameDatum, expectCode, type Suite } from "../support.js";

const text = (d: Datum | null): string => (d === null ? "" : new TextDecoder().decode(d.content));

/** Refs: compare-and-set pointers with a reflog (gated on `capabilities.refs`). */
export function refsSuite(s: Suite): void {
  const need = { capability: "refs" } as const;

  s.test("a ref is created, read, moved by version, target or unconditionally, and listed by prefix", async (scope) => {
    const { store } = await scope.fresh();
    const [a, b, c] = ["a", "b", "c"].map((key) => scope.datum({ key }));
    for (const d of [a, b, c] as Datum[]) await store.put(d);
    const name = `${scope.prefix}head`;
    assert.equal(await store.refs.get(name), null);
    const created = await store.refs.set(name, (a as Datum).id, { expect: { absent: true } });
    assert.deepEqual({ name: created.name, target: created.target, version: created.version }, { name, target: (a as Datum).id, version: 1 });
    assert.equal(typeof created.updatedAt, "number");
    const byVersion = await store.refs.set(name, (b as Datum).id, { expect: { version: 1 } });
    assert.equal(byVersion.version, 2);
    const byTarget = await store.refs.set(name, (c as Datum).id, { expect: { target: (b as Datum).id } });
    assert.equal(byTarget.version, 3);
    const plain = await store.refs.set(name, (a as Datum).id);
    assert.equal(plain.version, 4);
    assert.deepEqual(await store.refs.get(name), plain);
    await store.refs.set(`${scope.prefix}other/x`, (a as Datum).id);
    await store.refs.set(`${scope.prefix}hea`, (a as Datum).id);
    assert.deepEqual((await store.refs.list(`${scope.prefix}head`)).map((r) => r.name), [name]);
    assert.deepEqual((await store.refs.list(scope.prefix)).map((r) => r.name), [`${scope.prefix}hea`, name, `${scope.prefix}other/x`], "listed by name");
  }, need);

  s.test("a failed expectation changes nothing and says what the ref holds now", async (scope) => {
    const { store } = await scope.fresh();
    const [a, b] = ["a", "b"].map((key) => scope.datum({ key })) as [Datum, Datum];
    await store.put(a);
    await store.put(b);
    const name = `${scope.prefix}ref`;
    await store.refs.set(name, a.id);
    const stale = await expectCode(store.refs.set(name, b.id, { expect: { version: 7 } }), "DGENT_REF_CONFLICT");
    const actual = (stale as unknown as { details: { actual: Ref } }).details.actual;
    assert.equal(actual.target, a.id);
    assert.equal(actual.version, 1);
    await expectCode(store.refs.set(name, b.id, { expect: { absent: true } }), "DGENT_REF_CONFLICT");
    await expectCode(store.refs.set(name, b.id, { expect: { target: b.id } }), "DGENT_REF_CONFLICT");
    await expectCode(store.refs.set(`${scope.prefix}missing`, b.id, { expect: { version: 1 } }), "DGENT_REF_CONFLICT");
    assert.equal((await store.refs.get(name))?.target, a.id);
    assert.equal(await store.refs.get(`${scope.prefix}missing`), null);
  }, need);

  s.test("delete with and without an expectation; a re-created ref starts again at version 1", async (scope) => {
    const { store } = await scope.fresh();
    const a = scope.datum();
    await store.put(a);
    const name = `${scope.prefix}gone`;
    await store.refs.set(name, a.id);
    await store.refs.set(name, a.id);
    await expectCode(store.refs.delete(name, { expect: { version: 1 } }), "DGENT_REF_CONFLICT");
    assert.equal(await store.refs.delete(name, { expect: { version: 2 } }), true);
    assert.equal(await store.refs.delete(name), false);
    assert.equal(await store.refs.get(name), null);
    assert.equal((await store.refs.set(name, a.id, { expect: { absent: true } })).version, 1);
  }, need);

  s.test("the reflog records each move (from, to, version, when, who), newest first, bounded by the limit asked", async (scope) => {
    const { store } = await scope.fresh();
    const ds = ["a", "b", "c"].map((key) => scope.datum({ key })) as [Datum, Datum, Datum];
    for (const d of ds) await store.put(d);
    const name = `${scope.prefix}log`;
    for (const d of ds) await store.refs.set(name, d.id);
    await store.refs.delete(name);
    const log = await store.refs.log(name);
    assert.deepEqual(
      log.map((e) => [e.from, e.to, e.version]),
      [
        [ds[2].id, null, 3],
        [ds[1].id, ds[2].id, 3],
        [ds[0].id, ds[1].id, 2],
        [null, ds[0].id, 1],
      ],
    );
    for (const e of log) {
      assert.equal(e.name, name);
      assert.equal(typeof e.at, "number");
      assert.ok(typeof e.by === "string" && e.by.length > 0, "the reflog says who moved the ref");
    }
    assert.equal((await store.refs.log(name, 2)).length, 2);
  }, need);

  s.test("ref names follow the id rules; bad names, targets and expectations are coded errors", async (scope) => {
    const { store } = await scope.fresh();
    await expectCode(store.refs.set("", "x"), "DGENT_INVALID_ID");
    await expectCode(store.refs.set(`${scope.prefix}\u0007`, "x"), "DGENT_INVALID_ID");
    await expectCode(store.refs.set(`${scope.prefix}ok`, ""), "DGENT_INVALID_ID");
    await expectCode(store.refs.set(`${scope.prefix}ok`, "x", { expect: { version: 0 } }), "DGENT_INVALID_OPTIONS");
    await expectCode(store.refs.set(`${scope.prefix}ok`, "x", { expect: { nonsense: 1 } as never }), "DGENT_INVALID_OPTIONS");
    assert.equal(await store.refs.get(`${scope.prefix}ok`), null);
  }, need);

  s.test("ten concurrent read-modify-write increments through compare-and-set end at ten (seed 001, test 3, one process)", async (scope) => {
    const { store } = await scope.fresh();
    const name = `${scope.prefix}counter`;
    let made = 0;
    const increment = () =>
      store.refs.update(name, ({ datum }) => scope.datum({ key: `n${made++}`, content: new TextEncoder().encode(String(Number(text(datum) || "0") + 1)), causalParent: datum?.id ?? null }), {
        attempts: 1000,
        backoffMs: { min: 0, max: 5 },
      });
    await Promise.all(Array.from({ length: 10 }, increment));
    const ref = await store.refs.get(name);
    assert.equal(text(await store.get((ref as Ref).target)), "10");
    assert.equal(ref?.version, 10);
    assert.equal((await store.causalChain((ref as Ref).target)).length, 10, "each value's parent is the one it incremented");
  }, need);

  s.test("two writers racing on one ref: exactly one wins each round", async (scope) => {
    const { store } = await scope.fresh();
    const name = `${scope.prefix}race`;
    const start = scope.datum({ key: "start" });
    await store.put(start);
    let ref = await store.refs.set(name, start.id);
    for (let round = 0; round < 20; round++) {
      const [x, y] = [scope.datum({ key: `x${round}` }), scope.datum({ key: `y${round}` })];
      await Promise.all([store.put(x), store.put(y)]);
      const outcomes = await Promise.allSettled([
        store.refs.set(name, x.id, { expect: { version: ref.version } }),
        store.refs.set(name, y.id, { expect: { version: ref.version } }),
      ]);
      const won = outcomes.filter((o) => o.status === "fulfilled");
      assert.equal(won.length, 1, `round ${round}: exactly one writer wins`);
      const lost = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
      const reason = lost.reason as { code?: string; message?: string };
      assert.equal(reason.code, "DGENT_REF_CONFLICT", `round ${round}: the loser is told of the conflict, not: ${reason.message}`);
      ref = (won[0] as PromiseFulfilledResult<Ref>).value;
      assert.deepEqual(await store.refs.get(name), ref);
    }
  }, need);
}

/** Transactions: puts, deletes and ref moves all or nothing (gated on `capabilities.transactions`). */
export function transactionsSuite(s: Suite): void {
  const need = { capability: "transactions" } as const;

  s.test("a transaction commits puts, deletes and ref moves together and reports each", async (scope) => {
    const { store } = await scope.fresh();
    const old = scope.datum({ key: "old" });
    await store.put(old);
    const [a, b] = [scope.datum({ key: "a" }), scope.datum({ key: "b", causalParent: null })];
    const name = `${scope.prefix}head`;
    const result = await store.transaction((tx) => {
      tx.put(a).put(b).delete(old.id).delete(`${scope.prefix}never`).setRef(name, a.id, { expect: { absent: true } }).setRef(name, b.id, { expect: { version: 1 } });
    });
    assert.deepEqual(
      result.results.map((r) => r.op),
      ["put", "put", "delete", "delete", "setRef", "setRef"],
    );
    assert.deepEqual(result.results[2], { op: "delete", id: old.id, existed: true });
    assert.deepEqual(result.results[3], { op: "delete", id: `${scope.prefix}never`, existed: false });
    assert.equal((result.results[5] as { ref: Ref }).ref.version, 2);
    assertSameDatum(await store.get(a.id), a);
    assertSameDatum(await store.get(b.id), b);
    assert.equal(await store.get(old.id), null);
    assert.equal((await store.refs.get(name))?.target, b.id);
  }, need);

  s.test("a failed ref expectation anywhere in a transaction leaves everything as it was", async (scope) => {
    const { store } = await scope.fresh();
    const keep = scope.datum({ key: "keep" });
    await store.put(keep);
    const name = `${scope.prefix}r`;
    await store.refs.set(name, keep.id);
    const a = scope.datum({ key: "a" });
    await expectCode(
      store.transaction([
        { op: "put", datum: a },
        { op: "delete", id: keep.id },
        { op: "setRef", name: `${scope.prefix}new`, target: a.id },
        { op: "setRef", name, target: a.id, expect: { version: 9 } },
      ]),
      "DGENT_REF_CONFLICT",
    );
    assert.equal(await store.get(a.id), null, "the put was not committed");
    assertSameDatum(await store.get(keep.id), keep, "the delete was not committed");
    assert.equal(await store.refs.get(`${scope.prefix}new`), null, "the first ref move was not committed");
    assert.equal((await store.refs.get(name))?.version, 1);
  }, need);

  s.test("the append-only law holds inside a transaction: a conflicting put aborts it all", async (scope) => {
    const { store } = await scope.fresh();
    const stored = scope.datum({ key: "x" });
    await store.put(stored);
    const fresh = scope.datum({ key: "fresh" });
    const clash = { ...stored, content: new TextEncoder().encode("different") };
    await expectCode(store.transaction([{ op: "put", datum: fresh }, { op: "put", datum: clash }]), "DGENT_CONFLICT");
    assert.equal(await store.get(fresh.id), null);
    const twice = scope.datum({ key: "twice" });
    await expectCode(store.transaction([{ op: "put", datum: twice }, { op: "put", datum: { ...twice, content: new TextEncoder().encode("other") } }]), "DGENT_CONFLICT");
    assert.equal(await store.get(twice.id), null);
    // Re-putting the identical datum is a no-op, and a delete then a new value is allowed.
    await store.transaction([{ op: "put", datum: stored }, { op: "delete", id: stored.id }, { op: "put", datum: clash }]);
    assertSameDatum(await store.get(stored.id), clash);
  }, need);

  s.test("a malformed transaction is refused before anything is written", async (scope) => {
    const { store } = await scope.fresh();
    const a = scope.datum();
    await expectCode(store.transaction([{ op: "put", datum: a }, { op: "explode" } as never]), "DGENT_INVALID_OPTIONS");
    await expectCode(store.transaction([{ op: "put", datum: { ...a, id: "" } }]), "DGENT_INVALID_ID");
    assert.equal(await store.get(a.id), null);
  }, need);
}
