import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { RANKS } from "../ranks.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { createStore } from "../../core/store.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { classify, redactText, wrapPgError } from "./errors.js";
import { migrate, MIGRATIONS } from "./migrations.js";
import { acquirePool, poolCounters, poolReport } from "./pool.js";
import { resolveOptions, resolveUrl, PROFILES } from "./profiles.js";
import { identifiers, prefixUpperBound, statements } from "./sql.js";
import { postgresAdapter, PostgresAdapter, POSTGRES_DOCKER, POSTGRES_KIND, type PostgresOptions } from "./index.js";

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
});

const open: PostgresAdapter[] = [];
async function opened(options: PostgresOptions = {}): Promise<PostgresAdapter> {
  const a = postgresAdapter({ url: server.url, namespace: freshSchema("t"), listen: false, ...options });
  await a.open();
  open.push(a);
  return a;
}
afterAll(async () => {
  for (const a of open) await a.close();
  // Leave a shared server (DGENT_TEST_POSTGRES_URL) as we found it.
  for (const schema of new Set(open.map((a) => a.schema))) await dropSchema(server, schema);
});

const datum = (id: string, extra: Partial<Datum> = {}): Datum =>
  makeDatum({ id, content: `content of ${id}`, createdAt: 1_000, ...extra } as Parameters<typeof makeDatum>[0]);

async function codeOf(promise: Promise<unknown>): Promise<{ code?: string; retryable?: boolean; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; retryable?: boolean; message: string };
  }
  throw new Error("expected a rejection");
}

describe("table and indexes", () => {
  it("has the seed's columns with COLLATE \"C\" ids, BYTEA content, JSONB metadata, and its indexes (time, children, tags)", async () => {
    const a = await opened();
    const cols = await server.query<{ column_name: string; data_type: string; collation_name: string | null; is_nullable: string }>(
      `SELECT column_name, data_type, collation_name, is_nullable FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = 'data' ORDER BY ordinal_position`,
      [a.schema],
    );
    expect(cols.rows).toEqual([
      { column_name: "id", data_type: "text", collation_name: "C", is_nullable: "NO" },
      { column_name: "content", data_type: "bytea", collation_name: null, is_nullable: "NO" },
      { column_name: "created_at", data_type: "double precision", collation_name: null, is_nullable: "NO" },
      { column_name: "causal_parent", data_type: "text", collation_name: "C", is_nullable: "YES" },
      { column_name: "metadata", data_type: "jsonb", collation_name: null, is_nullable: "NO" },
    ]);
    const idx = await server.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, [a.schema]);
    const defs = idx.rows.map((r) => r.indexdef).join("\n");
    expect(defs).toContain("(created_at DESC, id DESC)");
    expect(defs).toContain("data_children_idx ON " + `${a.schema}.data USING btree (causal_parent, created_at, id)`);
    expect(defs).not.toContain("(causal_parent)"); // the children index replaced it (migration 4)
    expect(defs).toMatch(/UNIQUE INDEX data_pkey ON .* \(id\)/);
    expect(defs).toContain(`data_tags_idx ON ${a.schema}.data_tags USING btree (key, value, created_at, id)`);
  });

  it("list is an index scan, never a Seq Scan, on a table of 20 000 rows (EXPLAIN)", async () => {
    const a = await opened();
    const batch = Array.from({ length: 20_000 }, (_, i) =>
      datum(`${["alpha", "beta", "gamma", "delta"][i % 4]}/${String(i).padStart(6, "0")}`, { createdAt: i }),
    );
    await a.putMany(batch);
    await server.query(`ANALYZE ${identifiers(a.schema, a.table).table}`);
    const sql = statements(identifiers(a.schema, a.table));
    const plans: Record<string, string> = {};
    const explain = async (name: string, text: string, values: unknown[]) => {
      const r = await server.query<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, values);
      plans[name] = r.rows.map((row) => row["QUERY PLAN"]).join("\n");
    };
    await explain("prefix", sql.listRange.text, ["beta/0001", prefixUpperBound("beta/0001"), -1, 100]);
    await explain("prefix+after", sql.listRange.text, ["gamma/", prefixUpperBound("gamma/"), 19_000, 100]);
    await explain("all", sql.listAll.text, [-1, 100]);
    await explain("after", sql.listAll.text, [19_900, 1000]);
    for (const [name, plan] of Object.entries(plans)) {
      expect(plan, `${name}:\n${plan}`).not.toMatch(/Seq Scan/);
      expect(plan, `${name}:\n${plan}`).toMatch(/Index (Only )?Scan/);
    }
    // The prefix is served as a range of the id index (COLLATE "C" makes it a byte range).
    expect(plans.prefix).toMatch(/Index Cond: \(\(id >= 'beta\/0001'::text\) AND \(id < 'beta\/0002'::text\)\)/);
    // And the adapter agrees with the plan's answer.
    const listed = await a.list({ prefix: "beta/0001", after: -1, limit: 100 });
    expect(listed.map((d) => d.id)).toEqual(
      batch
        .filter((d) => d.id.startsWith("beta/0001"))
        .sort((x, y) => y.createdAt - x.createdAt)
        .map((d) => d.id),
    );
  });

  it("prefix bounds follow code point order, across the surrogate gap and U+10FFFF", async () => {
    expect(prefixUpperBound("ab")).toBe("ac");
    expect(prefixUpperBound("a\u{D7FF}")).toBe("a\u{E000}");
    expect(prefixUpperBound("a\u{10FFFF}")).toBe("b");
    expect(prefixUpperBound("\u{10FFFF}\u{10FFFF}")).toBeNull();
    const a = await opened();
    for (const id of ["a\u{D7FF}x", "a\u{E000}", "a\u{10FFFF}z", "b", "\u{10FFFF}\u{10FFFF}q"]) await a.put(datum(id));
    const ids = async (prefix: string) => (await a.list({ prefix, after: -1, limit: 10 })).map((d) => d.id).sort();
    expect(await ids("a\u{D7FF}")).toEqual(["a\u{D7FF}x"]);
    expect(await ids("a\u{10FFFF}")).toEqual(["a\u{10FFFF}z"]);
    expect(await ids("\u{10FFFF}\u{10FFFF}")).toEqual(["\u{10FFFF}\u{10FFFF}q"]);
  });
});

