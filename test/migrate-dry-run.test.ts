import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../adapters/jsonl/index.js";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, sqliteAdapter } from "../adapters/sqlite/index.js";
import { run } from "../cli/commands.js";
import { errorLine } from "../cli/main.js";
import { migrate } from "../compose/migrate.js";
import { makeDatum, type Adapter, type Datum, type DgentError } from "../core/index.js";
import { expectCode } from "../testing/index.js";
import { freshSchema, startPostgres, type PostgresServer } from "./harness/postgres.js";

// `dgent migrate --dry-run` changes nothing: the file system and the target's schemas are
// listed before and after, and must be identical. A source that does not exist is a coded error.

let server: PostgresServer;
const root = mkdtempSync(join(tmpdir(), "dgent-dry-run-"));
/** A directory at the file system's root that must never come to exist (the tests run as root). */
const absent = `/nonexistent-dgent-${randomBytes(6).toString("hex")}`;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(absent, { recursive: true, force: true });
});

let dirs = 0;
function fresh(): string {
  const dir = join(root, `case-${dirs++}`);
  mkdirSync(dir);
  return dir;
}

/** Every entry under `dir`: its kind, size, modification time and a hash of its bytes. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const s = lstatSync(path);
      if (s.isDirectory()) {
        out[path] = `dir ${s.mtimeMs}`;
        walk(path);
      } else {
        out[path] = `file ${s.size} ${s.mtimeMs} ${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** The schemas, tables and migration rows of the test server: what a dry run must leave alone. */
async function schemaListing(): Promise<string[]> {
  const schemas = await server.query<{ n: string }>("SELECT nspname AS n FROM pg_namespace ORDER BY 1");
  const tables = await server.query<{ t: string }>(
    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
  );
  return [...schemas.rows.map((r) => `schema ${r.n}`), ...tables.rows.map((r) => `table ${r.t}`)];
}

function datums(n: number, prefix = "d"): Datum[] {
  const out: Datum[] = [];
  for (let i = 0; i < n; i++) out.push(makeDatum({ id: `${prefix}/${i}`, content: `content ${i}`, createdAt: 1_700_000_000_000 + i, metadata: { i: String(i) } }));
  return out;
}

async function filled<A extends Adapter>(adapter: A, items: readonly Datum[]): Promise<A> {
  await adapter.open();
  for (const d of items) await adapter.put(d);
  await adapter.close();
  return adapter;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    stdout: (c: string | Uint8Array) => (out += typeof c === "string" ? c : Buffer.from(c).toString()),
    stderr: (c: string) => (err += c),
    stdin: Readable.from([]) as unknown as NodeJS.ReadableStream,
    env: { HOME: root, XDG_DATA_HOME: join(root, "xdg") },
  };
  try {
    return { code: await run(args, io), out, err };
  } catch (error) {
    return { code: (error as { code?: string }).code === "DGENT_USAGE" ? 2 : 1, out, err: err + errorLine(error) };
  }
}

