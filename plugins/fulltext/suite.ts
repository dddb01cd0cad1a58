/**
 * The fulltext suite, run on each storage through the store API (memory, SQLite, Postgres):
 * ranking on the labelled set (nDCG@10 for text, vector and hybrid side by side), filters during
 * search, deletes, restart, catch-up, bad options. Takes the test framework as an argument: this
 * folder does not import the kit.
 */
import { makeDatum } from "../../core/datum.js";
import type { Store } from "../../core/store.js";
import { hashingEmbedder, recallPlugin, vectorMemory } from "../recall/index.js";
import { hybridSearch, textIndex, type FulltextOptions } from "./index.js";
import { DOCS, ndcg, QUERIES } from "./labelled.js";

export interface Framework {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeout?: number): void;
  expect: (value: unknown) => {
    toBe(v: unknown): void;
    toEqual(v: unknown): void;
    toBeGreaterThanOrEqual(n: number): void;
    toBeGreaterThan(n: number): void;
    toContain(v: unknown): void;
    not: { toContain(v: unknown): void };
    rejects: { toMatchObject(v: unknown): Promise<void> };
  };
}

export interface Target {
  readonly name: string;
  readonly storage: string;
  /** A new store with the fulltext plugin (and others given). */
  create(options: FulltextOptions, extra?: ReadonlyArray<unknown>): Store;
  /** The same data, a new store (a restart); `null`: without the fulltext plugin. Absent on tiers that keep nothing. */
  reopen?(previous: Store, options: FulltextOptions | null): Store;
}

/** The text nDCG@10 floor: measured 0.94–0.97 across storages on this set; a regression well below fails. */
export const TEXT_NDCG_FLOOR = 0.85;