describe("migrations", () => {
  it("are versioned 1..n, forward only: an older table is brought up to date, a newer one is refused", async () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    const namespace = freshSchema("mig");
    const ids = identifiers(namespace, "data");
    const lease = acquirePool(resolveOptions({ url: server.url, namespace }));
    try {
      // A database left at version 1 (before the indexes existed)...
      expect(await migrate(lease.pool, ids, "data", namespace, POSTGRES_DOCKER, MIGRATIONS.slice(0, 1))).toEqual({ version: 1, applied: [1] });
      const indexes = async () =>
        (await server.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND tablename = 'data'`, [namespace])).rows[0] as { n: number };
      expect(await indexes()).toEqual({ n: 1 }); // only the primary key
      // ...is migrated forward on open, applying only what is missing.
      const a = await opened({ namespace });
      expect((await a.stats()).migrationsApplied).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
      expect(await indexes()).toEqual({ n: 3 });
      // Opening again applies nothing, and takes no lock (the fast path).
      const b = await opened({ namespace });
      expect((await b.stats()).migrationsApplied).toEqual([]);
      // Every statement is idempotent: replaying all migrations over an up-to-date table is harmless.
      await server.query(`DELETE FROM ${ids.migrations}`);
      expect(await migrate(lease.pool, ids, "data", namespace, POSTGRES_DOCKER)).toEqual({ version: MIGRATIONS.length, applied: MIGRATIONS.map((m) => m.version) });
      // A version this dgent does not know means a newer dgent wrote the schema: refuse, change nothing.
      await server.query(`INSERT INTO ${ids.migrations} (table_name, version, name, applied_by) VALUES ('data', 99, 'future', 'test')`);
      const err = await codeOf(postgresAdapter({ url: server.url, namespace }).open());
      expect(err.code).toBe("DGENT_SCHEMA_TOO_NEW");
      expect(err.message).toMatch(new RegExp(`version 99.*up to ${MIGRATIONS.length}`));
    } finally {
      await lease.release();
    }
  });
});

describe("identifiers from configuration", () => {
  it("a namespace or table carrying SQL is refused before anything is sent", async () => {
    const evil = [`x"; DROP SCHEMA public CASCADE; --`, `a b`, `'; select 1; --`, "x".repeat(64), "", "pg_catalog", "pg_x"];
    for (const namespace of evil) {
      expect(() => postgresAdapter({ url: server.url, namespace })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
    for (const table of [`data"; DROP TABLE x; --`, "data-1", "1data", "x".repeat(41)]) {
      expect(() => postgresAdapter({ url: server.url, table })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
    await expect(defaultRegistry.createAdapter(POSTGRES_DOCKER, { url: server.url, namespace: `x"; DROP SCHEMA public; --` })).rejects.toMatchObject({
      code: "DGENT_INVALID_OPTIONS",
    });
    expect((await server.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'public'`)).rowCount).toBe(1);
  });

  it("identifiers are always quoted: even a name full of SQL becomes one literal schema name", async () => {
    const name = `evil"; DROP SCHEMA public CASCADE; --`;
    const ids = identifiers(name, "data");
    expect(ids.schema).toBe(`"evil""; DROP SCHEMA public CASCADE; --"`);
    await server.query(`CREATE SCHEMA ${ids.schema}`);
    try {
      const found = await server.query(`SELECT nspname FROM pg_namespace WHERE nspname = $1`, [name]);
      expect(found.rowCount).toBe(1);
      expect((await server.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'public'`)).rowCount).toBe(1);
    } finally {
      await server.query(`DROP SCHEMA ${ids.schema}`);
    }
  });

  it("a namespace that needs quoting (dots, dashes, capitals) is used verbatim as the schema", async () => {
    const namespace = `Tenant-A.v1_${Date.now()}`;
    const a = await opened({ namespace, table: "Notes_2" });
    await a.put(datum("n1"));
    const r = await server.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(namespace)}."Notes_2"`);
    expect(r.rows[0]).toEqual({ n: 1 });
  });
});

describe("append-only law and batches", () => {
  it("putMany is one statement per batch; duplicates inside a batch are fine when identical and a conflict when not", async () => {
    const a = await opened();
    expect(await a.putMany([datum("d1"), datum("d2"), datum("d1")])).toEqual(["d1", "d2", "d1"]);
    expect((await a.list({ prefix: "d", after: -1, limit: 10 })).length).toBe(2);
    const err = await codeOf(a.putMany([datum("d3"), datum("d3", { content: new Uint8Array([1]) })]));
    expect(err.code).toBe("DGENT_CONFLICT");
    expect(await a.get("d3")).toBeNull();
  });

  it("a 12 000-datum putMany spanning several statements is still all or nothing", async () => {
    const a = await opened();
    await a.put(datum("big/zzz"));
    const batch = Array.from({ length: 12_000 }, (_, i) => datum(`big/${String(i).padStart(5, "0")}`));
    batch.push(datum("big/zzz", { metadata: { different: "yes" } }));
    expect((await codeOf(a.putMany(batch))).code).toBe("DGENT_CONFLICT");
    expect((await a.stats()).count).toBe(1);
    batch.pop();
    await a.putMany(batch);
    expect((await a.stats()).count).toBe(12_001);
  });

  it("causalChain and a put of a new id are one round trip each (a re-put two); cycles and depth end with coded errors", async () => {
    // notify: false, so that no announcement's listeners probe (notify.ts, a pool query in the
    // background) falls into a count; the statements are the same with notify on. The put's own
    // background question (whether anyone listens, at most every 250 ms) is not counted either.
    const a = await opened({ notify: false });
    const listened = statements(identifiers(a.schema, a.table)).listened.name;
    const o = resolveOptions({ url: server.url, namespace: a.schema, listen: false });
    const lease = acquirePool(o); // the same process-wide pool the adapter uses
    let parent: string | null = null;
    const chain: Datum[] = [];
    for (let i = 0; i < 500; i++) {
      const d: Datum = datum(`c/${String(i).padStart(3, "0")}`, { causalParent: parent, createdAt: i });
      chain.push(d);
      parent = d.id;
    }
    await a.putMany(chain);
    const pool = lease.pool as pg.Pool & { query: (...args: unknown[]) => unknown };
    const original = pool.query.bind(pool);
    let calls = 0;
    pool.query = ((...args: unknown[]) => {
      if ((args[0] as { name?: string } | undefined)?.name !== listened) calls++;
      return original(...(args as Parameters<typeof original>));
    }) as typeof pool.query;
    try {
      const got = await a.causalChain(parent as string, 10_000);
      expect(calls).toBe(1);
      expect(got.map((d) => d.id)).toEqual(chain.map((d) => d.id));
      calls = 0;
      await a.put(datum("one-trip"));
      expect(calls).toBe(1);
      calls = 0;
      await a.put(datum("one-trip")); // the insert does nothing; then one comparison
      expect(calls).toBe(2);
      calls = 0;
      await a.putMany([datum("one-trip/a"), datum("one-trip/b"), datum("one-trip/a")]); // one statement, no transaction
      expect(calls).toBe(1);
    } finally {
      pool.query = original as typeof pool.query;
      await lease.release();
    }
    expect((await codeOf(a.causalChain(parent as string, 499))).code).toBe("DGENT_CAUSAL_DEPTH");
    expect((await a.causalChain(parent as string, 500)).length).toBe(500);
    // A rho-shaped cycle: x -> y -> z -> y (the start is not on the loop).
    await a.putMany([datum("x", { causalParent: "y" }), datum("y", { causalParent: "z" }), datum("z", { causalParent: "y" })]);
    const err = await codeOf(a.causalChain("x", 10_000));
    expect(err.code).toBe("DGENT_CAUSAL_CYCLE");
    expect(err.message).toContain(`"y"`);
  });

  it("metadata JSONB cannot hold U+0000: refused with DGENT_INVALID_METADATA, nothing stored", async () => {
    const a = await opened();
    // Refused when the datum is made or validated, the same on every tier (core/LATTICE.md).
    const err = await codeOf(Promise.resolve().then(() => a.put(datum("nul", { metadata: { k: "a\u0000b" } }))));
    expect(err.code).toBe("DGENT_INVALID_METADATA");
    expect(await a.get("nul")).toBeNull();
    await a.put(datum("ok", { metadata: { k: "ünïcødé 🦉", "": "", "a\"b": "c\\d" } }));
    expect((await a.get("ok"))?.metadata).toEqual({ k: "ünïcødé 🦉", "": "", "a\"b": "c\\d" });
  });
});

describe("tenants", () => {
  it("one tenant's store cannot read, list, chain or delete another's", async () => {
    const alice = await opened({ namespace: freshSchema("alice") });
    const bob = await opened({ namespace: freshSchema("bob") });
    await alice.put(datum("shared-id", { content: new TextEncoder().encode("alice's") }));
    await alice.put(datum("secret", { causalParent: "shared-id" }));
    await bob.put(datum("shared-id", { content: new TextEncoder().encode("bob's") }));
    expect(Buffer.from((await bob.get("shared-id"))?.content ?? []).toString()).toBe("bob's");
    expect(await bob.get("secret")).toBeNull();
    expect((await bob.list({ prefix: "", after: -1, limit: 100 })).map((d) => d.id)).toEqual(["shared-id"]);
    expect(await bob.causalChain("secret", 100)).toEqual([]);
    expect(await bob.delete("secret")).toBe(false);
    expect(await alice.get("secret")).not.toBeNull();
    expect(await bob.delete("shared-id")).toBe(true);
    expect(Buffer.from((await alice.get("shared-id"))?.content ?? []).toString()).toBe("alice's");
  });
});

describe("connection manager and profiles", () => {
  it("stores on one URL share one pool sized by the profile; it is ended once, by the last close", async () => {
    const before = poolCounters();
    const url = `${server.url}?application_name=pooltest`;
    const a = postgresAdapter({ url, namespace: freshSchema("pa"), listen: false });
    const b = postgresAdapter({ url, namespace: freshSchema("pb"), listen: false });
    open.push(a, b); // dropped at the end
    await a.open();
    await b.open();
    const mine = () => poolReport().filter((p) => p.url.includes("application_name=pooltest"));
    expect(mine()).toHaveLength(1);
    expect(mine()[0]).toMatchObject({ leases: 2, max: PROFILES[POSTGRES_DOCKER].poolSize });
    if (server.password) {
      expect(mine()[0]?.url).toContain(":***@");
      expect(mine()[0]?.url).not.toContain(server.password);
    }
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.put(datum(`p${i}`))));
    expect(mine()[0]?.connections).toBeLessThanOrEqual(PROFILES[POSTGRES_DOCKER].poolSize);
    await a.close();
    await a.close();
    expect(mine()[0]?.leases).toBe(1);
    expect(poolCounters().ended).toBe(before.ended);
    await b.close();
    expect(mine()).toHaveLength(0);
    expect(poolCounters().ended).toBe(before.ended + 1);
    expect(poolCounters().created).toBe(before.created + 1);
  });

  it("the kind profile has its larger pool, TLS and statement timeout on every connection", async () => {
    const k = await opened({ profile: POSTGRES_KIND, tls: server.certificate ? { mode: "verify-full", ca: server.certificate } : server.tls ? "require" : "off" });
    expect(k.name).toBe(POSTGRES_KIND);
    expect(k.rank).toBe(RANKS["postgres-kind"]);
    const o = resolveOptions({ url: server.url, profile: POSTGRES_KIND, namespace: k.schema, tls: server.certificate ? { mode: "verify-full", ca: server.certificate } : server.tls ? "require" : "off" });
    const lease = acquirePool(o);
    try {
      expect(lease.pool.options.max).toBe(PROFILES[POSTGRES_KIND].poolSize);
      const r = await lease.pool.query<{ timeout: string; ssl: boolean }>(
        "SELECT current_setting('statement_timeout') AS timeout, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl",
      );
      expect(r.rows[0]).toEqual({ timeout: "30s", ssl: server.tls });
    } finally {
      await lease.release();
    }
    const d = await opened();
    expect(d.rank).toBeLessThan(k.rank);
  });

  it("TLS settings are enforced: verify-full refuses a certificate its CA did not sign; require refuses a plain server", async () => {
    const namespace = freshSchema("tls");
    const other = server.tls
      ? postgresAdapter({ url: server.url, namespace, profile: POSTGRES_KIND, tls: { mode: "verify-full", ca: otherCa() } })
      : postgresAdapter({ url: server.url, namespace, profile: POSTGRES_KIND, tls: "require" });
    const err = await codeOf(other.open());
    expect(err.code).toBe("DGENT_BACKEND_ERROR");
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(server.tls ? /certificate|self.signed/i : /does not support SSL/i);
  });

  it("the registry makes both tiers by name, lazily, with their ranks", async () => {
    const names = defaultRegistry.adapterNames();
    expect(names).toEqual(expect.arrayContaining([POSTGRES_DOCKER, POSTGRES_KIND]));
    const a = await defaultRegistry.createAdapter(POSTGRES_KIND, { url: server.url, namespace: freshSchema("reg"), tls: "require", listen: false });
    expect([a.name, a.rank]).toEqual([POSTGRES_KIND, 40]);
    expect((await defaultRegistry.adapter(POSTGRES_DOCKER)).rank).toBe(30);
    await expect(defaultRegistry.createAdapter(POSTGRES_DOCKER, { profile: POSTGRES_KIND })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    expect(() => postgresAdapter({ profile: "postgres-k8s" as never })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });

  it("the URL comes from options, then DGENT_DATABASE_URL, DGENT_POSTGRES_URL, the KGENTS_ aliases, then the profile", () => {
    const p = PROFILES[POSTGRES_DOCKER];
    expect(resolveUrl("postgres://x@h/db", p, { DGENT_DATABASE_URL: "postgres://y@h/db" })).toBe("postgres://x@h/db");
    expect(resolveUrl(undefined, p, { DGENT_DATABASE_URL: "sqlite:///tmp/a.db", DGENT_POSTGRES_URL: "postgres://legacy@h/db" })).toBe(
      "postgres://legacy@h/db",
    );
    expect(resolveUrl(undefined, p, { KGENTS_DATABASE_URL: "postgresql+asyncpg://k:pw@h:5432/kgents" })).toBe("postgres://k:pw@h:5432/kgents");
    expect(resolveUrl(undefined, PROFILES[POSTGRES_KIND], {})).toContain("svc.cluster.local");
    expect(() => resolveUrl("mysql://u:hunter22@h/db", p, {})).toThrow(/mysql:\/\/u:\*\*\*@h\/db/);
  });
});

describe("failures and secrets", () => {
  it("a refused connection is a retryable DGENT_UNAVAILABLE whose message never shows the password", async () => {
    const password = "s3cret-Pa55word";
    const port = await closedPort();
    const a = postgresAdapter({ url: `postgres://someone:${password}@127.0.0.1:${port}/db`, namespace: freshSchema("down") });
    const err = await codeOf(a.open());
    expect(err).toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    expect(err.message).toContain("postgres://someone:***@127.0.0.1");
    expect(err.message).toContain("ECONNREFUSED");
    for (const text of [err.message, inspect(err, { depth: 5 }), String((err as Error).stack), JSON.stringify(err), inspect(a, { depth: 5 })]) {
      expect(text).not.toContain(password);
    }
    expect(await a.probe()).toBe(false);
  });

  it("a wrong password is a permanent DGENT_BACKEND_ERROR (28P01) and the URL is redacted", async () => {
    // Needs password authentication: the harness's own cluster has it; a given server may trust everyone.
    const auth = server.owned ? server : await startPostgres({ owned: true });
    try {
      const u = new URL(auth.url);
      u.password = "wrong-password-1234";
      const a = postgresAdapter({ url: u.toString(), namespace: freshSchema("pw") });
      const err = await codeOf(a.open());
      expect(err).toMatchObject({ code: "DGENT_BACKEND_ERROR", retryable: false });
      expect(err.message).toContain("28P01");
      expect(err.message).toContain(":***@");
      for (const text of [err.message, inspect(err, { depth: 5 }), String((err as Error).stack)]) {
        expect(text).not.toContain("wrong-password-1234");
        expect(text).not.toContain(auth.password);
      }
      expect(await a.probe()).toBe(false);
    } finally {
      if (auth !== server) await auth.close();
    }
  });

  it("probe answers within its timeout even when the server accepts TCP but never speaks", async () => {
    const { port, close } = await silentServer();
    try {
      // Connecting would wait an hour: a probe that answers at all kept to probeTimeoutMs (one
      // that did not would hang until the test's own timeout fails it; no upper bound here).
      const a = postgresAdapter({ url: `postgres://u:pw@127.0.0.1:${port}/db`, probeTimeoutMs: 300, connectTimeoutMs: 3_600_000 });
      const started = Date.now();
      expect(await a.probe()).toBe(false);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250); // it waited for the silent server, not failed at once
      const ok = await opened();
      expect(await ok.probe()).toBe(true);
      await ok.close();
      expect(await ok.probe()).toBe(false);
    } finally {
      await close();
    }
  });

  it("classifies driver errors: connection loss and retry-me SQLSTATEs are retryable, the rest permanent", () => {
    const retryable = ["57P01", "57P02", "57P03", "40001", "40P01", "08006", "08001", "53300", "57014"].map((code) => ({ code }));
    retryable.push({ code: "ECONNREFUSED" }, { code: "ECONNRESET" });
    for (const e of [...retryable, new Error("Connection terminated unexpectedly"), new Error("timeout exceeded when trying to connect")]) {
      expect(classify(e), JSON.stringify(e)).toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    }
    for (const code of ["23505", "42P01", "28P01", "22P02", "3D000", "XX000"]) {
      expect(classify({ code })).toMatchObject({ code: "DGENT_BACKEND_ERROR", retryable: false });
    }
    const wrapped = wrapPgError(Object.assign(new Error("boom"), { code: "57P01" }), POSTGRES_DOCKER, "put", []);
    expect(wrapPgError(wrapped, POSTGRES_DOCKER, "again", [])).toBe(wrapped); // wrapped once
    expect(wrapped.unit).toBe(POSTGRES_DOCKER);
  });

  it("redacts passwords in URLs, conninfo strings and free text", async () => {
    const { redactUrl } = await import("./index.js");
    expect(redactUrl("postgres://u:p%40ss@h:5432/db?sslmode=require")).toBe("postgres://u:***@h:5432/db?sslmode=require");
    expect(redactUrl("postgres://h/db?password=hunter22")).toBe("postgres://h/db?password=***");
    expect(redactUrl("postgres://u@h/db")).toBe("postgres://u@h/db");
    expect(redactUrl("not a url postgres://u:pw@h")).not.toContain(":pw@");
    expect(redactText("host=h password='a b' user=u", [])).toBe("host=h password=*** user=u");
    expect(redactText("failed for hunter22 and hunter%2022", ["hunter22", "hunter 22"])).toBe("failed for *** and ***");
  });
});

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A TCP server that accepts connections and never answers (a hung server). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  return {
    port: (srv.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

/** A real self-signed CA certificate that did not sign the harness's server certificate. */
function otherCa(): string {
  const dir = mkdtempSync(join(tmpdir(), "dgent-ca-"));
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=some-other-ca", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { stdio: "ignore" });
    return readFileSync(join(dir, "c.pem"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
