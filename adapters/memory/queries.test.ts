/**
 * The memory tier's native queries (adapters/shared-index) against core's reference evaluation:
 * random datums, random filters, every query paged to its end with cursors in both orders —
 * after the indexes were built, then after deletes, later puts, a deleteMany and, on a bounded
 * tier, evictions (which must leave every index).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { walkTail } from "../../core/router-query.js";
import type { Datum } from "../../core/datum.js";
import { SILENT_EVENTS, type Adapter } from "../../core/protocol.js";
import { countQuery, evaluateQuery, resolveQuery, unpaged, type DatumHeader, type QueryOptions } from "../../core/query.js";
import { comparable, pageThrough, queryArbitraries, referenceAnswer } from "../shared-index/query-check.js";
import { memoryAdapter, type MemoryOptions } from "./index.js";

const arb = queryArbitraries(fc);
const RUNS = 150;

/** Pages `options` to the end natively and with the reference, in both orders; counts too. */
async function checkQuery(a: Adapter, live: ReadonlyMap<string, Datum>, options: QueryOptions): Promise<void> {
  const query = (q: Parameters<NonNullable<Adapter["query"]>>[0]) => (a.query as NonNullable<Adapter["query"]>).call(a, q);
  for (const order of ["newest", "oldest"] as const) {
    const o = { ...options, order };
    const native = await pageThrough(query, o);
    const reference = await pageThrough(referenceAnswer(live.values()), o);
    expect(native.map(comparable), JSON.stringify(o)).toEqual(reference.map(comparable));
    // Paged to the end: every match exactly once.
    const ids = native.flat().map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    const all = evaluateQuery(unpaged(resolveQuery(o)), live.values()) as DatumHeader[];
    expect(ids.sort()).toEqual(all.map((d) => d.id).sort());
  }
  const { order: _o, limit: _l, select: _s, cursor: _c, ...filter } = options;
  const q = resolveQuery(filter, { paged: false });
  expect(await a.count?.(q)).toBe(countQuery(q, live.values()));
}

interface Tier {
  readonly name: string;
  readonly options: MemoryOptions;
}

const TIERS: readonly Tier[] = [
  { name: "memory", options: {} },
  { name: "memory, copy: false", options: { copy: false } },
  { name: "memory, maxDatums: 9 (evicting)", options: { maxDatums: 9 } },
  { name: "memory, indexTags: role, k%", options: { indexTags: ["role", "k%"] } },
  { name: "memory, maxDatums: 9, indexTags: s", options: { maxDatums: 9, indexTags: ["s"] } },
];

describe.each(TIERS)("$name: native queries equal the reference", ({ options: tierOptions }) => {
  it("random datums and filters, paged to the end in both orders, before and after deletes, later puts, deleteMany (and evictions)", async () => {
    await fc.assert(
      fc.asyncProperty(arb.datums(), arb.datums(15), fc.array(fc.nat(), { maxLength: 12 }), arb.options(), arb.filter(), async (initial, later, deletions, options, doomed) => {
        const live = new Map<string, Datum>();
        let evicted = 0;
        const a = memoryAdapter(tierOptions);
        await a.open({ events: { ...SILENT_EVENTS, evicted: (d) => void (live.delete(d.id) && evicted++) } });
        // `live` first: a put may evict the datum it adds.
        const put = async (d: Datum) => {
          live.set(d.id, d);
          await a.put(d);
        };
        for (const d of initial) await put(d);
        await checkQuery(a, live, options); // builds the indexes the query names
        const ids = [...live.keys()];
        for (const k of deletions) {
          const id = ids[k % Math.max(1, ids.length)];
          if (id !== undefined && live.delete(id)) expect(await a.delete(id)).toBe(true);
        }
        for (const d of later) if (!live.has(d.id)) await put(d);
        await checkQuery(a, live, options);
        // deleteMany: exactly the matches go, and the indexes forget them.
        const q = unpaged(resolveQuery(doomed, { paged: false }));
        const expected = (evaluateQuery(q, live.values()) as DatumHeader[]).map((d) => d.id).sort();
        const deleted = await a.deleteMany?.(q);
        expect([...(deleted ?? [])].sort()).toEqual(expected);
        for (const id of expected) live.delete(id);
        await checkQuery(a, live, options);
        await checkQuery(a, live, { ...doomed, limit: 3 });
        if (tierOptions.maxDatums !== undefined) expect(live.size).toBeLessThanOrEqual(tierOptions.maxDatums);
        await a.close();
      }),
      { numRuns: RUNS },
    );
  });

  it("getMany and chainTail match get and the reference walk", async () => {
    await fc.assert(
      fc.asyncProperty(arb.datums(), fc.array(fc.nat(), { maxLength: 8 }), fc.integer({ min: 1, max: 5 }), async (datums, picks, n) => {
        const live = new Map<string, Datum>();
        const a = memoryAdapter(tierOptions);
        await a.open({ events: { ...SILENT_EVENTS, evicted: (d) => void live.delete(d.id) } });
        for (const d of datums) {
          live.set(d.id, d);
          await a.put(d);
        }
        const pool = [...datums.map((d) => d.id), "absent"];
        const ids = picks.map((k) => pool[k % pool.length] as string);
        const many = await a.getMany?.(ids);
        expect(many?.map((d) => d?.id ?? null)).toEqual(ids.map((id) => (live.has(id) ? id : null)));
        for (const id of ids) {
          const walked = await walkTail(id, async (x) => live.get(x) ?? null, n).then(
            (chain) => chain.map((d) => d.id),
            (error: { code?: string }) => error.code,
          );
          const native = await (a.chainTail as NonNullable<Adapter["chainTail"]>).call(a, id, n).then(
            (chain) => chain.map((d) => d.id),
            (error: { code?: string }) => error.code,
          );
          expect(native).toEqual(walked);
        }
        await a.close();
      }),
      { numRuns: RUNS },
    );
  });
});

