import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import { compareNewestFirst } from "../../core/order.js";
import { assertSameDatum, ids, rng, type Suite } from "../support.js";

export function listSuite(s: Suite): void {
  s.test("list is newest first by createdAt, then by id descending", async (scope) => {
    const { store } = await scope.fresh();
    const put: Datum[] = [];
    for (const [key, createdAt] of [["b", 10], ["a", 30], ["c", 20], ["y", 20], ["x", 20]] as const) {
      const d = scope.datum({ key, createdAt });
      put.push(d);
      await store.put(d);
    }
    const listed = await store.list({ prefix: scope.prefix });
    assert.deepEqual(ids(listed), ["a", "y", "x", "c", "b"].map((k) => scope.prefix + k));
    for (const d of listed) assertSameDatum(d, put.find((p) => p.id === d.id) as Datum, "listed datum");
  });

  s.test("limit defaults to 100, and limit 0 and small limits are honoured", async (scope) => {
    const { store } = await scope.fresh();
    const batch = Array.from({ length: 120 }, (_, i) => scope.datum({ createdAt: 1000 + i }));
    for (const d of batch) await store.put(d);
    const all = await store.list({ prefix: scope.prefix });
    assert.equal(all.length, 100);
    assert.equal(all[0]?.createdAt, 1119);
    assert.deepEqual(await store.list({ prefix: scope.prefix, limit: 0 }), []);
    assert.deepEqual(ids(await store.list({ prefix: scope.prefix, limit: 3 })), ids(all.slice(0, 3)));
    assert.equal((await store.list({ prefix: scope.prefix, limit: 1000 })).length, 120);
  });

  s.test("after keeps only createdAt strictly greater", async (scope) => {
    const { store } = await scope.fresh();
    for (const t of [100, 200, 300, 400]) await store.put(scope.datum({ createdAt: t }));
    const listed = await store.list({ prefix: scope.prefix, after: 200 });
    assert.deepEqual(listed.map((d) => d.createdAt), [400, 300]);
    assert.deepEqual(await store.list({ prefix: scope.prefix, after: 400 }), []);
  });

  s.test("prefix selects ids that start with it, including non-ASCII prefixes", async (scope) => {
    const { store } = await scope.fresh();
    const keys = ["x/1", "x/2", "x2", "y/1", "é/1", "é/2", "ê/1", "x"];
    for (const [i, key] of keys.entries()) await store.put(scope.datum({ key, createdAt: 100 + i }));
    const under = async (p: string) => ids(await store.list({ prefix: scope.prefix + p })).map((id) => id.slice(scope.prefix.length));
    assert.deepEqual(await under("x/"), ["x/2", "x/1"]);
    assert.deepEqual(await under("x"), ["x", "x2", "x/2", "x/1"]);
    assert.deepEqual(await under("é/"), ["é/2", "é/1"]);
    assert.deepEqual(await under("z"), []);
  });

  s.test("prefix, after and limit combine", async (scope) => {
    const { store } = await scope.fresh();
    for (let i = 0; i < 30; i++) await store.put(scope.datum({ key: `${i % 2 ? "odd" : "even"}/${i}`, createdAt: i }));
    const listed = await store.list({ prefix: `${scope.prefix}odd/`, after: 10, limit: 4 });
    assert.deepEqual(listed.map((d) => d.createdAt), [29, 27, 25, 23]);
  });

  s.test("list agrees with a reference model on random ids, times and queries", async (scope) => {
    const { store } = await scope.fresh();
    const seed = 0x5eed;
    const random = rng(seed);
    const alphabet = ["a", "b", "Z", "/", "é", "日", "\u{1F989}", "\uFFFD", "0"];
    const pick = () => alphabet[Math.floor(random() * alphabet.length)] as string;
    const model = new Map<string, Datum>();
    for (let i = 0; i < 150; i++) {
      const key = Array.from({ length: 1 + Math.floor(random() * 4) }, pick).join("");
      const id = scope.prefix + key;
      if (model.has(id)) continue;
      const d = scope.datum({ id, createdAt: Math.floor(random() * 20) });
      model.set(id, d);
      await store.put(d);
    }
    for (let q = 0; q < 25; q++) {
      const prefix = scope.prefix + (random() < 0.3 ? "" : pick() + (random() < 0.4 ? pick() : ""));
      const after = random() < 0.5 ? -1 : Math.floor(random() * 20);
      const limit = 1 + Math.floor(random() * 40);
      const expected = [...model.values()]
        .filter((d) => d.id.startsWith(prefix) && d.createdAt > after)
        .sort(compareNewestFirst)
        .slice(0, limit);
      const actual = await store.list({ prefix, after, limit });
      assert.deepEqual(ids(actual), ids(expected), `seed ${seed}, query ${q}: ${JSON.stringify({ prefix, after, limit })}`);
    }
  });
}
