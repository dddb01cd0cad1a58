/**
 * The fulltext suite on Postgres, both paths: `simple` (impact-ordered postings tables in the
 * store's schema, BM25, threshold top-k) and a stemming configuration (`english`: a tsvector
 * column with a GIN index, ranked by ts_rank_cd). The top-k of the postings path is checked
 * against an exhaustive BM25 ranking (tokens.ts) of the same datums, with filters, after deletes
 * and re-puts.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type PluginUse, type Store } from "../../core/store.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { fulltextPlugin, textIndex, type FulltextOptions } from "./index.js";
import { resolveQuery, type QueryFilter } from "../../core/query.js";
import { postgresImpactSql, postgresSql, PostgresImpactStorage, sqlArray, withSessionSettings } from "./storage.js";
import { InvertedIndex, queryTerms, type Hit } from "./tokens.js";
import { runFulltextSuite, type Framework } from "./suite.js";

let server: PostgresServer;
const schemas: string[] = [];
const namespaces = new WeakMap<object, string>();

beforeAll(async () => {
  server = await startPostgres();
}, 300_000);
afterAll(async () => {
  for (const s of schemas) if (server) await dropSchema(server, s);
  await server?.close();
});

function pgStore(namespace: string, options: FulltextOptions | null, extra: ReadonlyArray<unknown> = []): Store {
  const plugins = [...(options ? [fulltextPlugin({ ...options, postgresUrl: server.url })] : []), ...(extra as PluginUse<never>[])];
  const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], plugins });
  namespaces.set(store, namespace);
  return store;
}

runFulltextSuite(
  {
    name: "postgres (impact-ordered postings, BM25)",
    storage: "postgres",
    create(o, extra) {
      const namespace = freshSchema("fulltext");
      schemas.push(namespace);
      return pgStore(namespace, o, extra);
    },
    reopen: (previous, o) => pgStore(namespaces.get(previous) as string, o),
  },
  { describe, it, expect } as unknown as Framework,
  (line) => process.stdout.write(`${line}\n`),
);

const english = (o: FulltextOptions | null): FulltextOptions | null => (o ? { ...o, language: "english" } : null);
runFulltextSuite(
  {
    name: "postgres english (tsvector + GIN, ts_rank_cd)",
    storage: "postgres",
    create(o, extra) {
      const namespace = freshSchema("fulltext_en");
      schemas.push(namespace);
      return pgStore(namespace, english(o), extra);
    },
    reopen: (previous, o) => pgStore(namespaces.get(previous) as string, english(o)),
  },
  { describe, it, expect } as unknown as Framework,
  (line) => process.stdout.write(`${line}\n`),
);

/** Seeded documents: Zipfian words from a small vocabulary, so that many hold two or more query words and many tie. */
function seeded(count: number, vocab: number, seed0: number, minLen = 3, spread = 10): Array<{ id: string; text: string }> {
  let seed = seed0;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const cdf: number[] = [];
  let total = 0;
  for (let i = 0; i < vocab; i++) cdf.push((total += 1 / (i + 1)));
  const word = () => {
    const r = rand() * total;
    const i = cdf.findIndex((c) => c >= r);
    return `w${i < 0 ? vocab - 1 : i}`;
  };
  return Array.from({ length: count }, (_, i) => ({ id: `doc/${String(i).padStart(4, "0")}`, text: Array.from({ length: minLen + Math.floor(rand() * spread) }, word).join(" ") }));
}

/** Equal to the exhaustive ranking: same scores (to 1e-9), same ids; within a tie at the cut, any of the tied. */
function expectSameTop(actual: Hit[], full: Hit[], k: number, label: string): void {
  const want = full.slice(0, k);
  expect({ label, n: actual.length }).toEqual({ label, n: want.length });
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
  for (let i = 0; i < want.length; i++) {
    const a = actual[i] as Hit;
    const e = want[i] as Hit;
    expect({ label, i, close: close(a.score, e.score) }).toEqual({ label, i, close: true });
    if (a.id !== e.id) {
      // Only a tie may swap: the id returned has the same exhaustive score.
      const mine = full.find((h) => h.id === a.id);
      expect({ label, i, id: a.id, tied: mine !== undefined && close(mine.score, e.score) }).toEqual({ label, i, id: a.id, tied: true });
    }
  }
  expect(new Set(actual.map((h) => h.id)).size).toBe(actual.length);
}

