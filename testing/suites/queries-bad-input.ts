import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import { MAX_LIST_LIMIT } from "../../core/protocol.js";
import { MAX_GET_MANY, type QueryOptions } from "../../core/query.js";
import { assertSameDatum, expectCode, type Suite } from "../support.js";
import { putAll } from "./query-gen.js";

/** Options a query refuses, and the field its `DGENT_INVALID_QUERY` must name. */
const BAD_QUERIES: ReadonlyArray<readonly [unknown, string]> = [
  [{ where: { role: { like: "u%" } } }, "where.role.like"],
  [{ where: { role: { eq: "user", in: ["user"] } } }, "where.role"],
  [{ where: { role: {} } }, "where.role"],
  [{ where: { role: { in: ["user", 5] } } }, "where.role.in[1]"],
  [{ where: { role: { in: "user" } } }, "where.role.in"],
  [{ where: { role: { in: [] } } }, "where.role.in"],
  [{ where: { role: { exists: "yes" } } }, "where.role.exists"],
  [{ where: { role: { prefix: 1 } } }, "where.role.prefix"],
  [{ where: { role: { eq: null } } }, "where.role.eq"],
  [{ where: { role: 5 } }, "where.role"],
  [{ where: { role: null } }, "where.role"],
  [{ where: { role: ["user"] } }, "where.role"],
  [{ where: "role=user" }, "where"],
  [{ limit: MAX_LIST_LIMIT + 1 }, "limit"],
  [{ limit: -1 }, "limit"],
  [{ limit: 2.5 }, "limit"],
  [{ limit: "10" }, "limit"],
  [{ order: "sideways" }, "order"],
  [{ select: "content" }, "select"],
  [{ idRange: { gte: 5 } }, "idRange.gte"],
  [{ idRange: { from: "a" } }, "idRange.from"],
  [{ idRange: "a" }, "idRange"],
  [{ after: "yesterday" }, "after"],
  [{ before: Number.NaN }, "before"],
  [{ prefix: 7 }, "prefix"],
  [{ parent: 3 }, "parent"],
  [{ sort: "id" }, "sort"],
  [{ cursor: "not a cursor!" }, "cursor"],
  [{ cursor: "" }, "cursor"],
  [{ cursor: 42 }, "cursor"],
  [{ cursor: "a" }, "cursor"],
  [{ cursor: Buffer.from('{"a":1}').toString("base64url") }, "cursor"],
  [{ cursor: Buffer.from('[99,"00000000",1,"x"]').toString("base64url") }, "cursor"],
  [{ cursor: Buffer.from("[1").toString("base64url") }, "cursor"],
];

/** Bad options of every query operation are `DGENT_INVALID_QUERY` naming the field, and change nothing. */
export function queryBadInputTests(s: Suite): void {
  s.test("bad query options are DGENT_INVALID_QUERY naming the field (query, list, count, children, deleteMany, getMany), and nothing stored changes", async (scope) => {
    const { store } = await scope.fresh();
    const base = scope.prefix;
    const data: Datum[] = ["a", "b", "c", "d"].map((k, i) => ({
      id: base + k,
      content: new TextEncoder().encode(k),
      createdAt: 10 + i,
      causalParent: i > 0 ? `${base}a` : null,
      metadata: { role: i % 2 ? "user" : "assistant" },
    }));
    await putAll(store, data);
    const withPrefix = (o: unknown) => (o !== null && typeof o === "object" && !("prefix" in o) ? { prefix: base, ...o } : o) as QueryOptions;
    for (const [options, field] of BAD_QUERIES) {
      const what = JSON.stringify(options);
      await expectCode(store.query(withPrefix(options)), "DGENT_INVALID_QUERY", { field });
      // children sets `parent` itself.
      if (field !== "parent") await expectCode(store.children(data[0]?.id as string, options as never), "DGENT_INVALID_QUERY", { field });
      const paging = ["limit", "order", "select", "cursor"].includes(field);
      if (!paging) {
        // A list with only prefix/after/limit is a plain list, whose refusals are the badInput suite's (DGENT_INVALID_OPTIONS).
        if (field !== "prefix" && field !== "after") await expectCode(store.list(withPrefix(options) as never), "DGENT_INVALID_QUERY", { field });
        await expectCode(store.count(withPrefix(options)), "DGENT_INVALID_QUERY", { field });
        await expectCode(store.deleteMany(withPrefix(options)), "DGENT_INVALID_QUERY", { field });
      }
      assert.equal(await store.count({ prefix: base }), data.length, `nothing deleted by ${what}`);
    }
    // A cursor made for other filters is refused; one from the same filters in the other order is not.
    const first = await store.query({ prefix: base, limit: 2 });
    const cursor = first.cursor as string;
    assert.equal(typeof cursor, "string");
    for (const other of [{ prefix: `${base}a` }, { prefix: base, where: { role: "user" } }, { prefix: base, after: 0 }, { prefix: base, parent: `${base}a` }, {}]) {
      await expectCode(store.query({ ...other, cursor }), "DGENT_INVALID_QUERY", { field: "cursor" });
    }
    await expectCode(store.children(`${base}a`, { cursor }), "DGENT_INVALID_QUERY", { field: "cursor" });
    assert.deepEqual((await store.query({ prefix: base, order: "oldest", cursor, select: "ids" })).items, [`${base}d`], "the cursor (at c) in the other order");
    // count and deleteMany take filters only: a page option is refused, never ignored (deleteMany would delete more than asked).
    await expectCode(store.count({ prefix: base, limit: 1 } as never), "DGENT_INVALID_QUERY", { field: "limit" });
    await expectCode(store.deleteMany({ prefix: base, limit: 1 } as never), "DGENT_INVALID_QUERY", { field: "limit" });
    await expectCode(store.deleteMany({ prefix: base, cursor } as never), "DGENT_INVALID_QUERY", { field: "cursor" });
    await expectCode(store.deleteMany({}), "DGENT_INVALID_QUERY", { field: "all" });
    await expectCode(store.deleteMany({ prefix: base, all: "yes" } as never), "DGENT_INVALID_QUERY", { field: "all" });
    await expectCode(store.getMany("a" as never), "DGENT_INVALID_QUERY", { field: "ids" });
    await expectCode(store.getMany(new Array<string>(MAX_GET_MANY + 1).fill(`${base}a`)), "DGENT_INVALID_QUERY", { field: "ids" });
    await expectCode(store.getMany([`${base}a`, 5 as never]), "DGENT_INVALID_ID");
    // The largest limit is accepted and nothing is cut silently.
    const all = await store.query({ prefix: base, limit: MAX_LIST_LIMIT, select: "ids" });
    assert.deepEqual(all, { items: data.map((d) => d.id).reverse(), cursor: null });
    for (const d of data) assertSameDatum(await store.get(d.id), d, "after the refused calls");
  });
}
