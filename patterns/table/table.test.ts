/**
 * The table bridge over real tables: SQLite through better-sqlite3, Postgres through the harness'
 * throwaway cluster. The laws: round trip (row → datum → row, and put(get(id)) a no-op), and
 * isolation (without `writable`, nothing written through dgent reaches the table).
 */
import Database from "better-sqlite3";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStore } from "../../compose/index.js";
import { freshSchema, startPostgres, dropSchema, type PostgresServer } from "../../test/harness/postgres.js";
import { tableAdapter } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-table-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rowArb = fc.record({
  name: fc.string({ maxLength: 20 }),
  // SQLite stores a REAL -0.0 as 0 (the row the table holds is 0 before the bridge sees it), so the
  // round trip is of the values a REAL column keeps.
  score: fc.option(
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((x) => (Object.is(x, -0) ? 0 : x)),
    { nil: null },
  ),
  kind: fc.constantFrom("a", "b", "c"),
  avatar: fc.option(fc.uint8Array({ maxLength: 16 }), { nil: null }),
  created_ms: fc.integer({ min: 0, max: 4_000_000_000_000 }),
});

function sqliteTable(file: string): Database.Database {
  const db = new Database(file);
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, kind TEXT, avatar BLOB, created_ms INTEGER)");
  return db;
}

const snapshot = (db: Database.Database) => JSON.stringify(db.prepare("SELECT * FROM users ORDER BY id").all(), (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString("base64") : v));

describe("the table bridge on SQLite", () => {
  it("round trip: every row read through the bridge comes back as the row; ids, createdAt and tags come from the columns", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(rowArb, { minLength: 1, maxLength: 20 }), async (rows) => {
        const file = join(dir, `rt-${Math.random().toString(36).slice(2)}.db`);
        const db = sqliteTable(file);
        const insert = db.prepare("INSERT INTO users (id, name, score, kind, avatar, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
        rows.forEach((r, i) => insert.run(i + 1, r.name, r.score, r.kind, r.avatar ? Buffer.from(r.avatar) : null, r.created_ms));
        const bridge = tableAdapter({ driver: "sqlite", path: file, table: "users", primaryKey: "id", createdAt: "created_ms", tags: ["kind"] });
        const store = createStore({ tiers: [bridge] });
        for (const [i, r] of rows.entries()) {
          const d = await store.get(`users/${i + 1}`);
          expect(d).not.toBeNull();
          expect(d?.createdAt).toBe(r.created_ms);
          expect(d?.metadata).toEqual({ source: "table:users", table: "users", kind: r.kind });
          const back = bridge.rowOf(d!);
          expect(back).toEqual({ id: i + 1, name: r.name, score: r.score, kind: r.kind, avatar: r.avatar ? { $bytes: Buffer.from(r.avatar).toString("base64") } : null, created_ms: r.created_ms });
        }
        expect(await store.count({ where: { kind: "a" } })).toBe(rows.filter((r) => r.kind === "a").length);
        expect(await store.get("users/999")).toBeNull();
        expect(await store.get("other/1")).toBeNull();
        await store.close();
        db.close();
      }),
      { numRuns: 15 },
    );
  });

  it("isolation: without writable, put and delete are refused and the table is byte-for-byte unchanged", async () => {
    const file = join(dir, "iso.db");
    const db = sqliteTable(file);
    db.prepare("INSERT INTO users (id, name, kind, created_ms) VALUES (1, 'Ada', 'a', 5)").run();
    const before = snapshot(db);
    const bridge = tableAdapter({ driver: "sqlite", path: file, table: "users", primaryKey: "id" });
    const store = createStore({ tiers: [bridge] });
    const ada = await store.get("users/1");
    await expect(store.put({ ...ada!, id: "users/2", content: new TextEncoder().encode('{"id":2,"name":"Bob"}') })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    await expect(store.delete("users/1")).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    await expect(store.deleteMany({ all: true })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
    expect(snapshot(db)).toBe(before);
    await store.close();
    db.close();
  });

  it("with writable: put(get(id)) is a no-op, a new datum of the bridge's form inserts its row, delete removes it", async () => {
    const file = join(dir, "rw.db");
    const db = sqliteTable(file);
    db.prepare("INSERT INTO users (id, name, kind, created_ms) VALUES (1, 'Ada', 'a', 5)").run();
    const bridge = tableAdapter({ driver: "sqlite", path: file, table: "users", primaryKey: "id", createdAt: "created_ms", writable: true });
    const store = createStore({ tiers: [bridge] });
    const ada = (await store.get("users/1"))!;
    const before = snapshot(db);
    expect(await store.put(ada)).toBe("users/1");
    expect(snapshot(db)).toBe(before);
    const bob = bridge.datumOf({ id: 2, name: "Bob", score: 1.5, kind: "b", avatar: Buffer.from([0, 255]), created_ms: 9 });
    await store.put(bob);
    expect(db.prepare("SELECT * FROM users WHERE id = 2").get()).toEqual({ id: 2, name: "Bob", score: 1.5, kind: "b", avatar: Buffer.from([0, 255]), created_ms: 9 });
    expect(await store.get("users/2")).toEqual(bob);
    await expect(store.put({ ...bob, content: new TextEncoder().encode('{"id":2,"name":"Robert"}') })).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect(await store.delete("users/2")).toBe(true);
    expect(db.prepare("SELECT COUNT(*) AS n FROM users").get()).toEqual({ n: 1 });
    await store.close();
    db.close();
  });

  it("is the only tier of its store, and bad names are refused before any SQL", () => {
    const bridge = tableAdapter({ driver: "sqlite", path: join(dir, "x.db"), table: "users", primaryKey: "id" });
    expect(() => createStore({ tiers: [bridge, tableAdapter({ driver: "sqlite", path: join(dir, "x.db"), table: "other", primaryKey: "id" })] })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }),
    );
    expect(() => tableAdapter({ driver: "sqlite", path: "x", table: "users; DROP TABLE users", primaryKey: "id" })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => tableAdapter({ driver: "sqlite", path: "x", table: "users", primaryKey: 'id" --' })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });
});