async function pinnedAvgdl(namespace: string): Promise<number> {
  const { rows } = await server.query(`SELECT avgdl FROM "${namespace}".dgent_fulltext_meta`);
  return Number((rows[0] as { avgdl: number }).avgdl);
}

describe("the impact-ordered top-k on Postgres equals an exhaustive BM25 ranking", () => {
  it("unfiltered and filtered, 1 to 6 words, after deletes and re-puts", async () => {
    const namespace = freshSchema("fulltext_exact");
    schemas.push(namespace);
    const store = pgStore(namespace, {});
    try {
      const text = await textIndex(store);
      const docs = seeded(1500, 120, 7);
      const live = new Map(docs.map((d) => [d.id, d.text]));
      await store.putMany(docs.map((d) => makeDatum({ id: d.id, content: d.text, metadata: { odd: Number(d.id.slice(4)) % 2 === 1 ? "yes" : "no" }, createdAt: 1_700_000_000_000 + Number(d.id.slice(4)) })));
      // Deletes, and re-puts with other (longer) texts: df, lengths and the average move.
      const more = seeded(300, 120, 99, 10, 12);
      for (let i = 0; i < 300; i++) {
        const id = `doc/${String(i * 5).padStart(4, "0")}`;
        await store.delete(id);
        live.delete(id);
        if (i % 3 !== 0) {
          const t = (more[i] as { text: string }).text;
          await store.put(makeDatum({ id, content: t, metadata: { odd: (i * 5) % 2 === 1 ? "yes" : "no" } }));
          live.set(id, t);
        }
      }
      const exhaustive = new InvertedIndex();
      const headers = new Map<string, { id: string; createdAt: number; metadata: Record<string, unknown> }>();
      for (const [id, t] of live) {
        const h = { id, createdAt: 0, metadata: { odd: Number(id.slice(4)) % 2 === 1 ? "yes" : "no" } };
        headers.set(id, h);
        exhaustive.set(h as never, t);
      }
      const avgdl = await pinnedAvgdl(namespace);
      const queries = ["w3", "w0 w1", "w5 w9", "w20 w40", "w2 w7 w11", "w60 w80 w100 w119", "w1 w4 w8 w16 w32 w64", "w30 w31", "nothing here", "w3 nothing"];
      let checked = 0;
      for (const query of queries) {
        const terms = queryTerms(query);
        for (const k of [1, 3, 10, 50]) {
          expectSameTop(await text.search(query, { k }), exhaustive.search(terms, 100_000, null, avgdl), k, `${query} k=${k}`);
          const filters: QueryFilter[] = [{ where: { odd: "yes" } }, { prefix: "doc/01" }];
          for (const filter of filters) {
            const q = resolveQuery(filter, { paged: false });
            expectSameTop(await text.search(query, { k, filter }), exhaustive.search(terms, 100_000, q, avgdl), k, `${query} k=${k} ${JSON.stringify(filter)}`);
          }
          checked++;
        }
      }
      expect(checked).toBe(queries.length * 4);
    } finally {
      await store.close();
    }
  }, 300_000);

  it("stays exact when the average length moves, and re-bases its avgdl after a bulk catch-up (the storage directly)", async () => {
    const namespace = freshSchema("fulltext_deep");
    schemas.push(namespace);
    const storage = await PostgresImpactStorage.open(server.url, namespace);
    try {
      // Short documents first, then long ones: the live average length moves from ~3 to ~8; past 5 000 datums the
      // index keeps its avgdl until optimize (a bulk catch-up) re-bases it.
      const docs = [...seeded(5000, 40, 3, 2, 3), ...seeded(1500, 40, 5, 20, 10).map((d) => ({ ...d, id: `late/${d.id}` }))];
      const exhaustive = new InvertedIndex();
      for (let i = 0; i < docs.length; i += 500) {
        const batch = docs.slice(i, i + 500).map((d) => ({ header: { id: d.id, createdAt: 1 } as never, text: d.text }));
        await storage.putMany(batch);
      }
      for (const d of docs) exhaustive.set({ id: d.id, createdAt: 1 } as never, d.text);
      const live = docs.reduce((sum, d) => sum + d.text.split(" ").length, 0) / docs.length;
      const check = async (avgdl: number, label: string) => {
        for (const query of ["w0", "w0 w1", "w10 w20", "w1 w2 w3", "w39"]) {
          for (const k of [5, 40, 200]) {
            const terms = queryTerms(query);
            expectSameTop(await storage.search(terms, k, null), exhaustive.search(terms, 100_000, null, avgdl), k, `${label} ${query} k=${k}`);
            expect(storage.lastTrace?.depth).toBeGreaterThanOrEqual(k);
          }
        }
      };
      const before = await pinnedAvgdl(namespace);
      expect(before).toBeLessThan(live / 1.5);
      await check(before, "before optimize");
      await storage.optimize();
      const after = await pinnedAvgdl(namespace);
      expect(Math.abs(after - live)).toBeLessThan(1e-9);
      await check(after, "after optimize");
    } finally {
      await storage.close();
    }
  }, 300_000);
});

