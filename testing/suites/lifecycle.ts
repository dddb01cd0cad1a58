import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { ResolvedListOptions } from "../../core/protocol.js";
import { assertSameDatum, expectCode, ids, WHOLE_LISTING, within, type Suite } from "../support.js";

/** What the open/close tests drive: an adapter or a composed store, used as it is (no store around it). */
interface Driven {
  open(): Promise<void>;
  close(): Promise<void>;
  put(datum: Datum): Promise<string>;
  get(id: string): Promise<Datum | null>;
  delete(id: string): Promise<boolean>;
  list(options: ResolvedListOptions): Promise<Datum[]>;
  causalChain?(id: string, maxDepth: number): Promise<Datum[]>;
}

export function lifecycleSuite(s: Suite): void {
  s.test("open and close are idempotent; every call after close fails with DGENT_CLOSED", async (scope) => {
    const instance = await scope.fresh();
    const { store } = instance;
    await store.open();
    await store.open();
    const d = scope.datum();
    await store.put(d);
    await scope.close(instance);
    await store.close();
    await expectCode(store.put(scope.datum()), "DGENT_CLOSED");
    await expectCode(store.get(d.id), "DGENT_CLOSED");
    await expectCode(store.delete(d.id), "DGENT_CLOSED");
    await expectCode(store.list(), "DGENT_CLOSED");
    await expectCode(store.causalChain(d.id), "DGENT_CLOSED");
    await expectCode(store.open(), "DGENT_CLOSED");
  });

  s.test("open() of an instance already open keeps what it holds (open is idempotent below any store too)", async (scope) => {
    const raw = (await scope.unopened()) as Driven;
    await raw.open();
    const d = scope.datum();
    await raw.put(d);
    await raw.open();
    assertSameDatum(await raw.get(d.id), d, "after a second open()");
    assert.deepEqual(ids(await raw.list(WHOLE_LISTING)), [d.id]);
  });

  s.test("two concurrent open() calls both resolve, and a put acknowledged after the first is kept by the second", async (scope) => {
    const raw = (await scope.unopened()) as Driven;
    const deadline = s.options.deadlineMs;
    const first = raw.open();
    const second = raw.open();
    await within(first, deadline, "the first of two concurrent open() calls");
    const early = scope.datum({ key: "early", createdAt: 1 });
    await raw.put(early);
    await within(second, deadline, "the second of two concurrent open() calls");
    const late = scope.datum({ key: "late", createdAt: 2 });
    await raw.put(late);
    assertSameDatum(await raw.get(early.id), early, "a datum put between the two open() calls resolving");
    assertSameDatum(await raw.get(late.id), late, "a datum put after both open() calls");
    assert.deepEqual(ids(await raw.list(WHOLE_LISTING)), [late.id, early.id]);
    await within(Promise.all([raw.open(), raw.open()]), deadline, "open() of an open instance");
    assert.equal((await raw.list(WHOLE_LISTING)).length, 2, "open() of an open instance keeps its data");
  });

  s.test("close() while open() is in flight leaves the instance closed, never half-open", async (scope) => {
    const raw = (await scope.unopened()) as Driven;
    const deadline = s.options.deadlineMs;
    const opening = raw.open();
    const closing = raw.close();
    const [opened, closed] = await within(Promise.allSettled([opening, closing]), deadline, "open() racing close()");
    assert.equal(closed.status, "fulfilled", `close() while open() was in flight rejected: ${closed.status === "rejected" ? String(closed.reason) : ""}`);
    if (opened.status === "rejected") {
      assert.equal((opened.reason as { code?: unknown }).code, "DGENT_CLOSED", `open() interrupted by close() may only fail with DGENT_CLOSED, got: ${String(opened.reason)}`);
    }
    const d = scope.datum();
    await expectCode(raw.put(d), "DGENT_CLOSED");
    await expectCode(raw.get(d.id), "DGENT_CLOSED");
    await expectCode(raw.delete(d.id), "DGENT_CLOSED");
    await expectCode(raw.list(WHOLE_LISTING), "DGENT_CLOSED");
    if (raw.causalChain) await expectCode(raw.causalChain(d.id, 100), "DGENT_CLOSED");
    await expectCode(raw.open(), "DGENT_CLOSED");
    await within(raw.close(), deadline, "a second close()");
  });

  s.test("capabilities are declared as booleans", async (scope) => {
    const { capabilities } = await scope.fresh();
    for (const key of ["persistent", "multiProcess", "nativeCausalChain", "batch", "scan", "evicts"] as const) {
      assert.equal(typeof capabilities[key], "boolean", `capabilities.${key}`);
    }
    assert.ok(["undefined", "boolean"].includes(typeof capabilities.zeroCopy), "capabilities.zeroCopy is a boolean when declared");
  });
}

