/**
 * The fulltext suite on Postgres: the index is a table with a tsvector column and a GIN index in
 * the store's schema (its own pool from `postgresUrl`), ranked by ts_rank_cd on the server.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type PluginUse, type Store } from "../../core/store.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { fulltextPlugin, textIndex, type FulltextOptions } from "./index.js";
import { postgresSql } from "./storage.js";
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
    name: "postgres (tsvector + GIN)",
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

describe("fulltext over Postgres", () => {
  it("keeps its index in a GIN-indexed tsvector table of the store's schema", async () => {
    const namespace = freshSchema("fulltext_gin");
    schemas.push(namespace);
    const store = pgStore(namespace, {});
    try {
      const text = await textIndex(store);
      await store.put(makeDatum({ id: "p", content: "postgres keeps the words" }));
      expect((await text.search("words")).map((h) => h.id)).toEqual(["p"]);
      const pool = new pg.Pool({ connectionString: server.url, max: 1 });
      try {
        const { rows } = await pool.query("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'dgent_fulltext'", [namespace]);
        expect(rows.some((r: { indexdef: string }) => /USING gin \(body\)/.test(r.indexdef))).toBe(true);
        const { rows: docs } = await pool.query(`SELECT id, body::text AS body FROM "${namespace}".dgent_fulltext`);
        expect(docs).toEqual([{ id: "p", body: "'keeps':2 'postgres':1 'the':3 'words':4" }]);
      } finally {
        await pool.end();
      }
    } finally {
      await store.close();
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
  });
});
