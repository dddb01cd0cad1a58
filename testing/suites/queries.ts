import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { Capabilities } from "../../core/protocol.js";
import type { Order, QueryFilter, QueryPage, Select } from "../../core/query.js";
import { assertSameDatum, ids, rng, type Scope, type Suite } from "../support.js";
import * as gen from "./query-gen.js";
import { putAll } from "./query-gen.js";
import { assertItems, before, everything, idOf, page, type At } from "./query-model.js";
import { queryBadInputTests } from "./queries-bad-input.js";
import { queryOperationTests } from "./queries-operations.js";

/**
 * How much the model comparison writes and asks: less where a filter reads the whole namespace
 * (`queryCost: "scan"`, or no native queries). `pages` is about how many pages a result is cut into.
 */
function sizing(capabilities: Capabilities): { datums: number; runs: number; pages: number } {
  return capabilities.query === true && capabilities.queryCost === "indexed" ? { datums: 200, runs: 30, pages: 8 } : { datums: 80, runs: 12, pages: 6 };
}

const show = (value: unknown): string => JSON.stringify(value);
const opposite = (order: Order): Order => (order === "newest" ? "oldest" : "newest");

/**
 * Queries (QUERIES.md): filters, both orders, cursors, projections, count, getMany, deleteMany,
 * children and a chain's tail, on every tier (those without native queries are answered by the
 * store from `scan`/`list` and `get`). Pages are compared with the kit's own model.
 */