describe("migrate --dry-run creates nothing", () => {
  it("a SQLite source that does not exist is DGENT_INVALID_OPTIONS; no file or directory appears, not even at /", async () => {
    const dir = fresh();
    const before = listing(dir);
    const missing = join(absent, "deep", "agent.db");
    const err = await expectCode(migrate({ from: `sqlite://${missing}`, to: `sqlite://${join(dir, "target.db")}`, dryRun: true }), "DGENT_INVALID_OPTIONS");
    expect(err.message).toContain("does not exist");
    expect((err as DgentError).details).toMatchObject({ missing: true });
    expect(existsSync(absent)).toBe(false);
    expect(listing(dir)).toEqual(before);
    // An execute refuses a missing source the same way: it would otherwise copy "0 datums".
    await expectCode(migrate({ from: `sqlite://${missing}`, to: `sqlite://${join(dir, "target.db")}`, dryRun: false, checkpointPath: join(dir, "ck.json") }), "DGENT_INVALID_OPTIONS");
    expect(existsSync(absent)).toBe(false);
    expect(listing(dir)).toEqual(before);
  });

  it("the CLI says so in one coded line and exits 1", async () => {
    const dir = fresh();
    const before = listing(dir);
    const r = await cli(["migrate", "--from", `sqlite://${join(absent, "x.db")}`, "--to", `jsonl://${join(dir, "sub", "t.jsonl")}`, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/^dgent: the source sqlite:\/\/\/nonexistent-dgent-\w+\/x\.db does not exist.*\[DGENT_INVALID_OPTIONS\]\n$/);
    expect(existsSync(absent)).toBe(false);
    expect(listing(dir)).toEqual(before);
    const jsonl = await cli(["migrate", "--from", `jsonl://${join(dir, "typo.jsonl")}`, "--to", `sqlite://${join(dir, "t.db")}`, "--dry-run"]);
    expect(jsonl.code).toBe(1);
    expect(jsonl.err).toMatch(/typo\.jsonl does not exist.*\[DGENT_INVALID_OPTIONS\]/);
    expect(listing(dir)).toEqual(before);
  });

  it("SQLite → SQLite in a directory that does not exist: the report, and the file system unchanged (no -wal, -shm, target or directory)", async () => {
    const dir = fresh();
    const source = join(dir, "source.db");
    await filled(sqliteAdapter({ path: source }), datums(25));
    const before = listing(dir);
    expect(Object.keys(before)).toEqual([source]);
    const target = join(dir, "new", "dir", "target.db");
    const report = await migrate({ from: `sqlite://${source}`, to: `sqlite://${target}`, dryRun: true, checkpointPath: join(dir, "ck", "c.json") });
    expect(report).toMatchObject({ dryRun: true, total: 25, copied: 25, alreadyPresent: 0, targetExists: false, verified: null });
    expect(listing(dir)).toEqual(before);
  });

  it("SQLite → an existing SQLite target: counts what is there and what conflicts; neither file changes", async () => {
    const dir = fresh();
    const source = join(dir, "source.db");
    const target = join(dir, "target.db");
    const all = datums(10);
    await filled(sqliteAdapter({ path: source }), all);
    const other = makeDatum({ id: "d/9", content: "another value", createdAt: 1 });
    await filled(sqliteAdapter({ path: target }), [...all.slice(0, 4), other]);
    const before = listing(dir);
    const r = await cli(["migrate", "--from", `sqlite://${source}`, "--to", `sqlite://${target}`, "--dry-run"]);
    expect(r.code, r.err).toBe(1); // a conflict is reported with exit 1
    expect(r.out).toMatch(/^dry run: sqlite:\/\/\/.*source\.db → sqlite:\/\/\/.*target\.db/);
    expect(r.out).toMatch(/would copy:\s+5\n/);
    expect(r.out).toMatch(/already present:\s+4\n/);
    expect(r.out).toMatch(/conflicts:\s+1 \(first: d\/9\)/);
    expect(r.out).toContain("nothing was changed");
    expect(listing(dir)).toEqual(before);
  });

  it("JSONL → SQLite: the log is read without its lock and the directory is unchanged", async () => {
    const dir = fresh();
    const log = join(dir, "agent.jsonl");
    await filled(jsonlAdapter({ path: log }), datums(12));
    const before = listing(dir);
    const report = await migrate({ from: `jsonl://${log}`, to: `sqlite://${join(dir, "out.db")}`, dryRun: true });
    expect(report).toMatchObject({ total: 12, copied: 12, targetExists: false });
    expect(listing(dir)).toEqual(before);
  });

  it("an execute never changes its source either (opened read-only); the target is created and verified", async () => {
    const dir = fresh();
    const sourceDir = join(dir, "src");
    mkdirSync(sourceDir);
    const source = join(sourceDir, "source.db");
    await filled(sqliteAdapter({ path: source }), datums(30));
    const log = join(sourceDir, "agent.jsonl");
    await filled(jsonlAdapter({ path: log }), datums(8, "j"));
    const before = listing(sourceDir);
    const a = await migrate({ from: `sqlite://${source}`, to: `sqlite://${join(dir, "out", "t.db")}`, checkpointPath: join(dir, "ck.json") });
    expect(a).toMatchObject({ total: 30, copied: 30, verified: true, targetExists: true });
    const b = await migrate({ from: `jsonl://${log}`, to: `sqlite://${join(dir, "out", "t.db")}`, checkpointPath: join(dir, "ck.json") });
    expect(b).toMatchObject({ total: 8, verified: true });
    expect(listing(sourceDir)).toEqual(before);
  });

  it("SQLite → Postgres: no schema, table or migrations table appears; after an execute, a dry run finds everything present", async () => {
    const dir = fresh();
    const source = join(dir, "source.db");
    await filled(sqliteAdapter({ path: source }), datums(20));
    const namespace = freshSchema("dry");
    const files = listing(dir);
    const schemas = await schemaListing();
    expect(schemas).not.toContain(`schema ${namespace}`);

    const dry = await cli(["migrate", "--from", `sqlite://${source}`, "--to", server.url, "--namespace", namespace, "--dry-run", "--json"]);
    expect(dry.code, dry.err).toBe(0);
    expect(JSON.parse(dry.out)).toMatchObject({ dryRun: true, total: 20, copied: 20, targetExists: false, namespace });
    expect(await schemaListing()).toEqual(schemas);
    expect(listing(dir)).toEqual(files);

    const done = await migrate({ from: `sqlite://${source}`, to: server.url, namespace, checkpointPath: join(root, `ck-${namespace}.json`) });
    expect(done).toMatchObject({ copied: 20, verified: true });
    const after = await schemaListing();
    expect(after).toContain(`schema ${namespace}`);
    const rows = async () => (await server.query(`SELECT table_name, version, applied_at FROM "${namespace}".dgent_migrations ORDER BY 1, 2`)).rows;
    const migrations = await rows();
    expect(migrations.length).toBeGreaterThan(0);

    const again = await migrate({ from: `sqlite://${source}`, to: server.url, namespace, dryRun: true });
    expect(again).toMatchObject({ total: 20, copied: 0, alreadyPresent: 20, targetExists: true });
    expect(await schemaListing()).toEqual(after);
    expect(await rows()).toEqual(migrations);
  });

  it("a Postgres source that does not exist is DGENT_INVALID_OPTIONS and creates no schema", async () => {
    const dir = fresh();
    const namespace = freshSchema("nosrc");
    const schemas = await schemaListing();
    const err = await expectCode(migrate({ from: server.url, to: `sqlite://${join(dir, "t.db")}`, namespace, dryRun: true }), "DGENT_INVALID_OPTIONS");
    expect(err.message).toMatch(/^the source postgres:\/\/postgres:\*\*\*@/);
    expect(err.message).not.toContain(server.password);
    expect(await schemaListing()).toEqual(schemas);
    expect(listing(dir)).toEqual({});
  });
});

describe("a source written by an older dgent", () => {
  it("a dry run refuses it with a coded error and leaves it as it is; an execute upgrades its schema and copies it", async () => {
    const dir = fresh();
    const path = join(dir, "v1.db");
    // A file as the first release of the schema left it: version 1, the data table only.
    const raw = new Database(path);
    raw.pragma("journal_mode = WAL");
    raw.exec((MIGRATIONS[0] as { up: string }).up);
    raw.pragma(`application_id = ${APPLICATION_ID}`);
    raw.pragma("user_version = 1");
    raw.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, NULL, NULL)").run("old/1", Buffer.from("kept"), 1_700_000_000_000);
    raw.close();
    if (SCHEMA_VERSION === 1) throw new Error("this case needs a schema newer than version 1");
    const before = listing(dir);
    const err = await expectCode(migrate({ from: `sqlite://${path}`, to: `sqlite://${join(dir, "t.db")}`, dryRun: true }), "DGENT_BACKEND_ERROR");
    expect(err.message).toMatch(/written by an older dgent: a dry run reads it read-only/);
    expect(listing(dir)).toEqual(before);
    const done = await migrate({ from: `sqlite://${path}`, to: `sqlite://${join(dir, "t.db")}`, checkpointPath: join(dir, "ck.json") });
    expect(done).toMatchObject({ total: 1, copied: 1, verified: true });
  });
});

