import assert from "node:assert/strict";
import { makeDatum, type Datum } from "../../core/datum.js";
import { EXPIRES_AT } from "../../core/expiry.js";
import { assertSameDatum, expectCode, ids, type Scope, type Suite } from "../support.js";

/**
 * Expiry (core/EXPIRY.md): a datum whose `dgent.expiresAt` has passed is absent from every read
 * at once, and its id may be put again. Driven by a fake clock (no sleeps); the clock starts in
 * 2100, so a tier that judges expiry by real time on its own (a server) never hides these datums
 * before the kit's clock says so. A target that makes composed stores has its own clock: skipped.
 */
export function expirySuite(s: Suite): void {
  /** A fresh store whose clock the test moves. */
  const setup = async (scope: Scope) => {
    const clock = { now: Date.UTC(2100, 0, 1) };
    const instance = await scope.fresh({ clock: () => clock.now, expirySweepMs: false });
    return { ...instance, clock };
  };
  const expiring = (scope: Scope, key: string, expiresAt: number, extra: Partial<Datum> = {}): Datum => {
    const d = scope.datum({ key, ...extra });
    return { ...d, metadata: { ...d.metadata, [EXPIRES_AT]: String(expiresAt) } };
  };

  s.test("an expired datum is absent from get, list, query, count, getMany, children, scan and causal chains at once", async (scope) => {
    const { store, clock } = await setup(scope);
    const t = clock.now + 60_000;
    const a = scope.datum({ key: "a", createdAt: 1 });
    const b = expiring(scope, "b", t, { createdAt: 2, causalParent: a.id });
    const c = scope.datum({ key: "c", createdAt: 3, causalParent: b.id });
    const x = expiring(scope, "x", t + 1, { createdAt: 4 });
    for (const d of [a, b, c, x]) await store.put(d);
    const prefix = scope.prefix;

    clock.now = t - 1; // one millisecond before: everything is there
    assertSameDatum(await store.get(b.id), b);
    assert.deepEqual(ids(await store.list({ prefix })), [x.id, c.id, b.id, a.id]);
    assert.deepEqual(ids(await store.causalChain(c.id)), [a.id, b.id, c.id]);
    assert.equal(await store.count({ prefix }), 4);

    clock.now = t; // the expiry instant itself: b is gone everywhere
    assert.equal(await store.get(b.id), null, "get");
    assert.deepEqual(ids(await store.list({ prefix })), [x.id, c.id, a.id], "list");
    assert.deepEqual((await store.query({ prefix, order: "oldest" })).items.map((d) => d.id), [a.id, c.id, x.id], "query");
    assert.deepEqual((await store.query({ prefix, where: { [EXPIRES_AT]: { exists: true } }, select: "ids" })).items, [x.id], "query on the tag");
    assert.equal(await store.count({ prefix }), 3, "count");
    assert.equal(await store.count({ prefix, where: { [EXPIRES_AT]: { exists: true } } }), 1, "count on the tag");
    assert.deepEqual((await store.getMany([a.id, b.id, c.id])).map((d) => d?.id ?? null), [a.id, null, c.id], "getMany");
    assert.deepEqual((await store.children(a.id)).items, [], "children");
    assert.deepEqual(ids(await store.causalChain(c.id)), [c.id], "a chain ends at an expired ancestor");
    assert.deepEqual(ids(await store.causalChain(c.id, { tail: 3 })), [c.id], "and so does its tail");
    assert.deepEqual(await store.causalChain(b.id), [], "the chain of an expired datum is empty");
    const scanned: string[] = [];
    for await (const d of store.scan()) if (d.id.startsWith(prefix)) scanned.push(d.id);
    assert.deepEqual(scanned.sort(), [a.id, c.id, x.id].sort(), "scan");

    clock.now = t + 1;
    assert.equal(await store.get(x.id), null);
    assert.equal(await store.count({ prefix }), 2);
  });

  s.test("pages stay full and cursors reach the end when expired datums sit among live ones", async (scope) => {
    const { store, clock } = await setup(scope);
    const t = clock.now + 1_000;
    const all: Datum[] = [];
    for (let i = 0; i < 30; i++) {
      const key = `d${String(i).padStart(2, "0")}`;
      all.push(i % 3 === 1 ? scope.datum({ key, createdAt: 100 + i }) : expiring(scope, key, t, { createdAt: 100 + i }));
    }
    await store.putMany(all);
    clock.now = t;
    const alive = all.filter((d) => d.metadata[EXPIRES_AT] === undefined).map((d) => d.id);
    assert.deepEqual(ids(await store.list({ prefix: scope.prefix, limit: 4 })), alive.slice().reverse().slice(0, 4), "list refills its page");
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await store.query({ prefix: scope.prefix, order: "oldest", limit: 3, select: "ids", ...(cursor === null ? {} : { cursor }) });
      assert.ok(page.items.length === 3 || page.cursor === null, "only the last page is short");
      paged.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null);
    assert.deepEqual(paged, alive, "query pages");
  });

  s.test("a put after expiry reuses the id; before it, a different value is still a conflict", async (scope) => {
    const { store, clock } = await setup(scope);
    const t = clock.now + 5_000;
    const old = expiring(scope, "session", t);
    await store.put(old);
    const next = scope.datum({ key: "session", content: new TextEncoder().encode("second life") });
    clock.now = t - 1;
    await expectCode(store.put(next), "DGENT_CONFLICT");
    await store.put(old); // the same value: the usual no-op
    clock.now = t;
    assert.equal(await store.put(next), next.id);
    assertSameDatum(await store.get(next.id), next);
    const batch = expiring(scope, "batch", t + 10);
    await store.put(batch);
    clock.now = t + 10;
    const again = scope.datum({ key: "batch" });
    assert.deepEqual(await store.putMany([again]), [again.id], "putMany too");
    assertSameDatum(await store.get(again.id), again);
  });

  s.test("a transaction's put reuses an expired id", async (scope) => {
    const { store, clock } = await setup(scope);
    const t = clock.now + 5_000;
    await store.put(expiring(scope, "slot", t));
    clock.now = t;
    const next = scope.datum({ key: "slot" });
    await store.transaction((tx) => void tx.put(next));
    assertSameDatum(await store.get(next.id), next);
  }, { capability: "transactions" });

  s.test("sweepExpired deletes expired datums and leaves the rest", async (scope) => {
    const { store, clock, capabilities } = await setup(scope);
    const t = clock.now + 1_000;
    const keep = scope.datum({ key: "keep" });
    const later = expiring(scope, "later", t + 1_000);
    const gone = [1, 2, 3].map((i) => expiring(scope, `gone${i}`, t));
    for (const d of [keep, later, ...gone]) await store.put(d);
    clock.now = t;
    const swept = await store.sweepExpired();
    if (!capabilities.expiry) assert.equal(swept, 3, "the store swept the tier");
    for (const d of gone) assert.equal(await store.delete(d.id), false, "the expired datum's space was reclaimed");
    assertSameDatum(await store.get(keep.id), keep);
    assertSameDatum(await store.get(later.id), later);
  });

  s.test("a ref pointing at an expired datum is kept, and its target reads null", async (scope) => {
    const { store, clock } = await setup(scope);
    const t = clock.now + 1_000;
    const d = expiring(scope, "target", t);
    await store.put(d);
    const name = `${scope.prefix}head`;
    await store.refs.set(name, d.id);
    clock.now = t;
    assert.equal((await store.refs.get(name))?.target, d.id);
    assert.equal(await store.get(d.id), null);
  }, { capability: "refs" });

  s.test("makeDatum's ttlMs and expiresAt set the tag; a tag that is not epoch milliseconds is refused at put", async (scope) => {
    const { store } = await setup(scope);
    const byTtl = makeDatum({ id: `${scope.prefix}ttl`, content: "x", createdAt: 1_000, ttlMs: 500 });
    assert.equal(byTtl.metadata[EXPIRES_AT], "1500");
    const byDate = makeDatum({ id: `${scope.prefix}at`, content: "x", expiresAt: new Date(Date.UTC(2101, 0, 1)) });
    assert.equal(byDate.metadata[EXPIRES_AT], String(Date.UTC(2101, 0, 1)));
    const bad: Datum = { ...scope.datum({ key: "bad" }), metadata: { [EXPIRES_AT]: "tomorrow" } };
    await expectCode(store.put(bad), "DGENT_INVALID_METADATA");
    assert.equal(await store.get(bad.id), null);
  });
}
