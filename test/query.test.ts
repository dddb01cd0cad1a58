/**
 * The kernel's side of queries (core/QUERIES.md): validation with the field named, cursors, the
 * fallback for a tier with only the five methods, pages merged over several tiers, and the hooks.
 * Each tier's native answers are checked in its own folder and by the kit's `queries` suite.
 */
import { describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, definePlugin, dgentError, type Adapter, type Datum } from "../core/index.js";
import { encodeCursor, evaluateQuery, likePrefix, prefixUpperBound, resolveQuery, type QueryOptions } from "../core/query.js";
import { compareIds } from "../core/order.js";

const bytes = (s: string) => new TextEncoder().encode(s);

function datum(i: number, extra: Partial<Datum> = {}): Datum {
  const id = `t/${String(i).padStart(3, "0")}`;
  return {
    id,
    content: bytes(`content ${i}`),
    createdAt: 1_000 + Math.floor(i / 3), // ties: three datums share each time
    causalParent: i > 0 ? `t/${String(i - 1).padStart(3, "0")}` : null,
    metadata: { role: i % 3 === 0 ? "user" : i % 3 === 1 ? "assistant" : "tool", ...(i % 4 === 0 ? { flag: "x" } : {}) },
    ...extra,
  };
}

/** A tier written against the five methods only (and `scan`-less), as a third party's would be. */
function fiveMethods(name = "plain", rank = 5): Adapter {
  const inner = memoryAdapter();
  const { refs: _r, transactions: _t, query: _q, queryCost: _c, ...capabilities } = inner.capabilities;
  return {
    name,
    rank,
    capabilities: { ...capabilities, persistent: true, scan: false },
    open: (c) => inner.open(c),
    close: () => inner.close(),
    put: (d) => inner.put(d),
    get: (id) => inner.get(id),
    delete: (id) => inner.delete(id),
    list: (o) => inner.list(o),
  };
}

async function pageAll(run: (cursor: string | undefined) => Promise<{ items: string[]; cursor: string | null }>): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await run(cursor);
    out.push(...page.items);
    if (page.cursor === null) return out;
    cursor = page.cursor;
  }
  throw new Error("did not end");
}

describe("query options are validated, and a bad one names its field", () => {
  const cases: Array<[string, unknown, string]> = [
    ["an unknown option", { colour: "red" }, "colour"],
    ["an unknown operator", { where: { role: { like: "u%" } } }, "where.role.like"],
    ["two operators on one tag", { where: { role: { eq: "a", prefix: "b" } } }, "where.role"],
    ["no operator", { where: { role: {} } }, "where.role"],
    ["a number as a tag value", { where: { role: 3 } }, "where.role"],
    ["a non-string in `in`", { where: { role: { in: ["a", 1] } } }, "where.role.in[1]"],
    ["an empty `in`", { where: { role: { in: [] } } }, "where.role.in"],
    ["a non-boolean exists", { where: { role: { exists: "yes" } } }, "where.role.exists"],
    ["an array as where", { where: ["role"] }, "where"],
    ["a huge limit", { limit: 100_001 }, "limit"],
    ["a negative limit", { limit: -1 }, "limit"],
    ["a fractional limit", { limit: 1.5 }, "limit"],
    ["an unknown order", { order: "random" }, "order"],
    ["an unknown projection", { select: "content" }, "select"],
    ["an unknown idRange bound", { idRange: { gt: "a" } }, "idRange.gt"],
    ["a NaN time", { after: Number.NaN }, "after"],
    ["a string time", { before: "yesterday" }, "before"],
    ["a control character in a prefix", { prefix: "a\u0000" }, "prefix"],
    ["a lone surrogate in a tag value", { where: { role: "\ud800" } }, "where.role"],
    ["a malformed cursor", { cursor: "not a cursor!" }, "cursor"],
    ["a cursor that is base64 of something else", { cursor: "eyJhIjoxfQ" }, "cursor"],
    ["a cursor that is not a string", { cursor: 42 }, "cursor"],
  ];
  it.each(cases)("%s → DGENT_INVALID_QUERY", (_what, options, field) => {
    expect(() => resolveQuery(options as QueryOptions)).toThrow(expect.objectContaining({ code: "DGENT_INVALID_QUERY", details: { field } }));
  });

  it("a cursor made for other filters is refused; the same filters accept it in either order", () => {
    const q = resolveQuery({ where: { role: "user" } });
    const cursor = encodeCursor(q, { createdAt: 5, id: "a" });
    expect(() => resolveQuery({ where: { role: "tool" }, cursor })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_QUERY", details: { field: "cursor" } }));
    expect(() => resolveQuery({ prefix: "x", where: { role: "user" }, cursor })).toThrow(expect.objectContaining({ details: { field: "cursor" } }));
    expect(resolveQuery({ where: { role: { eq: "user" } }, order: "oldest", limit: 7, select: "ids", cursor }).cursor).toEqual({ createdAt: 5, id: "a" });
  });

  it("eq arrives as a one-value in, where is sorted by tag, in values are deduplicated and sorted", () => {
    const q = resolveQuery({ where: { z: "1", a: { in: ["b", "a", "b"] } } });
    expect(q.where).toEqual([
      { key: "a", op: "in", values: ["a", "b"] },
      { key: "z", op: "in", values: ["1"] },
    ]);
  });

  it("bad options through the store change nothing stored", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await store.put(datum(1));
    await expect(store.query({ where: { role: { regex: "." } } } as never)).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
    await expect(store.deleteMany({ where: { role: { regex: "." } } } as never)).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
    await expect(store.deleteMany({})).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: "all" } });
    await expect(store.count({ limit: 3 } as never)).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: "limit" } });
    await expect(store.getMany(["ok", ""])).rejects.toMatchObject({ code: "DGENT_INVALID_ID" });
    await expect(store.causalChain("t/001", { tail: 0 })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: "tail" } });
    expect(await store.count()).toBe(1);
    await store.close();
  });
});