describe("memory queries", () => {
  const datum = (id: string, createdAt: number, metadata: Record<string, string> = {}, causalParent: string | null = null): Datum => ({
    id,
    createdAt,
    causalParent,
    metadata,
    content: new TextEncoder().encode(`content of ${id}`),
  });

  it("declares native, indexed queries", () => {
    const a = memoryAdapter();
    expect(a.capabilities.query).toBe(true);
    expect(a.capabilities.queryCost).toBe("indexed");
  });

  it("indexTags must be a list of distinct tag names", () => {
    for (const bad of [["role", "role"], [""], "role", [1]]) {
      expect(() => memoryAdapter({ indexTags: bad as never })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
    expect(memoryAdapter({ indexTags: ["role", "thread"] }).capabilities.queryCost).toBe("indexed");
  });

  it("meta and ids return headers without content; with copies, mutating one changes nothing stored", async () => {
    const a = memoryAdapter();
    await a.open();
    await a.put(datum("a", 1, { role: "user" }));
    for (const select of ["meta", "ids"] as const) {
      const [header] = (await a.query?.(resolveQuery({ where: { role: "user" }, select }))) as DatumHeader[];
      expect(header).toEqual({ id: "a", createdAt: 1, causalParent: null, metadata: { role: "user" } });
      expect(header && "content" in header).toBe(false);
      (header?.metadata as Record<string, string>).role = "agent";
    }
    expect((await a.get("a"))?.metadata).toEqual({ role: "user" });
    expect(await a.count?.(resolveQuery({ where: { role: "user" } }, { paged: false }))).toBe(1);
    await a.close();
  });

  it("indexes built by a query follow later puts, deletes and evictions (a bounded tier)", async () => {
    const evicted: string[] = [];
    const a = memoryAdapter({ maxDatums: 3 });
    await a.open({ events: { ...SILENT_EVENTS, evicted: (d) => void evicted.push(d.id) } });
    const q = resolveQuery({ where: { role: "user" }, select: "ids" });
    const children = resolveQuery({ parent: "p", select: "ids" });
    await a.put(datum("p", 1));
    expect(await a.query?.(q)).toEqual([]);
    expect(await a.query?.(children)).toEqual([]);
    await a.put(datum("c1", 2, { role: "user" }, "p"));
    await a.put(datum("c2", 3, { role: "agent" }, "p"));
    expect(((await a.query?.(q)) as DatumHeader[]).map((d) => d.id)).toEqual(["c1"]);
    expect(((await a.query?.(children)) as DatumHeader[]).map((d) => d.id)).toEqual(["c2", "c1"]);
    await a.put(datum("c3", 4, { role: "user" }, "p")); // evicts p, the oldest
    await a.put(datum("c4", 5, { role: "agent" })); // evicts c1
    expect(evicted).toEqual(["p", "c1"]);
    expect(((await a.query?.(q)) as DatumHeader[]).map((d) => d.id)).toEqual(["c3"]);
    expect(((await a.query?.(children)) as DatumHeader[]).map((d) => d.id)).toEqual(["c3", "c2"]);
    expect(await a.count?.(resolveQuery({ where: { role: { exists: true } } }, { paged: false }))).toBe(3);
    expect(await a.deleteMany?.(unpaged(resolveQuery({ parent: "p" }, { paged: false })))).toEqual(expect.arrayContaining(["c2", "c3"]));
    expect(await a.count?.(resolveQuery({}, { paged: false }))).toBe(1);
    expect(((await a.query?.(children)) as DatumHeader[]).length).toBe(0);
    await a.close();
  });

  it("a failed putMany leaves no trace in the indexes", async () => {
    const a = memoryAdapter();
    await a.open();
    await a.put(datum("x", 1, { role: "user" }));
    expect(await a.count?.(resolveQuery({ where: { role: "user" } }, { paged: false }))).toBe(1);
    await expect(a.putMany?.([datum("y", 2, { role: "user" }), datum("x", 1, { role: "agent" })])).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect(((await a.query?.(resolveQuery({ where: { role: "user" }, select: "ids" }))) as DatumHeader[]).map((d) => d.id)).toEqual(["x"]);
    await a.close();
  });

  it("chainTail walks only n steps of a chain longer than the depth limit", async () => {
    const a = memoryAdapter({ copy: false });
    await a.open();
    const n = 12_000; // past DEFAULT_MAX_CHAIN_DEPTH (10 000)
    let parent: string | null = null;
    for (let i = 0; i < n; i++) {
      const d = datum(`s${i}`, i, {}, parent);
      await a.put(d);
      parent = d.id;
    }
    const tail = await a.chainTail?.(`s${n - 1}`, 20);
    expect(tail?.map((d) => d.id)).toEqual(Array.from({ length: 20 }, (_, k) => `s${n - 20 + k}`));
    expect(await a.chainTail?.("absent", 5)).toEqual([]);
    await a.put(datum("loop-a", 1, {}, "loop-b"));
    await a.put(datum("loop-b", 2, {}, "loop-a"));
    await expect(a.chainTail?.("loop-a", 3)).rejects.toMatchObject({ code: "DGENT_CAUSAL_CYCLE" });
    expect((await a.chainTail?.("loop-a", 2))?.map((d) => d.id)).toEqual(["loop-b", "loop-a"]);
    await a.close();
  });
});
