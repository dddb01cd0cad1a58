import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeDatum, type Datum, type MakeDatumInput } from "../../core/datum.js";
import type { Adapter } from "../../core/protocol.js";
import { memoryAdapter } from "../memory/index.js";
import { sqliteAdapter } from "./index.js";
import { prefixRange } from "./keys.js";
import { referenceList } from "../../test/references.js";

const datum = (id: string, extra: Partial<MakeDatumInput> = {}): Datum =>
  makeDatum({ content: `content of ${id}`, createdAt: 1_000, ...extra, id });

/** Characters around every boundary where UTF-8 byte order and UTF-16 unit order could part. */
const CHARS = ["a", "b", "/", "é", "\ud7ff", "\ue000", "\uffff", "\u{10000}", "😀", "\u{10ffff}"];
/** Prefix pieces also include lone surrogates, which `startsWith` can match or not. */
const PREFIX_CHARS = [...CHARS, "\ud83d", "\udbff", "\ude00"];

const idArb = fc.array(fc.constantFrom(...CHARS), { minLength: 1, maxLength: 4 }).map((cs) => cs.join(""));
const prefixArb = fc.array(fc.constantFrom(...PREFIX_CHARS), { maxLength: 3 }).map((cs) => cs.join(""));

async function both(ds: readonly Datum[]): Promise<[Adapter, Adapter]> {
  const mem = memoryAdapter();
  const sql = sqliteAdapter({ path: ":memory:" });
  await mem.open();
  await sql.open();
  for (const d of ds) await mem.put(d);
  await sql.putMany(ds);
  return [mem, sql];
}

const idsOf = (ds: readonly Datum[]) => ds.map((d) => d.id);

describe("sqlite: prefix ranges", () => {
  it("turn a prefix into [prefix, successor) in code-point order", () => {
    expect(prefixRange("ab")).toEqual({ lower: "ab", upper: "ac" });
    expect(prefixRange("a\ud7ff")).toEqual({ lower: "a\ud7ff", upper: "a\ue000" });
    expect(prefixRange("a\uffff")).toEqual({ lower: "a\uffff", upper: "a\u{10000}" });
    expect(prefixRange("a😀")).toEqual({ lower: "a😀", upper: "a\u{1f601}" });
    expect(prefixRange("a\u{10ffff}")).toEqual({ lower: "a\u{10ffff}", upper: "b" });
    expect(prefixRange("\u{10ffff}\u{10ffff}")).toEqual({ lower: "\u{10ffff}\u{10ffff}", upper: null });
  });

  it("match the astral characters a trailing high surrogate starts, and nothing for other lone halves", () => {
    expect(prefixRange("x\ud83d")).toEqual({ lower: "x\u{1f400}", upper: "x\u{1f800}" });
    expect(prefixRange("\udbff")).toEqual({ lower: "\u{10fc00}", upper: null });
    expect(prefixRange("\ude00")).toBeNull();
    expect(prefixRange("\ud83dx")).toBeNull();
  });
});

describe("sqlite: list agrees with the memory tier and the reference order", () => {
  it("on random unicode ids, ties, prefixes, after and limits (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.record({ id: idArb, t: fc.integer({ min: 1, max: 3 }) }), {
          selector: (r) => r.id,
          maxLength: 40,
        }),
        fc.array(fc.record({ prefix: prefixArb, after: fc.constantFrom(-1, 1, 2), limit: fc.integer({ min: 1, max: 12 }) }), {
          minLength: 1,
          maxLength: 5,
        }),
        async (rows, queries) => {
          const [mem, sql] = await both(rows.map((r) => datum(r.id, { createdAt: r.t })));
          const stored = rows.map((r) => ({ id: r.id, createdAt: r.t }));
          for (const q of queries) {
            const want = referenceList(stored, q).map((d) => d.id);
            expect(idsOf(await sql.list(q)), JSON.stringify(q)).toEqual(want);
            expect(idsOf(await mem.list(q)), JSON.stringify(q)).toEqual(want);
          }
          await mem.close();
          await sql.close();
        },
      ),
      { numRuns: 400 },
    );
  });

  it("with a narrow prefix (read by id) and a broad one (read by time) over many rows", async () => {
    const ds: Datum[] = [];
    for (let i = 0; i < 3000; i++) {
      const group = i % 3 === 0 ? "broad/" : `narrow${i % 97}/`;
      ds.push(datum(`${group}${String(i).padStart(5, "0")}`, { createdAt: 1000 + (i % 500), metadata: { i: String(i) } }));
    }
    const [mem, sql] = await both(ds);
    for (const q of [
      { prefix: "narrow5/", after: -1, limit: 100 },
      { prefix: "narrow5/", after: 1400, limit: 3 },
      { prefix: "broad/", after: -1, limit: 100 },
      { prefix: "broad/", after: 1490, limit: 100 },
      { prefix: "b", after: -1, limit: 1000 },
      { prefix: "", after: 1200, limit: 50 },
      { prefix: "zzz", after: -1, limit: 10 },
    ]) {
      const expected = await mem.list(q);
      const got = await sql.list(q);
      expect(idsOf(got), JSON.stringify(q)).toEqual(idsOf(expected));
      expect(got.map((d) => d.metadata.i)).toEqual(expected.map((d) => d.metadata.i));
    }
    expect((await sql.list({ prefix: "broad/", after: -1, limit: 5 })).length).toBe(5);
    await mem.close();
    await sql.close();
  });
});