describe("prefix helpers for SQL tiers", () => {
  it("likePrefix escapes %, _ and \\", () => {
    expect(likePrefix("a%b_c\\d")).toBe("a\\%b\\_c\\\\d%");
  });
  it("prefixUpperBound is above every string with the prefix and below the next one, in code point order", () => {
    for (const p of ["a", "az", "a\uffff", "x\u{10ffff}", "\ud7ff", "日本"]) {
      const upper = prefixUpperBound(p) as string;
      for (const s of [p, `${p}\u0000`, `${p}\u{10ffff}zz`, `${p}\uffff`]) expect(compareIds(s, upper)).toBeLessThan(0);
      expect(compareIds(p, upper)).toBeLessThan(0);
    }
    expect(prefixUpperBound("\u{10ffff}")).toBeNull();
    expect(prefixUpperBound("")).toBeNull();
  });
});

describe("a tier with only the five methods answers every query operation through the store", () => {
  it("pages, counts, children, tails, getMany and deleteMany", async () => {
    const store = createStore({ tiers: [fiveMethods()], maxChainDepth: 10 });
    const all = Array.from({ length: 40 }, (_, i) => datum(i));
    for (const d of all) await store.put(d);
    const reference = (o: QueryOptions) => (evaluateQuery(resolveQuery({ ...o, limit: 100_000 }), all) as Datum[]).map((d) => d.id);
    for (const order of ["newest", "oldest"] as const) {
      const got = await pageAll((cursor) => store.query({ where: { role: { in: ["user", "tool"] } }, order, limit: 7, select: "ids", ...(cursor ? { cursor } : {}) }));
      expect(got).toEqual(reference({ where: { role: { in: ["user", "tool"] } }, order }));
    }
    expect(await store.count({ where: { flag: { exists: true } } })).toBe(10);
    expect((await store.children("t/010", { select: "ids" })).items).toEqual(["t/011"]);
    // The chain is 40 long and maxChainDepth is 10: the whole chain is refused, its tail is not.
    await expect(store.causalChain("t/039")).rejects.toMatchObject({ code: "DGENT_CAUSAL_DEPTH" });
    expect((await store.causalChain("t/039", { tail: 5 })).map((d) => d.id)).toEqual(["t/035", "t/036", "t/037", "t/038", "t/039"]);
    expect((await store.getMany(["t/002", "nope", "t/002"])).map((d) => d?.id ?? null)).toEqual(["t/002", null, "t/002"]);
    expect(await store.deleteMany({ where: { role: "tool" } })).toBe(13);
    expect(await store.count()).toBe(27);
    expect(await store.deleteMany({ all: true })).toBe(27);
    expect(await store.count()).toBe(0);
    await store.close();
  });

  it("meta pages carry no content; list with filters returns the first page", async () => {
    const store = createStore({ tiers: [fiveMethods()] });
    for (let i = 0; i < 10; i++) await store.put(datum(i));
    const meta = await store.query({ select: "meta", limit: 2 });
    expect(meta.items).toHaveLength(2);
    for (const h of meta.items) expect(h).not.toHaveProperty("content");
    expect(meta.items[0]).toMatchObject({ id: "t/009", createdAt: 1003, causalParent: "t/008", metadata: { role: "user" } });
    expect((await store.list({ where: { role: "user" }, order: "oldest" })).map((d) => d.id)).toEqual(["t/000", "t/003", "t/006", "t/009"]);
    await store.close();
  });
});

