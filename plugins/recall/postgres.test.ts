/**
 * Recall over Postgres. The test server has no pgvector, so `storage: "auto"` with `postgresUrl`
 * detects that and falls back to vectors kept as datums, searched in process: the search suite
 * runs on that path. The pgvector statements are checked as text (no server here has it).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { makeDatum } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, runChild, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { until } from "../../test/plugins-support.js";
import { hashingEmbedder, recallPlugin, vectorMemory, type RecallOptions } from "./index.js";
import { detectPgvector, pgScore, pgvectorSql, vectorLiteral } from "./pgvector.js";
import { runSearchSuite } from "../../testing/suites/search.js";

let server: PostgresServer;
const schemas: string[] = [];
const namespaces = new WeakMap<object, string>();

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  for (const s of schemas) if (server) await dropSchema(server, s);
  await server?.close();
});

function pgStore(namespace: string, options: RecallOptions): Store {
  const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })], plugins: [recallPlugin({ ...options, postgresUrl: server.url })] });
  namespaces.set(store, namespace);
  return store;
}

runSearchSuite(
  {
    name: "postgres without pgvector (the fallback)",
    create(o) {
      const namespace = freshSchema("recall");
      schemas.push(namespace);
      return pgStore(namespace, o);
    },
    reopen: (previous, o) => pgStore(namespaces.get(previous) as string, o),
  },
  { describe, it, beforeAll, afterAll },
  { size: 300, annSize: 1500, report: (line) => process.stdout.write(`${line}\n`) },
);

describe("recall over Postgres", () => {
  it("detects that the server has no pgvector and says so; vectors are kept as datums", async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 1 });
    try {
      expect(await detectPgvector(pool)).toBe(false);
    } finally {
      await pool.end();
    }
    const namespace = freshSchema("recall_detect");
    schemas.push(namespace);
    const store = pgStore(namespace, { embedder: hashingEmbedder({ dimensions: 32 }), ann: false });
    try {
      const memory = await vectorMemory(store);
      expect(memory.stats().storage).toBe("datums");
      expect(memory.stats().storageNote).toMatch(/pgvector/);
      await store.put(makeDatum({ id: "n/1", content: "postgres keeps the vectors as datums" }));
      expect((await memory.search("vectors as datums", { k: 1 }))[0]?.id).toBe("n/1");
      await expect(memory.search("x", { index: "native" })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    } finally {
      await store.close();
    }
    // Asked for explicitly, a missing pgvector is an error, not a silent fallback.
    const strict = pgStore(namespace, { embedder: hashingEmbedder({ dimensions: 32 }), storage: "pgvector" });
    try {
      await expect(vectorMemory(strict)).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    } finally {
      await strict.close();
    }
  });

  it("indexes what another process puts and deletes, told by LISTEN/NOTIFY", async () => {
    assertBuilt();
    const namespace = freshSchema("recall_ext");
    schemas.push(namespace);
    const store = pgStore(namespace, { embedder: hashingEmbedder({ dimensions: 32 }), ann: false });
    try {
      const memory = await vectorMemory(store);
      // The other process (test/fixtures/child-postgres.mjs, no recall plugin) puts "shared".
      const put = await runChild("change", { options: { url: server.url, namespace }, id: "shared" });
      expect(put.code, put.stderr).toBe(0);
      await until("the put notification is indexed", () => memory.stats().vectors === 1);
      await memory.idle();
      expect((await memory.search("content of shared", { k: 1 }))[0]?.id).toBe("shared");
      const del = await runChild("change", { options: { url: server.url, namespace }, id: "shared", delete: true });
      expect(del.code, del.stderr).toBe(0);
      await until("the delete notification is applied", () => memory.stats().vectors === 0);
      expect(await memory.search("content of shared", { k: 1 })).toEqual([]);
      expect(memory.stats().errors).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("the pgvector statements: one table and HNSW index per model, the metric's operator, filters as id = ANY", () => {
    const cos = pgvectorSql("agent_7", "text-embedding-3-small-0123456789", 1536, "cosine");
    expect(cos.detect).toBe("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
    expect(cos.setup).toEqual([
      "CREATE EXTENSION IF NOT EXISTS vector",
      'CREATE TABLE IF NOT EXISTS "agent_7"."dgent_recall_text_embedding_3_small_0123456789" (id text PRIMARY KEY, created_at double precision NOT NULL, embedding vector(1536))',
      'CREATE INDEX IF NOT EXISTS "dgent_recall_text_embedding_3_small_0123456789_hnsw" ON "agent_7"."dgent_recall_text_embedding_3_small_0123456789" USING hnsw (embedding vector_cosine_ops)',
    ]);
    expect(cos.knn).toContain("ORDER BY embedding <=> $1::vector LIMIT $2");
    expect(cos.knnIn).toContain("id = ANY($3::text[])");
    expect(pgvectorSql("s", "k", 8, "l2").knn).toContain("<->");
    expect(pgvectorSql("s", "k", 8, "dot").setup[2]).toContain("vector_ip_ops");
    expect(pgvectorSql('we"ird', "k", 8, "dot").setup[1]).toContain('"we""ird"');
    expect(vectorLiteral(new Float32Array([0.5, -1, 2]))).toBe("[0.5,-1,2]");
    expect(pgScore("cosine", 0.25)).toBe(0.75);
    expect(pgScore("l2", 2)).toBe(-2);
    expect(pgScore("dot", -3)).toBe(3);
  });
});