export function runFulltextSuite(t: Target, { describe, it, expect }: Framework, report: (line: string) => void): void {
  describe(`fulltext on ${t.name}`, () => {
    it("ranks the labelled set: nDCG@10 for text, vector (hashing embedder) and hybrid", async () => {
      const store = t.create({}, [recallPlugin({ embedder: hashingEmbedder({ dimensions: 256 }), ann: false, storage: "datums" })]);
      try {
        const text = await textIndex(store);
        const vector = await vectorMemory(store);
        expect(text.stats().storage).toBe(t.storage);
        await store.putMany(DOCS.map((d) => makeDatum({ id: d.id, content: d.text, metadata: { topic: d.topic } })));
        let sum = { text: 0, vector: 0, hybrid: 0 };
        for (const q of QUERIES) {
          const th = await text.search(q.query, { k: 10 });
          const vh = await vector.search(q.query, { k: 10 });
          const hh = await hybridSearch(store, q.query, { k: 10, text, vector });
          sum = {
            text: sum.text + ndcg(th.map((h) => h.id), q.relevant),
            vector: sum.vector + ndcg(vh.map((h) => h.id), q.relevant),
            hybrid: sum.hybrid + ndcg(hh.map((h) => h.id), q.relevant),
          };
        }
        const n = QUERIES.length;
        const mean = { text: sum.text / n, vector: sum.vector / n, hybrid: sum.hybrid / n };
        report(`fulltext ${t.name}: nDCG@10 over ${n} queries — text ${mean.text.toFixed(3)}, vector ${mean.vector.toFixed(3)}, hybrid ${mean.hybrid.toFixed(3)}`);
        expect(mean.text).toBeGreaterThanOrEqual(TEXT_NDCG_FLOOR);
        expect(mean.hybrid).toBeGreaterThanOrEqual(Math.min(mean.text, mean.vector));
        // The best document of a one-answer query comes first.
        expect((await text.search("cheap flights Lisbon", { k: 1 }))[0]?.id).toBe("d07");
      } finally {
        await store.close();
      }
    }, 60_000);

    it("applies filters during the search: k results come back when k exist", async () => {
      const store = t.create({});
      try {
        const text = await textIndex(store);
        const ds = [];
        for (let i = 0; i < 300; i++) ds.push(makeDatum({ id: `doc/${String(i).padStart(4, "0")}`, content: `common word ${i % 2 === 0 ? "alpha" : "beta"} number ${i}`, metadata: { rare: i % 50 === 7 ? "yes" : "no" } }));
        await store.putMany(ds);
        // 6 datums have rare=yes, all among the lowest-ranked for "common" (all tie): a post-filter of the top 10 would miss them.
        const hits = await text.search("common", { k: 5, filter: { where: { rare: "yes" } } });
        expect(hits.length).toBe(5);
        for (const h of hits) expect(Number(h.id.slice(4)) % 50).toBe(7);
        const all = await text.search("common alpha", { k: 20, filter: { where: { rare: "yes" } } });
        expect(all.length).toBe(6);
        // alpha (even ids) ranks above beta: 7, 57, … are odd → none even here, so scores tie; prefix filter:
        const pre = await text.search("alpha", { k: 10, filter: { prefix: "doc/01" } });
        expect(pre.length).toBe(10);
        for (const h of pre) expect(h.id.startsWith("doc/01")).toBe(true);
      } finally {
        await store.close();
      }
    }, 60_000);

    it("never returns deleted datums; a datum put again after a delete is indexed anew", async () => {
      const store = t.create({});
      try {
        const text = await textIndex(store);
        await store.putMany([makeDatum({ id: "a", content: "zebra crossing" }), makeDatum({ id: "b", content: "zebra stripes" }), makeDatum({ id: "c", content: "horse" })]);
        expect((await text.search("zebra")).map((h) => h.id).sort()).toEqual(["a", "b"]);
        await store.delete("a");
        expect((await text.search("zebra")).map((h) => h.id)).toEqual(["b"]);
        // Datums are immutable: a new text under the same id is a delete and a put.
        await store.delete("b");
        await store.put(makeDatum({ id: "b", content: "giraffe neck" }));
        expect(await text.search("zebra")).toEqual([]);
        expect((await text.search("giraffe")).map((h) => h.id)).toEqual(["b"]);
        // Non-text content is skipped, not an error.
        await store.put(makeDatum({ id: "bin", content: new Uint8Array([0xff, 0xfe, 0x00, 0x80]) }));
        expect((await text.search("giraffe horse")).map((h) => h.id).sort()).toEqual(["b", "c"]);
      } finally {
        await store.close();
      }
    }, 60_000);

    const reopen = t.reopen;
    if (reopen) it("keeps the index across a restart, and catches up with writes made while nothing indexed", async () => {
      const first = t.create({});
      const text = await textIndex(first);
      await first.putMany(DOCS.map((d) => makeDatum({ id: d.id, content: d.text })));
      await first.close();
      // Writes while the plugin is not attached (as after a crash between the datum and its index entry).
      const between = reopen(first, null);
      await between.put(makeDatum({ id: "late", content: "a late arriving walrus" }));
      await between.delete("d01");
      await between.close();
      const second = reopen(first, {});
      try {
        const again = await textIndex(second);
        const report = again.stats().lastCatchUp;
        expect(report?.checked).toBe(DOCS.length); // 16 − d01 + late
        if (t.storage === "memory") expect(report?.indexed).toBe(DOCS.length);
        else expect(report?.indexed).toBe(1); // only the late one: the index persisted
        expect(report?.removed).toBe(t.storage === "memory" ? 0 : 1);
        expect((await again.search("walrus")).map((h) => h.id)).toEqual(["late"]);
        expect((await again.search("pasta")).map((h) => h.id)).not.toContain("d01");
        expect((await again.search("pasta")).map((h) => h.id)).toContain("d02");
        const full = await again.reindex({ full: true });
        expect(full.indexed).toBe(DOCS.length);
        expect((await again.search("walrus")).map((h) => h.id)).toEqual(["late"]);
      } finally {
        await second.close();
      }
      void text;
    }, 60_000);

    it("rejects bad options with coded errors", async () => {
      const store = t.create({});
      try {
        const text = await textIndex(store);
        await expect(text.search("x", { k: 0 })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
        await expect(text.search("x", { k: 1001 })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
        await expect(text.search("x", { kk: 3 } as never)).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
        await expect(text.search(42 as never)).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
        await expect(text.search("x", { filter: { after: "soon" } as never })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
        await expect(hybridSearch(store, "x", { text, vector: text, rrfK: -1 })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
        await expect(hybridSearch(store, "x", { text, vector: {} as never })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
        // No vector handle given and no recall plugin composed: the store says so.
        await expect(hybridSearch(store, "x", { text })).rejects.toMatchObject({ code: "DGENT_UNKNOWN_PLUGIN" });
      } finally {
        await store.close();
      }
    });
  });
}