describe("fulltext over Postgres", () => {
  it("keeps a simple-configuration index in impact-ordered postings tables of the store's schema", async () => {
    const namespace = freshSchema("fulltext_post");
    schemas.push(namespace);
    const store = pgStore(namespace, {});
    try {
      const text = await textIndex(store);
      await store.put(makeDatum({ id: "p", content: "Postgres keeps the words, the Café's words" }));
      expect((await text.search("CAFE words")).map((h) => h.id)).toEqual(["p"]);
      const pool = new pg.Pool({ connectionString: server.url, max: 1 });
      try {
        const { rows } = await pool.query("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'dgent_fulltext_postings'", [namespace]);
        expect(rows.some((r: { indexdef: string }) => /\(term, impact DESC, id\)/.test(r.indexdef))).toBe(true);
        const { rows: posts } = await pool.query(`SELECT term, tf, len FROM "${namespace}".dgent_fulltext_postings ORDER BY term`);
        expect(posts).toEqual([
          { term: "cafe", tf: 1, len: 8 },
          { term: "keeps", tf: 1, len: 8 },
          { term: "postgres", tf: 1, len: 8 },
          { term: "s", tf: 1, len: 8 },
          { term: "the", tf: 2, len: 8 },
          { term: "words", tf: 2, len: 8 },
        ]);
        const { rows: df } = await pool.query(`SELECT term, df FROM "${namespace}".dgent_fulltext_terms WHERE df > 0 ORDER BY term`);
        expect(df.map((r: { term: string }) => r.term)).toEqual(["cafe", "keeps", "postgres", "s", "the", "words"]);
        // A filtered search writes the ids into its statement: quotes and backslashes stay data.
        await store.put(makeDatum({ id: "it's\\odd", content: "odd words" }));
        expect(await text.search("words", { filter: { prefix: "it's\\" } })).toEqual([expect.objectContaining({ id: "it's\\odd" })]);
        expect(sqlArray(["a'b", "c\\d"])).toBe("ARRAY['a''b',E'c\\\\d']::text[]");
        await store.delete("it's\\odd");
        await store.delete("p");
        const { rows: after } = await pool.query(`SELECT (SELECT count(*)::int FROM "${namespace}".dgent_fulltext_postings) AS p, (SELECT count(*)::int FROM "${namespace}".dgent_fulltext_terms WHERE df <> 0) AS t, (SELECT n::int FROM "${namespace}".dgent_fulltext_meta) AS n`);
        expect(after).toEqual([{ p: 0, t: 0, n: 0 }]);
      } finally {
        await pool.end();
      }
    } finally {
      await store.close();
    }
  }, 300_000);

  it("keeps a stemming-configuration index in a GIN-indexed tsvector table of the store's schema", async () => {
    const namespace = freshSchema("fulltext_gin");
    schemas.push(namespace);
    const store = pgStore(namespace, { language: "english" });
    try {
      const text = await textIndex(store);
      await store.put(makeDatum({ id: "p", content: "postgres keeps the words" }));
      expect((await text.search("word")).map((h) => h.id)).toEqual(["p"]);
      const pool = new pg.Pool({ connectionString: server.url, max: 1 });
      try {
        const { rows } = await pool.query("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'dgent_fulltext'", [namespace]);
        expect(rows.some((r: { indexdef: string }) => /USING gin \(body\)/.test(r.indexdef))).toBe(true);
        const { rows: docs } = await pool.query(`SELECT id, body::text AS body FROM "${namespace}".dgent_fulltext`);
        expect(docs).toEqual([{ id: "p", body: "'keep':2 'postgr':1 'word':4" }]);
      } finally {
        await pool.end();
      }
    } finally {
      await store.close();
    }
  }, 300_000);

  it("two processes' indexes share the tables: each finds the other's writes, and the counts agree under concurrent writes", async () => {
    const namespace = freshSchema("fulltext_two");
    schemas.push(namespace);
    const a = pgStore(namespace, {});
    const b = pgStore(namespace, {});
    try {
      const ta = await textIndex(a);
      const tb = await textIndex(b);
      await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => a.put(makeDatum({ id: `a/${i}`, content: `shared apple ${i % 3 === 0 ? "pear" : "plum"}` }))),
        ...Array.from({ length: 40 }, (_, i) => b.put(makeDatum({ id: `b/${i}`, content: `shared berry ${i % 3 === 0 ? "pear" : "plum"} words` }))),
      ]);
      expect((await tb.search("apple", { k: 100 })).length).toBe(40);
      expect((await ta.search("berry", { k: 100 })).length).toBe(40);
      await b.delete("a/0");
      expect((await ta.search("apple", { k: 100 })).map((h) => h.id)).not.toContain("a/0");
      const { rows } = await server.query(`SELECT (SELECT n::int FROM "${namespace}".dgent_fulltext_meta) AS n, (SELECT total_len::int FROM "${namespace}".dgent_fulltext_meta) AS len, (SELECT df FROM "${namespace}".dgent_fulltext_terms WHERE term = 'pear') AS pear, (SELECT df FROM "${namespace}".dgent_fulltext_terms WHERE term = 'shared') AS shared`);
      // 79 datums: 39 of 3 words, 40 of 4; "pear" in a/3…a/39 (13) and b/0…b/39 (14).
      expect(rows).toEqual([{ n: 79, len: 39 * 3 + 40 * 4, pear: 13 + 14, shared: 79 }]);
    } finally {
      await a.close();
      await b.close();
    }
  }, 300_000);

  it("without postgresUrl the index is kept in process, and says so", async () => {
    const namespace = freshSchema("fulltext_nourl");
    schemas.push(namespace);
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], plugins: [fulltextPlugin({})] });
    try {
      const text = await textIndex(store);
      expect(text.stats().storage).toBe("memory");
      expect(text.stats().storageNote).toMatch(/postgresUrl/);
    } finally {
      await store.close();
    }
  }, 300_000);

  it("quotes the schema and the configuration in its statements", () => {
    const sql = postgresSql('we"ird', "simple");
    expect(sql.create[1]).toContain('"we""ird"."dgent_fulltext"');
    expect(sql.search).toContain("to_tsquery('simple'::regconfig, $1)");
    const impact = postgresImpactSql('we"ird');
    expect(impact.create[1]).toContain('"we""ird"."dgent_fulltext_docs"');
    expect(impact.search(2)).toContain('"we""ird"."dgent_fulltext_postings"');
  });
});

describe("the index's own Postgres sessions", () => {
  it("carry their settings from the connection's start (libpq options), keeping options the URL already has", async () => {
    const withPrior = new URL(server.url);
    withPrior.searchParams.set("options", "-c application_name=fulltext-probe");
    const client = new pg.Client(withSessionSettings(withPrior.toString(), "-c plan_cache_mode=force_generic_plan -c jit=off"));
    await client.connect();
    try {
      const r = await client.query<{ p: string; j: string; a: string }>(
        "SELECT current_setting('plan_cache_mode') AS p, current_setting('jit') AS j, current_setting('application_name') AS a",
      );
      expect(r.rows[0]).toEqual({ p: "force_generic_plan", j: "off", a: "fulltext-probe" });
    } finally {
      await client.end();
    }
    expect(withSessionSettings("not a url", "-c jit=off")).toBe("not a url");
  });
});