export function queriesSuite(s: Suite): void {
  s.test("random filters in both orders, paged to the end with random page sizes, agree with the kit's model; so do count and list", async (scope) => {
    const { store, capabilities } = await scope.fresh();
    const { datums: n, runs, pages } = sizing(capabilities);
    const seed = s.options.seed;
    const random = rng(seed);
    const data = gen.datums(random, scope.prefix, n);
    await putAll(store, data);
    for (let run = 0; run < runs; run++) {
      const f = gen.filter(random, scope.prefix, data);
      const order = gen.order(random);
      const select = gen.select(random);
      const all = everything(data, f, order);
      const what = `seed ${seed}, run ${run}, ${show({ ...f, order, select })}`;
      assert.equal(await store.count(f), all.length, `${what}: count`);
      // One more filter, counted only: filters are checked twice as often for one call more.
      const g = gen.filter(random, scope.prefix, data);
      assert.equal(await store.count(g), everything(data, g, "newest").length, `seed ${seed}, run ${run}: count(${show(g)})`);
      const seen: string[] = [];
      const most = Math.max(1, Math.ceil((all.length * 2) / pages));
      let cursor: string | null = null;
      let at: At | null = null;
      for (let p = 0; ; p++) {
        const limit = 1 + Math.floor(random() * most);
        const got: QueryPage<unknown> = await store.query({ ...f, order, select, limit, ...(cursor === null ? {} : { cursor }) });
        const want = page(data, f, order, at, limit);
        const where: string = `${what}, page ${p} (limit ${limit}, after ${show(at)})`;
        assertItems(got.items, want, select, where);
        if (got.items.length < limit) assert.equal(got.cursor, null, `${where}: a short page is the last one, its cursor null`);
        else assert.ok(typeof got.cursor === "string" && got.cursor.length > 0, `${where}: a full page comes with a cursor`);
        seen.push(...got.items.map(idOf));
        if (got.cursor === null) break;
        at = want.at(-1) as Datum;
        if (p === 0 && gen.chance(random, 0.5)) {
          // A cursor holds a position, not an order: with the other order it pages the other way.
          const back = 1 + Math.floor(random() * (all.length + 1));
          const turned = await store.query({ ...f, order: opposite(order), select: "ids", limit: back, cursor: got.cursor });
          assert.deepEqual(turned.items, ids(page(data, f, opposite(order), at, back)), `${where}: the cursor with order ${opposite(order)}`);
        }
        cursor = got.cursor;
      }
      assert.deepEqual(seen, ids(all), `${what}: the pages together hold every item once, in order`);
      const limit = 1 + Math.floor(random() * (all.length + 2));
      const listed = await store.list({ ...f, order, limit });
      assert.deepEqual(ids(listed), ids(all.slice(0, limit)), `${what}: list({ …, limit: ${limit} }) is the first page`);
      for (const d of listed) assertSameDatum(d, data.find((x) => x.id === d.id) as Datum, `${what}: listed datum`);
    }
  });

  s.test("prefixes, tag values and id ranges with %, _ and \\ match literally; a missing tag never matches; exists is about own tags", async (scope) => {
    const { store } = await scope.fresh();
    const base = scope.prefix;
    const threads: Record<string, string> = { "a%b": "t%1", "a_b": "t_1", "a\\b": "t\\1", axb: "tx1", ab: "t1", "a%": "t%", "a_": "t_", "a\\": "t\\", a: "" };
    const data: Datum[] = Object.entries(threads).map(([k, thread], i) => ({
      id: base + k,
      content: new TextEncoder().encode(k),
      createdAt: 500 + i,
      causalParent: null,
      metadata: (thread === "" ? {} : { thread }) as Record<string, string>,
    }));
    await putAll(store, data);
    const keysOf = async (f: QueryFilter): Promise<string[]> => {
      const got = (await store.query({ ...f, select: "ids", order: "oldest" })).items;
      assert.deepEqual(got, ids(everything(data, f, "oldest")), `the kit's model disagrees for ${show(f)}`);
      return got.map((id) => id.slice(base.length)).sort();
    };
    assert.deepEqual(await keysOf({ prefix: `${base}a_` }), ["a_", "a_b"], "prefix a_: _ is not a wildcard");
    assert.deepEqual(await keysOf({ prefix: `${base}a%` }), ["a%", "a%b"], "prefix a%: % is not a wildcard");
    assert.deepEqual(await keysOf({ prefix: `${base}a\\` }), ["a\\", "a\\b"], "prefix a\\: \\ is an ordinary character");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { prefix: "t_" } } }), ["a_", "a_b"], "tag prefix t_");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { prefix: "t%" } } }), ["a%", "a%b"], "tag prefix t%");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { prefix: "t\\" } } }), ["a\\", "a\\b"], "tag prefix t\\");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: "t_1" } }), ["a_b"], "eq t_1");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { in: ["t%1", "t\\1"] } } }), ["a%b", "a\\b"], "in");
    assert.deepEqual(await keysOf({ prefix: base, idRange: { gte: `${base}a\\`, lt: `${base}a_` } }), ["a\\", "a\\b"], "idRange in code point order (\\ < _)");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { prefix: "" } } }), Object.keys(threads).filter((k) => k !== "a").sort(), "prefix \"\" matches every present tag");
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { exists: false } } }), ["a"]);
    assert.deepEqual(await keysOf({ prefix: base, where: { thread: { in: [""] } } }), [], "a missing tag is not the empty string");
    assert.deepEqual(await keysOf({ prefix: base, where: { constructor: { exists: true } } }), [], "a tag no datum has, though every object inherits the name");
    assert.deepEqual(await keysOf({ prefix: base, where: { toString: { prefix: "" } } }), []);
    assert.equal((await keysOf({ prefix: base, where: { constructor: { exists: false } } })).length, data.length);
    assert.equal(await store.count({ prefix: `${base}a_` }), 2);
    assert.equal(await store.count({ where: { thread: { prefix: "t%" } } }), 2);
  });

  s.test("ties come by id in code point order in both orders, also across pages; after/before are exclusive, idRange gte inclusive and lt exclusive", async (scope) => {
    const { store } = await scope.fresh();
    const base = scope.prefix;
    // Ascending by code point (UTF-8 bytes); UTF-16 order would put the astral ones before U+E000.
    const tied = ["0", "Z", "a", "a/z", "a\uFFFD", "a\u{1F989}", "b", "é", "日", "\uE000", "\uFFFD", "\u{10000}", "\u{1F989}"];
    const data: Datum[] = [
      ...tied.map((k, i) => ({ id: base + k, content: new TextEncoder().encode(k), createdAt: 50, causalParent: null, metadata: { n: String(i) } })),
      { id: `${base}older`, content: new Uint8Array([1]), createdAt: 49, causalParent: null, metadata: {} },
      { id: `${base}newer`, content: new Uint8Array([2]), createdAt: 51, causalParent: null, metadata: {} },
    ];
    await putAll(store, [...data].reverse());
    const oldest = [`${base}older`, ...tied.map((k) => base + k), `${base}newer`];
    for (const order of ["oldest", "newest"] as const) {
      const want = order === "oldest" ? oldest : [...oldest].reverse();
      const got: string[] = [];
      let cursor: string | null = null;
      do {
        const next: QueryPage<string> = await store.query({ prefix: base, order, select: "ids", limit: 2, ...(cursor === null ? {} : { cursor }) });
        got.push(...next.items);
        cursor = next.cursor;
      } while (cursor !== null && got.length <= want.length);
      assert.deepEqual(got, want, `${order} first, two at a time`);
    }
    const keys = async (f: QueryFilter) => (await store.query({ prefix: base, ...f, order: "oldest", select: "ids" })).items.map((id) => id.slice(base.length));
    assert.deepEqual(await keys({ after: 50 }), ["newer"], "after is exclusive");
    assert.deepEqual(await keys({ before: 50 }), ["older"], "before is exclusive");
    assert.deepEqual(await keys({ after: 49, before: 51 }), tied);
    assert.deepEqual(await keys({ idRange: { gte: `${base}a`, lt: `${base}b` } }), ["a", "a/z", "a\uFFFD", "a\u{1F989}"], "gte inclusive, lt exclusive");
    assert.deepEqual(await keys({ idRange: { gte: `${base}\uFFFD`, lt: `${base}\u{1F989}` } }), ["\uFFFD", "\u{10000}"], "a range across the astral plane, in code point order");
    assert.deepEqual(await keys({ idRange: { gte: `${base}日`, lt: `${base}日` } }), [], "an empty range");
    assert.equal(await store.count({ prefix: base, idRange: { lt: `${base}\uE000` } }), 11);
  });

  for (const order of ["newest", "oldest"] as const) {
    s.test(`cursors are stable under concurrent writes (${order} first): what existed when paging began and still exists comes exactly once`, async (scope) => {
      await pagingUnderWrites(s, scope, order);
    });
  }

  queryOperationTests(s);
  queryBadInputTests(s);
}