describe("the table bridge on Postgres", () => {
  let server: PostgresServer;
  let schema: string;
  let client: pg.Client;
  beforeAll(async () => {
    server = await startPostgres();
    schema = freshSchema("bridge");
    client = new pg.Client({ connectionString: server.url });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`CREATE TABLE ${schema}.orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(12,2), status text, payload jsonb, placed_at timestamptz NOT NULL)`);
  }, 300_000);
  afterAll(async () => {
    await client?.end();
    if (server) await dropSchema(server, schema);
    await server?.stop();
  });

  it("round trip and isolation over a real table: rows as datums, queries by tag, writes refused and the table unchanged", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ customer: fc.string({ maxLength: 12 }).filter((s) => !s.includes("\u0000")), cents: fc.integer({ min: 0, max: 10_000_000 }), status: fc.constantFrom("new", "paid", "sent"), ms: fc.integer({ min: 0, max: 4_000_000_000_000 }) }), { minLength: 1, maxLength: 15 }),
        async (rows) => {
          await client.query(`TRUNCATE ${schema}.orders`);
          for (const [i, r] of rows.entries()) {
            await client.query(`INSERT INTO ${schema}.orders VALUES ($1, $2, $3, $4, $5, $6)`, [i + 1, r.customer, (r.cents / 100).toFixed(2), r.status, JSON.stringify({ n: i }), new Date(r.ms)]);
          }
          const bridge = tableAdapter({ driver: "postgres", url: server.url, table: `${schema}.orders`, idPrefix: "orders/", primaryKey: "id", createdAt: "placed_at", tags: ["status"] });
          const store = createStore({ tiers: [bridge] });
          for (const [i, r] of rows.entries()) {
            const d = (await store.get(`orders/${i + 1}`))!;
            expect(d.createdAt).toBe(r.ms);
            expect(d.metadata).toEqual({ source: `table:${schema}.orders`, table: `${schema}.orders`, status: r.status });
            expect(bridge.rowOf(d)).toEqual({ id: String(i + 1), customer: r.customer, total: (r.cents / 100).toFixed(2), status: r.status, payload: JSON.stringify({ n: i }), placed_at: new Date(r.ms).toISOString() });
          }
          const paid = await store.query({ where: { status: "paid" }, select: "ids", order: "oldest" });
          expect(paid.items.length).toBe(rows.filter((r) => r.status === "paid").length);
          expect(await store.get("orders/not-a-number")).toBeNull();
          const before = (await client.query(`SELECT * FROM ${schema}.orders ORDER BY id`)).rows;
          await expect(store.delete("orders/1")).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
          await expect(store.put({ ...(await store.get("orders/1"))!, id: "orders/99" })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
          expect((await client.query(`SELECT * FROM ${schema}.orders ORDER BY id`)).rows).toEqual(before);
          await store.close();
        },
      ),
      { numRuns: 8 },
    );
  }, 300_000);
});
