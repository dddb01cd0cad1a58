/**
 * The shared index on its own, with tiny chunks so every chunk boundary (splits, merges, walks
 * across chunks, seeks landing at a chunk's end) is reached by small data: the sorted list against
 * a sorted array, and the query index against core's reference evaluation through random puts,
 * deletes and queries, with every kind of plan seen.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Datum } from "../../core/datum.js";
import { compareIds } from "../../core/order.js";
import { countQuery, evaluateQuery, resolveQuery, unpaged, type DatumHeader } from "../../core/query.js";
import type { IndexedEntry } from "./entry.js";
import { pageThrough, QUERY_VALUES, queryArbitraries, referenceAnswer } from "./query-check.js";
import { QueryIndex } from "./query-index.js";
import { SortedList } from "./sorted-list.js";

const arb = queryArbitraries(fc);

describe("SortedList", () => {
  it("holds what a sorted array holds through inserts and removes; seeks, walks both ways and counts ranges alike", () => {
    const op = fc.oneof(fc.record({ add: fc.integer({ min: 0, max: 60 }) }), fc.record({ remove: fc.integer({ min: 0, max: 60 }) }));
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.array(op, { maxLength: 200 }), fc.integer({ min: -1, max: 61 }), fc.integer({ min: -1, max: 61 }), (chunk, ops, a, b) => {
        const list = new SortedList<number>((x, y) => x - y, chunk);
        const model = new Set<number>();
        for (const o of ops) {
          if ("add" in o) {
            if (!model.has(o.add)) {
              list.insert(o.add);
              model.add(o.add);
            }
          } else {
            expect(list.remove(o.remove)).toBe(model.delete(o.remove));
          }
        }
        const sorted = [...model].sort((x, y) => x - y);
        expect(list.toArray()).toEqual(sorted);
        expect(list.size).toBe(sorted.length);
        expect(list.first()).toBe(sorted[0]);
        expect(list.last()).toBe(sorted.at(-1));
        const from = list.seek((x) => x >= a);
        const to = list.seek((x) => x >= b);
        const inRange = sorted.filter((x) => x >= a && x < b);
        const drain = (ascending: boolean) => {
          const out: number[] = [];
          const w = list.walk(from, to, ascending);
          for (let x = w.next(); x !== undefined; x = w.next()) out.push(x);
          return out;
        };
        expect(drain(true)).toEqual(inRange);
        expect(drain(false)).toEqual([...inRange].reverse());
        expect(list.countBetween(from, to)).toBe(inRange.length);
        // The O(1) estimate planning uses: zero exactly when the range is empty, exact within a chunk.
        const estimate = list.estimateBetween(from, to);
        expect(estimate === 0).toBe(inRange.length === 0);
        if (from.c === to.c) expect(estimate).toBe(inRange.length);
      }),
      { numRuns: 500 },
    );
  });
});

interface Entry extends IndexedEntry {
  readonly datum: Datum;
}

const entryOf = (d: Datum): Entry => ({ id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata, datum: d });

describe("QueryIndex", () => {
  it("pages, counts and matches as the reference does, through puts, deletes and replacements, with every kind of plan", async () => {
    const sources = new Set<string>();
    const step = fc.oneof(
      { weight: 3, arbitrary: arb.datums(12).map((put) => ({ put })) },
      { weight: 2, arbitrary: fc.array(fc.nat(), { maxLength: 6 }).map((remove) => ({ remove })) },
      { weight: 3, arbitrary: arb.options().map((query) => ({ query })) },
      { weight: 1, arbitrary: arb.filter().map((deleteMatching) => ({ deleteMatching })) },
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 5 }), fc.subarray(["role", "s", "k%"]), arb.datums(12), fc.array(step, { minLength: 1, maxLength: 12 }), async (chunk, tags, first, rest) => {
        const steps = [{ put: first }, ...rest];
        // Some keys indexed from the start, the others by the first query naming them.
        const index = new QueryIndex<Entry>({ chunk, tags });
        const live = new Map<string, Datum>();
        for (const s of steps) {
          if ("put" in s) {
            // New ids are inserted; a held id is replaced (what JSONL's replay and transactions do).
            for (const d of s.put) {
              index.set(entryOf(d));
              live.set(d.id, d);
            }
          } else if ("remove" in s) {
            const ids = [...live.keys()];
            for (const k of s.remove) {
              const id = ids[k % Math.max(1, ids.length)];
              if (id === undefined) continue;
              expect(index.delete(id)?.id).toBe(live.delete(id) ? id : undefined);
            }
          } else if ("deleteMatching" in s) {
            // deleteAll: one by one when few, in one pass per list when many.
            const q = unpaged(resolveQuery(s.deleteMatching, { paged: false }));
            const doomed = index.matching(q);
            expect(doomed.map((e) => e.id).sort(compareIds)).toEqual((evaluateQuery(q, live.values()) as DatumHeader[]).map((d) => d.id).sort(compareIds));
            index.deleteAll(doomed);
            for (const e of doomed) live.delete(e.id);
            expect(index.count(q)).toBe(0);
          } else {
            const answer = (q: Parameters<typeof index.query>[0]) => index.query(q).map((e) => e.datum);
            for (const order of ["newest", "oldest"] as const) {
              const options = { ...s.query, order, select: "full" as const };
              const native = await pageThrough(answer, options);
              const reference = await pageThrough(referenceAnswer(live.values()), options);
              expect(native.map((p) => p.map((d) => d.id))).toEqual(reference.map((p) => p.map((d) => d.id)));
              sources.add(index.explain(resolveQuery(options)).source.split(" ").filter((w, i) => i !== 1).join(" "));
            }
            const { order: _o, limit: _l, select: _s, ...filter } = s.query;
            const q = unpaged(resolveQuery(filter, { paged: false }));
            expect(index.count(q)).toBe(countQuery(q, live.values()));
            expect(index.matching(q).map((e) => e.id).sort(compareIds)).toEqual((evaluateQuery(q, live.values()) as DatumHeader[]).map((d) => d.id).sort(compareIds));
          }
          expect(index.size).toBe(live.size);
          // Every posting list of the keys indexed so far holds exactly the live entries.
          for (const key of index.built().tags) {
            for (const filter of [{ exists: true }, { exists: false }, ...QUERY_VALUES]) {
              const q = resolveQuery({ where: { [key]: filter }, limit: 1000, select: "ids" });
              expect(index.query(q).map((e) => e.id)).toEqual((evaluateQuery(q, live.values()) as DatumHeader[]).map((d) => d.id));
              expect(index.count(q)).toBe(countQuery(q, live.values()));
            }
          }
          if (index.built().parents) {
            for (const parent of new Set([...live.values()].map((d) => d.causalParent))) {
              if (parent === null) continue;
              const q = resolveQuery({ parent, limit: 1000, select: "ids" });
              expect(index.query(q).map((e) => e.id)).toEqual((evaluateQuery(q, live.values()) as DatumHeader[]).map((d) => d.id));
            }
          }
        }
      }),
      { numRuns: 400 },
    );
    // The runs reached every common kind of plan (tag sources are named without their key here).
    expect([...sources].sort()).toEqual(expect.arrayContaining(["empty", "ids", "parent", "tag", "time"]));
  });

  it("chooses the smallest source: a rare tag value over the time order, a parent's children, a narrow prefix's id range", () => {
    const index = new QueryIndex<Entry>();
    for (let i = 0; i < 2000; i++) {
      const d: Datum = {
        id: `t${i % 20}/${String(i).padStart(5, "0")}`,
        createdAt: i,
        causalParent: i % 100 === 0 ? null : `t0/${String(i - (i % 100)).padStart(5, "0")}`,
        metadata: { role: i % 1000 === 7 ? "rare" : ["user", "agent"][i % 2] as string },
        content: new Uint8Array(),
      };
      index.insert(entryOf(d));
    }
    const explain = (o: Parameters<typeof resolveQuery>[0]) => index.explain(resolveQuery(o));
    expect(explain({})).toEqual({ source: "time", size: 2000, exact: true });
    expect(explain({ where: { role: "rare" } })).toEqual({ source: "tag role", size: 2, exact: true });
    expect(explain({ where: { role: { in: ["rare", "user"] } }, prefix: "t1" })).toMatchObject({ source: "tag role", size: 1002, exact: false });
    expect(explain({ parent: "t0/00100" })).toEqual({ source: "parent", size: 99, exact: true });
    expect(explain({ prefix: "t3/" })).toEqual({ source: "ids", size: 100, exact: false });
    expect(explain({ where: { role: "none" } }).source).toBe("empty");
    // A broad prefix (11 of 20 threads) and a few wanted: walking the time order finds them sooner than sorting 1100.
    expect(explain({ prefix: "t1", limit: 10 })).toMatchObject({ source: "time", exact: false });
    // Counting the same prefix (unpaged) visits only its id range.
    expect(index.explain(unpaged(resolveQuery({ prefix: "t1" }, { paged: false })))).toMatchObject({ source: "ids", size: 1100 });
    // Existence walks the entries holding the key; so does a prefix matching more values than are merged.
    expect(explain({ where: { role: { exists: true } } })).toEqual({ source: "tag role present", size: 2000, exact: true });
    expect(explain({ where: { role: { prefix: "" } }, parent: "t0/00100" })).toMatchObject({ source: "parent" });
    expect(explain({ where: { role: { prefix: "r" } } })).toEqual({ source: "tag role", size: 2, exact: true });
  });
});