/**
 * Pages through a result while datums are put (older, newer and tied with what is there) and
 * deleted between pages, and put while a page is being read. Between pages the expected page is
 * exact (the model holds every write made so far); a put racing a page may or may not be in it.
 */
async function pagingUnderWrites(s: Suite, scope: Scope, order: Order): Promise<void> {
  const { store, capabilities } = await scope.fresh();
  const seed = s.options.seed + (order === "newest" ? 1 : 2);
  const random = rng(seed);
  const base = scope.prefix;
  const initial = gen.datums(random, base, Math.round(sizing(capabilities).datums * 0.4));
  await putAll(store, initial);
  const model = new Map(initial.map((d) => [d.id, d]));
  const used = new Set(model.keys());
  let made = 0;
  const fresh = (): Datum => {
    let id: string;
    do id = base + gen.key(random); while (used.has(id));
    used.add(id);
    return {
      id,
      content: new TextEncoder().encode(`written while paging, ${made++}`),
      createdAt: gen.T0 - 2 + Math.floor(random() * (gen.SPAN + 4)),
      causalParent: null,
      metadata: gen.tags(random),
    };
  };
  for (const [round, f] of ([{ prefix: base }, { prefix: base, where: { role: { in: ["user", "tool"] } } }] as QueryFilter[]).entries()) {
    const what = `seed ${seed}, ${order} first, ${show(f)}`;
    const before0 = everything(model.values(), f, order).map((d) => d.id);
    const select: Select = round === 0 ? "ids" : "meta";
    const seen: Datum[] = [];
    let cursor: string | null = null;
    let at: At | null = null;
    let ended = false;
    for (let p = 0; p < 200 && !ended; p++) {
      const limit = 1 + Math.floor(random() * 12);
      const racing = Array.from({ length: Math.floor(random() * 3) }, fresh);
      const [got]: [QueryPage<unknown>, ...unknown[]] = await Promise.all([
        store.query({ ...f, order, select, limit, ...(cursor === null ? {} : { cursor }) }),
        ...racing.map((d) => store.put(d)),
      ]);
      // A racing put is in this page only if it landed first; take the page's own word for which did.
      const landed = racing.filter((d) => got.items.some((item) => idOf(item) === d.id));
      const want = page([...model.values(), ...landed], f, order, at, limit);
      assertItems(got.items, want, select, `${what}, page ${p} (limit ${limit})`);
      for (const d of racing) model.set(d.id, d);
      seen.push(...want);
      ended = got.cursor === null;
      if (ended) break;
      at = want.at(-1) as Datum;
      cursor = got.cursor;
      // Between pages: puts older, newer and tied with what is there, and a delete.
      for (const d of Array.from({ length: 1 + Math.floor(random() * 3) }, fresh)) {
        await store.put(d);
        model.set(d.id, d);
      }
      if (gen.chance(random, 0.5)) {
        const victim = gen.pick(random, [...model.keys()]);
        assert.equal(await store.delete(victim), true);
        model.delete(victim);
      }
    }
    assert.ok(ended, `${what}: paging ended (a page with cursor null) within 200 pages`);
    const seenIds = seen.map((d) => d.id);
    assert.equal(new Set(seenIds).size, seenIds.length, `${what}: no item came twice`);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(before(order, seen[i - 1] as Datum, seen[i] as Datum) < 0, `${what}: items come in order across pages (${show(seenIds[i - 1])} then ${show(seenIds[i])})`);
    }
    const missed = before0.filter((id) => model.has(id) && !seenIds.includes(id));
    assert.deepEqual(missed, [], `${what}: every item that existed when paging began and still exists was seen`);
  }
}