describe("the read-only option of the local tiers", () => {
  it("sqlite: a missing file is refused without creating it or its directory; writes fail; the file is left byte for byte", async () => {
    const dir = fresh();
    const missing = sqliteAdapter({ path: join(dir, "no", "such.db"), readonly: true });
    const err = await expectCode(missing.open(), "DGENT_INVALID_OPTIONS");
    expect((err as DgentError).details).toMatchObject({ missing: true });
    expect(listing(dir)).toEqual({});

    const path = join(dir, "a.db");
    await filled(sqliteAdapter({ path }), datums(3));
    const before = listing(dir);
    const ro = sqliteAdapter({ path, readonly: true });
    await ro.open();
    expect((await ro.get("d/1"))?.metadata).toEqual({ i: "1" });
    expect(await ro.list({ prefix: "", after: -Infinity, limit: 10 })).toHaveLength(3);
    await expectCode(ro.put(makeDatum({ content: "no" })), "DGENT_BACKEND_ERROR");
    await ro.close();
    expect(listing(dir)).toEqual(before);

    writeFileSync(join(dir, "empty.db"), "");
    await expectCode(sqliteAdapter({ path: join(dir, "empty.db"), readonly: true }).open(), "DGENT_NOT_A_DATABASE");
  });

  it("jsonl: a missing log is refused without a lock or a file; writes fail; a torn tail is left as it is", async () => {
    const dir = fresh();
    await expectCode(jsonlAdapter({ path: join(dir, "x", "none.jsonl"), readonly: true }).open(), "DGENT_INVALID_OPTIONS");
    expect(listing(dir)).toEqual({});
    const path = join(dir, "a.jsonl");
    await filled(jsonlAdapter({ path }), datums(4));
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('{"v":1,"op":"put","id":"torn')]));
    const before = listing(dir);
    const warnings: string[] = [];
    const ro = jsonlAdapter({ path, readonly: true });
    await ro.open({ events: { evicted: () => undefined, change: () => undefined, warning: (m) => void warnings.push(m) } });
    expect((await ro.list({ prefix: "", after: -Infinity, limit: 10 })).map((d) => d.id).sort()).toEqual(["d/0", "d/1", "d/2", "d/3"]);
    expect(warnings.join("\n")).toMatch(/torn tail.*left as it is/);
    await expectCode(ro.put(makeDatum({ content: "no" })), "DGENT_BACKEND_ERROR");
    await expectCode(ro.delete("d/1"), "DGENT_BACKEND_ERROR");
    await ro.close();
    expect(listing(dir)).toEqual(before);
  });

  it("postgres: read-only sessions open an existing table, refuse writes (25006), and cannot create a schema", async () => {
    const namespace = freshSchema("ro");
    const rw = postgresAdapter({ url: server.url, namespace, listen: false });
    await filled(rw, datums(2));
    const ro = postgresAdapter({ url: server.url, namespace, readonly: true, listen: false });
    await ro.open();
    expect(await ro.get("d/0")).not.toBeNull();
    const refused = await expectCode(ro.put(makeDatum({ content: "no" })), "DGENT_UNAVAILABLE");
    expect(refused.message).toContain("25006");
    await ro.close();
    const schemas = await schemaListing();
    const missing = postgresAdapter({ url: server.url, namespace: freshSchema("ro_missing"), readonly: true, listen: false });
    const err = await missing.open().then(
      () => null,
      (e: unknown) => e as { details: Record<string, unknown> },
    );
    expect(err?.details).toMatchObject({ reason: "25006" });
    expect(await schemaListing()).toEqual(schemas);
  });
});
