import assert from "node:assert/strict";
import { assertSameDatum, expectCode, type Suite } from "../support.js";

/** put and get: round trip, the append-only law, copies, sizes. */
export function putGetSuite(s: Suite): void {
  s.test("put returns the id and get returns the same datum (round trip)", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum({ metadata: { kind: "note", "émoji": "🦉" } });
    assert.equal(await store.put(d), d.id);
    assertSameDatum(await store.get(d.id), d);
  });

  s.test("get of a missing id is null", async (scope) => {
    const { store } = await scope.fresh();
    assert.equal(await store.get(`${scope.prefix}missing`), null);
  });

  s.test("every byte value, empty content and 1 MiB content round-trip exactly", async (scope) => {
    const { store } = await scope.fresh();
    const all = new Uint8Array(256).map((_, i) => i);
    const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 31 + 7) & 0xff);
    for (const content of [all, new Uint8Array(0), big]) {
      const d = scope.datum({ content });
      await store.put(d);
      assertSameDatum(await store.get(d.id), d);
    }
  });

  s.test("a Buffer is accepted as content and read back as bytes", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum({ content: Buffer.from("buffered") });
    await store.put(d);
    assertSameDatum(await store.get(d.id), d);
  });

  s.test("ids with '/', spaces, quotes and non-ASCII text, up to 1024 UTF-8 bytes, round-trip", async (scope) => {
    const { store } = await scope.fresh();
    const base = scope.prefix;
    const idList = [
      `${base}a/b/c`,
      `${base}with space 'quote' "dq" %20 +&=?`,
      `${base}日本語/émoji 🦉`,
      `${base}${"é".repeat((1024 - Buffer.byteLength(base)) >> 1)}`.slice(0, 2000),
    ];
    for (const id of idList) {
      if (Buffer.byteLength(id) > 1024) continue;
      const d = scope.datum({ id });
      await store.put(d);
      assertSameDatum(await store.get(id), d);
    }
    const exact = base + "x".repeat(1024 - Buffer.byteLength(base));
    assert.equal(Buffer.byteLength(exact), 1024);
    await store.put(scope.datum({ id: exact }));
    assert.ok(await store.get(exact), "an id of exactly 1024 bytes is stored");
  });

  s.test("putting an identical datum again is a no-op that returns the id", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum({ metadata: { a: "1" } });
    await store.put(d);
    assert.equal(await store.put({ ...d, content: d.content.slice(), metadata: { a: "1" } }), d.id);
    assertSameDatum(await store.get(d.id), d);
    assert.equal((await store.list({ prefix: scope.prefix })).length, 1);
  });

  s.test("an identical value put later keeps the first createdAt (createdAt is not part of the value)", async (scope) => {
    const { store } = await scope.fresh();
    const d = scope.datum({ createdAt: 1_000 });
    await store.put(d);
    assert.equal(await store.put({ ...d, createdAt: 2_000 }), d.id);
    assert.equal((await store.get(d.id))?.createdAt, 1_000);
  });

  s.test("a different datum under an existing id fails with DGENT_CONFLICT and changes nothing", async (scope) => {
    const { store } = await scope.fresh();
    const parent = scope.datum({ key: "parent" });
    const d = scope.datum({ metadata: { a: "1" } });
    await store.put(parent);
    await store.put(d);
    await expectCode(store.put({ ...d, content: new TextEncoder().encode("other") }), "DGENT_CONFLICT");
    await expectCode(store.put({ ...d, metadata: { a: "2" } }), "DGENT_CONFLICT");
    await expectCode(store.put({ ...d, metadata: {} }), "DGENT_CONFLICT");
    await expectCode(store.put({ ...d, causalParent: parent.id }), "DGENT_CONFLICT");
    assertSameDatum(await store.get(d.id), d);
  });

  s.test("the store keeps its own copy: mutating the input or the output changes nothing stored", async (scope) => {
    const { store, capabilities } = await scope.fresh();
    const content = new TextEncoder().encode("original");
    const metadata: Record<string, string> = { tag: "t" };
    const d = scope.datum({ content, metadata });
    await store.put(d);
    if (capabilities.zeroCopy === true) {
      // A zero-copy tier shares the caller's objects by contract; it must still return the value stored.
      assertSameDatum(await store.get(d.id), d);
      assertSameDatum((await store.list({ prefix: d.id, limit: 1 }))[0] ?? null, d);
      return;
    }
    (d.content as Uint8Array)[0] = 0x58;
    (d.metadata as Record<string, string>).tag = "changed";
    const first = await store.get(d.id);
    assert.ok(first);
    assert.equal(Buffer.from(first.content).toString(), "original");
    assert.equal(first.metadata.tag, "t");
    (first.content as Uint8Array)[0] = 0x59;
    (first.metadata as Record<string, string>).tag = "mutated";
    const second = await store.get(d.id);
    assert.equal(Buffer.from(second?.content ?? []).toString(), "original");
    assert.equal(second?.metadata.tag, "t");
  });

  s.test("createdAt keeps millisecond precision and large values", async (scope) => {
    const { store } = await scope.fresh();
    for (const createdAt of [0, 1, 1_700_000_000_123, 4_102_444_800_000]) {
      const d = scope.datum({ createdAt });
      await store.put(d);
      assert.equal((await store.get(d.id))?.createdAt, createdAt);
    }
  });

  s.test("many metadata tags with empty and long values round-trip", async (scope) => {
    const { store } = await scope.fresh();
    const metadata: Record<string, string> = { empty: "", long: "v".repeat(2000), "key with space": "x" };
    for (let i = 0; i < 50; i++) metadata[`k${i}`] = `v${i}`;
    const d = scope.datum({ metadata });
    await store.put(d);
    assertSameDatum(await store.get(d.id), d);
  });
}