describe("over several tiers", () => {
  it("pages merge in order, each id once, and a cursor pages on across both tiers", async () => {
    const top = fiveMethods("top", 30);
    const low = memoryAdapter();
    const store = createStore({ tiers: [top, low], upgrader: false });
    await top.open();
    await low.open();
    const all = Array.from({ length: 30 }, (_, i) => datum(i));
    // Some only above, some only below, some on both (a promotion in flight).
    for (const d of all) {
      const i = Number(d.id.slice(2));
      if (i % 3 !== 1) await top.put(d);
      if (i % 3 !== 0) await low.put(d);
    }
    await store.open();
    for (const order of ["newest", "oldest"] as const) {
      const got = await pageAll((cursor) => store.query({ order, limit: 4, select: "ids", ...(cursor ? { cursor } : {}) }));
      expect(got).toEqual((evaluateQuery(resolveQuery({ order, limit: 1000 }), all) as Datum[]).map((d) => d.id));
    }
    expect(await store.count()).toBe(30);
    expect(await store.count({ where: { role: "tool" } })).toBe(10);
    expect((await store.getMany(["t/000", "t/001", "t/002"])).map((d) => d?.id)).toEqual(["t/000", "t/001", "t/002"]);
    expect((await store.causalChain("t/029", { tail: 4 })).map((d) => d.id)).toEqual(["t/026", "t/027", "t/028", "t/029"]);
    expect(await store.deleteMany({ prefix: "t/01" })).toBe(10);
    expect(await top.get("t/012")).toBeNull();
    expect(await low.get("t/011")).toBeNull();
    expect(await store.count()).toBe(20);
    await store.close();
  });
});

describe("hooks", () => {
  it("read transforms full query items and getMany; delete hooks see each id of deleteMany, and a veto stops it", async () => {
    const seen: string[] = [];
    const plugin = definePlugin({
      name: "watch",
      apply({ hooks }) {
        hooks.read.tap("upper", (d: Datum) => ({ ...d, content: bytes(new TextDecoder().decode(d.content).toUpperCase()) }));
        hooks.afterDelete.tapPromise("log", async (id: string) => {
          seen.push(id);
        });
        hooks.beforeDelete.tapPromise("veto", async (id: string) => {
          if (id === "t/009") throw dgentError("DGENT_INVALID_OPTIONS", "t/009 is kept");
        });
      },
    });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [plugin] });
    for (let i = 0; i < 10; i++) await store.put(datum(i));
    const page = await store.query({ limit: 1 });
    expect(new TextDecoder().decode(page.items[0]?.content)).toBe("CONTENT 9");
    const [one, none] = await store.getMany(["t/001", "zz"]);
    expect(new TextDecoder().decode(one?.content)).toBe("CONTENT 1");
    expect(none).toBeNull();
    expect(await store.deleteMany({ where: { role: "assistant" } })).toBe(3);
    expect(seen.sort()).toEqual(["t/001", "t/004", "t/007"]);
    await expect(store.deleteMany({ where: { role: "user" } })).rejects.toThrow("t/009 is kept");
    await store.close();
  });
});

describe("prefixUpperBound with lone surrogates (adapters called directly)", () => {
  it("bounds every string that starts with the prefix", () => {
    for (const p of ["\udbff", "\ud83d", "a\ud800", "\udc00", "x\udfff"]) {
      const upper = prefixUpperBound(p);
      for (const s of [p, `${p}\udfff`, `${p}\udc00z`, `${p}\uffff`]) if (upper !== null) expect(compareIds(s, upper), `${JSON.stringify(s)} < ${JSON.stringify(upper)}`).toBeLessThan(0);
    }
    expect(prefixUpperBound("\udbff")).toBeNull();
    expect(prefixUpperBound("\ud83d")).toBe("\ud83e");
  });
});