export function putManySuite(s: Suite): void {
  s.test("putMany stores every datum and returns their ids in order", async (scope) => {
    const { store } = await scope.fresh();
    const batch = Array.from({ length: 50 }, (_, i) => scope.datum({ createdAt: 500 + i }));
    assert.deepEqual(await store.putMany(batch), ids(batch));
    for (const d of batch) assertSameDatum(await store.get(d.id), d);
  });

  s.test(
    "putMany is all or nothing: a conflicting datum leaves none of the batch written",
    async (scope) => {
      const { store } = await scope.fresh();
      const existing = scope.datum({ key: "existing" });
      await store.put(existing);
      const batch = [scope.datum({ key: "n1" }), { ...existing, content: new Uint8Array([1]) }, scope.datum({ key: "n2" })];
      await expectCode(store.putMany(batch), "DGENT_CONFLICT");
      assert.equal(await store.get(`${scope.prefix}n1`), null);
      assert.equal(await store.get(`${scope.prefix}n2`), null);
      assertSameDatum(await store.get(existing.id), existing);
    },
    { capability: "batch", reason: "putMany is only atomic where the tier declares batch" },
  );

  s.test(
    "putMany is all or nothing within the batch too: one id twice with different values writes nothing; twice the same is one datum",
    async (scope) => {
      const { store } = await scope.fresh();
      const first = scope.datum({ key: "dup", content: new Uint8Array([1]) });
      const clash = [scope.datum({ key: "m1" }), first, scope.datum({ key: "m2" }), { ...first, content: new Uint8Array([2]) }];
      await expectCode(store.putMany(clash), "DGENT_CONFLICT");
      for (const key of ["m1", "m2", "dup"]) assert.equal(await store.get(`${scope.prefix}${key}`), null, `${key} was written`);
      const twice = [first, scope.datum({ key: "m3" }), { ...first, metadata: { ...first.metadata } }];
      assert.deepEqual(await store.putMany(twice), [first.id, `${scope.prefix}m3`, first.id]);
      assertSameDatum(await store.get(first.id), first);
      assert.equal((await store.list({ prefix: scope.prefix })).length, 2);
    },
    { capability: "batch", reason: "putMany is only atomic where the tier declares batch" },
  );

  s.test("putMany validates every datum before writing any", async (scope) => {
    const { store } = await scope.fresh();
    const good = scope.datum({ key: "good" });
    await expectCode(store.putMany([good, { ...scope.datum(), id: "" }]), "DGENT_INVALID_ID");
    assert.equal(await store.get(good.id), null);
  });
}

export function scanSuite(s: Suite): void {
  s.test(
    "scan yields every stored datum exactly once",
    async (scope) => {
      const { store } = await scope.fresh();
      const batch = Array.from({ length: 40 }, (_, i) => scope.datum({ createdAt: i }));
      for (const d of batch) await store.put(d);
      await store.delete(batch[0]?.id as string);
      const seen = new Map<string, number>();
      for await (const d of store.scan()) {
        if (d.id.startsWith(scope.prefix)) seen.set(d.id, (seen.get(d.id) ?? 0) + 1);
      }
      assert.equal(seen.size, 39);
      assert.ok([...seen.values()].every((n) => n === 1), "no datum is yielded twice");
    },
    { capability: "scan" },
  );
}
