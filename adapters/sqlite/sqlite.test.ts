import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum, type MakeDatumInput } from "../../core/datum.js";
import { isDgentError, type DgentError } from "../../core/errors.js";
import { RANKS } from "../ranks.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { openDatabase } from "./connection.js";
import { ADAPTER_NAME, APPLICATION_ID, DEFAULT_MMAP_SIZE, SCHEMA_VERSION, sqlite, sqliteAdapter } from "./index.js";
import { resolveConfig, type SqliteOptions } from "./options.js";
import { TAGS_DELETE_V4 } from "./sql.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "dgent-sqlite-"));
  dirs.push(dir);
  return dir;
};
const cleanup = (): void => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
};

const datum = (id: string, extra: Partial<MakeDatumInput> = {}): Datum =>
  makeDatum({ content: `content of ${id}`, createdAt: 1_000, ...extra, id });

/** The coded error `fn` throws or rejects with. */
async function codeOf(fn: () => unknown): Promise<DgentError> {
  try {
    await fn();
  } catch (error) {
    if (isDgentError(error)) return error;
    throw error;
  }
  throw new Error("expected a coded error, but the call succeeded");
}

afterAll(cleanup);

const rawVersions = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return {
      userVersion: db.pragma("user_version", { simple: true }),
      applicationId: db.pragma("application_id", { simple: true }),
      journalMode: db.pragma("journal_mode", { simple: true }),
      objects: db.prepare("SELECT type, name FROM sqlite_schema ORDER BY name").all(),
    };
  } finally {
    db.close();
  }
};

describe("sqlite: options and placement", () => {
  it("is registered under its name, with its rank and a validated options schema", async () => {
    expect(ADAPTER_NAME).toBe("sqlite");
    expect(sqlite.name).toBe("sqlite");
    expect(sqlite.rank).toBe(RANKS.sqlite);
    const dir = tempDir();
    const viaRegistry = await defaultRegistry.createAdapter("sqlite", { namespace: "reg", dataDir: dir });
    expect(viaRegistry.rank).toBe(RANKS.sqlite);
    expect((await codeOf(() => sqliteAdapter({ synchronous: "OFF" as never }))).code).toBe("DGENT_INVALID_OPTIONS");
    expect((await codeOf(() => sqliteAdapter({ busyTimeoutMs: -1 }))).code).toBe("DGENT_INVALID_OPTIONS");
    expect((await codeOf(() => sqliteAdapter({ namespace: "../escape" }))).code).toBe("DGENT_INVALID_OPTIONS");
    expect((await codeOf(() => sqliteAdapter({ path: join(dir, "a.db"), dataDir: dir }))).code).toBe(
      "DGENT_INVALID_OPTIONS",
    );
    expect((await codeOf(() => sqliteAdapter({ colour: "red" } as never))).code).toBe("DGENT_INVALID_OPTIONS");
  });

  it("stores <dataDir>/<namespace>.db in WAL mode and declares its capabilities", async () => {
    const dir = tempDir();
    const a = sqliteAdapter({ namespace: "agent-7", dataDir: join(dir, "nested", "data") });
    expect(a.path).toBe(join(dir, "nested", "data", "agent-7.db"));
    expect(a.capabilities).toEqual({
      persistent: true,
      multiProcess: true,
      nativeCausalChain: true,
      batch: true,
      scan: true,
      evicts: false,
      refs: true,
      transactions: true,
      query: true,
      queryCost: "indexed",
    });
    await a.open();
    await a.put(datum("x"));
    await a.close();
    const v = rawVersions(a.path);
    expect(v.journalMode).toBe("wal");
    expect(v.userVersion).toBe(SCHEMA_VERSION);
    expect(v.applicationId).toBe(APPLICATION_ID);
  });

  it("maps the file (mmapSize, default 2 GiB as far as SQLite's cap allows); 0 turns the map off; bad sizes are refused", async () => {
    const dir = tempDir();
    /** `PRAGMA mmap_size` as the tier's own connection has it (the setting is per connection). */
    const mapped = (options: SqliteOptions): number => {
      const { db } = openDatabase(resolveConfig({ path: join(dir, "m.db"), ...options }));
      try {
        return db.pragma("mmap_size", { simple: true }) as number;
      } finally {
        db.close();
      }
    };
    expect(DEFAULT_MMAP_SIZE).toBe(2 ** 31);
    // better-sqlite3 builds SQLite with SQLITE_MAX_MMAP_SIZE 0x7fff0000 and SQLite lowers larger sizes to it.
    expect(mapped({})).toBe(Math.min(DEFAULT_MMAP_SIZE, 0x7fff_0000));
    expect(mapped({ mmapSize: 64 * 2 ** 20 })).toBe(64 * 2 ** 20);
    expect(mapped({ mmapSize: 0 })).toBe(0);
    // Through the tier as users make it: reads and writes work either way.
    for (const mmapSize of [undefined, 0, 2 ** 20]) {
      const a = sqliteAdapter({ path: join(dir, `t-${mmapSize}.db`), ...(mmapSize === undefined ? {} : { mmapSize }) });
      await a.open();
      await a.putMany(Array.from({ length: 200 }, (_, i) => datum(`m/${i}`, { createdAt: 1_000 + i })));
      expect((await a.get("m/7"))?.id).toBe("m/7");
      expect((await a.list({ prefix: "m/", after: -1, limit: 3 })).map((d) => d.id)).toEqual(["m/199", "m/198", "m/197"]);
      await a.close();
    }
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, "1GB", null]) {
      const error = await codeOf(() => sqliteAdapter({ path: join(dir, "bad.db"), mmapSize: bad as never }));
      expect(error.code, String(bad)).toBe("DGENT_INVALID_OPTIONS");
      expect(error.message).toMatch(/mmapSize/);
    }
    // Nothing to map in memory: the option is accepted and changes nothing.
    const m = sqliteAdapter({ path: ":memory:", mmapSize: 2 ** 20 });
    await m.open();
    await m.put(datum("in-memory"));
    expect((await m.get("in-memory"))?.id).toBe("in-memory");
    await m.close();
  });

  it('keeps ":memory:" in memory and says it is neither persistent nor shared', async () => {
    const a = sqliteAdapter({ path: ":memory:" });
    expect(a.capabilities.persistent).toBe(false);
    expect(a.capabilities.multiProcess).toBe(false);
    await a.open();
    await a.put(datum("m"));
    expect((await a.get("m"))?.id).toBe("m");
    await a.close();
  });
});

describe("sqlite: schema and migrations", () => {
  it("migrates once: a second open applies nothing and the version stays put", async () => {
    const path = join(tempDir(), "m.db");
    const first = sqliteAdapter({ path });
    await first.open();
    expect((await first.stats()).migrationsApplied).toEqual([1, 2, 3, 4, 5, 6]);
    await first.close();
    const before = rawVersions(path);
    const second = sqliteAdapter({ path });
    await second.open();
    const stats = await second.stats();
    expect(stats.migrationsApplied).toEqual([]);
    expect(stats.schemaVersion).toBe(SCHEMA_VERSION);
    await second.close();
    expect(rawVersions(path)).toEqual(before);
    expect(before.objects).toEqual([
      { type: "table", name: "data" },
      { type: "index", name: "idx_data_children" },
      { type: "index", name: "idx_data_created" },
      { type: "table", name: "reflog" },
      { type: "trigger", name: "reflog_spill" },
      { type: "table", name: "refs" },
      { type: "index", name: "sqlite_autoindex_data_1" },
      { type: "table", name: "tags" },
      { type: "trigger", name: "tags_delete" },
      { type: "trigger", name: "tags_insert" },
    ]);
  });

  it("the tags_delete trigger seeks each tag row by the whole primary key, also after PRAGMA optimize on tag values most datums share", async () => {
    const path = join(tempDir(), "trigger.db");
    const a = sqliteAdapter({ path });
    await a.open();
    for (let i = 0; i < 400; i++) await a.put({ id: `d/${i}`, content: new Uint8Array([i % 256]), createdAt: 1000 + i, causalParent: null, metadata: { crdt: "c", part: "delta", dot: `r:${i}` } });
    expect(await a.delete("d/7")).toBe(true);
    await a.close();
    const raw = new Database(path);
    raw.exec("ANALYZE");
    const body = (raw.prepare("SELECT sql FROM sqlite_schema WHERE name = 'tags_delete'").pluck().get() as string).match(/BEGIN\s+([\s\S]*?);\s*END/)?.[1];
    expect(body).toBe(TAGS_DELETE_V4);
    const plan = raw.prepare(`EXPLAIN QUERY PLAN ${TAGS_DELETE_V4.replace(/old\.created_at/g, "1005").replace(/old\.id/g, "'d/5'").replace(/old\.metadata/g, "'{\"crdt\":\"c\"}'")}`).all() as { detail: string }[];
    expect(plan.map((r) => r.detail)).toContain("SEARCH tags USING PRIMARY KEY (key=? AND value=? AND created_at=? AND id=?)");
    expect(raw.prepare("SELECT count(*) FROM tags WHERE id = 'd/7'").pluck().get()).toBe(0);
    expect(raw.prepare("SELECT count(*) FROM tags WHERE id = 'd/8'").pluck().get()).toBe(3);
    raw.close();
  });

  it("refuses a database written by a newer schema with DGENT_SCHEMA_TOO_NEW", async () => {
    const path = join(tempDir(), "new.db");
    const a = sqliteAdapter({ path });
    await a.open();
    await a.close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const error = await codeOf(() => sqliteAdapter({ path }).open());
    expect(error.code).toBe("DGENT_SCHEMA_TOO_NEW");
    expect(error.unit).toBe("sqlite");
    expect(error.message).toContain(String(SCHEMA_VERSION + 1));
    expect(rawVersions(path).userVersion).toBe(SCHEMA_VERSION + 1);
  });

  it("refuses a file that is not a SQLite database and leaves its bytes alone", async () => {
    const dir = tempDir();
    const path = join(dir, "notes.db");
    const bytes = Buffer.from("these are my notes, not a database\n".repeat(200));
    writeFileSync(path, bytes);
    const error = await codeOf(() => sqliteAdapter({ path }).open());
    expect(error.code).toBe("DGENT_NOT_A_DATABASE");
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(existsSync(`${path}-wal`) || existsSync(`${path}-shm`) || existsSync(`${path}-journal`)).toBe(false);
  });

  it("refuses a file with a SQLite header but no database behind it, unchanged", async () => {
    const path = join(tempDir(), "fake.db");
    const bytes = Buffer.concat([Buffer.from("SQLite format 3\0", "latin1"), Buffer.alloc(8192, 0x5a)]);
    writeFileSync(path, bytes);
    const error = await codeOf(() => sqliteAdapter({ path }).open());
    expect(error.code).toBe("DGENT_NOT_A_DATABASE");
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it("refuses another application's SQLite database without adopting or changing it", async () => {
    const path = join(tempDir(), "theirs.db");
    const raw = new Database(path);
    raw.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');");
    raw.close();
    const bytes = readFileSync(path);
    const error = await codeOf(() => sqliteAdapter({ path }).open());
    expect(error.code).toBe("DGENT_NOT_A_DATABASE");
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it("reports an unwritable data directory as DGENT_DATA_DIR_UNWRITABLE", async () => {
    const file = join(tempDir(), "plain-file");
    writeFileSync(file, "x");
    const viaDir = await codeOf(() => sqliteAdapter({ dataDir: join(file, "data") }).open());
    expect(viaDir.code).toBe("DGENT_DATA_DIR_UNWRITABLE");
    const viaPath = await codeOf(() => sqliteAdapter({ path: join(file, "sub", "x.db") }).open());
    expect(viaPath.code).toBe("DGENT_DATA_DIR_UNWRITABLE");
    expect(readFileSync(file, "utf8")).toBe("x");
  });
});

describe("sqlite: lifecycle and errors", () => {
  it("open and close are idempotent; calls outside them fail with coded errors", async () => {
    const a = sqliteAdapter({ path: join(tempDir(), "l.db") });
    expect((await codeOf(() => a.get("x"))).code).toBe("DGENT_NOT_OPEN");
    expect(await a.probe()).toBe(false);
    await a.open();
    await a.open();
    expect(await a.probe()).toBe(true);
    await a.close();
    await a.close();
    expect(await a.probe()).toBe(false);
    expect((await codeOf(() => a.put(datum("x")))).code).toBe("DGENT_CLOSED");
    expect((await codeOf(() => a.open())).code).toBe("DGENT_CLOSED");
  });

  it("a lock held past busyTimeoutMs is DGENT_UNAVAILABLE (retryable); the write then succeeds", async () => {
    const path = join(tempDir(), "busy.db");
    const a = sqliteAdapter({ path, busyTimeoutMs: 50 });
    await a.open();
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    try {
      const started = Date.now();
      const error = await codeOf(() => a.put(datum("late")));
      expect(error.code).toBe("DGENT_UNAVAILABLE");
      expect(error.retryable).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(40);
      expect((await codeOf(() => a.putMany([datum("late2")]))).code).toBe("DGENT_UNAVAILABLE");
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    expect(await a.put(datum("late"))).toBe("late");
    expect(await a.get("late2")).toBeNull();
    await a.close();
  });

  it("wraps other driver failures once as DGENT_BACKEND_ERROR with the cause", async () => {
    const path = join(tempDir(), "broken.db");
    const a = sqliteAdapter({ path });
    await a.open();
    await a.put(datum("j", { metadata: { k: "v" } }));
    const raw = new Database(path);
    raw.prepare("UPDATE data SET metadata = '{not json' WHERE id = 'j'").run();
    raw.close();
    const error = await codeOf(() => a.list({ prefix: "", after: -1, limit: 10 }));
    expect(error.code).toBe("DGENT_BACKEND_ERROR");
    expect(error.unit).toBe("sqlite");
    expect(error.cause).toBeInstanceOf(Error);
    await a.close();
  });
});

describe("sqlite: the append-only law and batches", () => {
  it("re-putting the same value is a no-op that keeps the first createdAt; a different value conflicts", async () => {
    const a = sqliteAdapter({ path: join(tempDir(), "law.db") });
    await a.open();
    const d = datum("law", { createdAt: 5, metadata: { b: "2", a: "1" } });
    expect(await a.put(d)).toBe("law");
    expect(await a.put({ ...d, createdAt: 99, metadata: { a: "1", b: "2" } })).toBe("law");
    expect((await a.get("law"))?.createdAt).toBe(5);
    for (const changed of [
      { ...d, content: new Uint8Array([1]) },
      { ...d, causalParent: "p" },
      { ...d, metadata: { a: "1" } },
    ]) {
      const error = await codeOf(() => a.put(changed));
      expect(error.code).toBe("DGENT_CONFLICT");
      expect(error.unit).toBe("sqlite");
    }
    const got = await a.get("law");
    expect(Buffer.from(got?.content ?? []).toString()).toBe("content of law");
    expect(got?.content).toBeInstanceOf(Uint8Array);
    expect(Object.getPrototypeOf(got?.metadata)).toBe(Object.prototype);
    await a.close();
  });

  it("putMany is all-or-nothing: one conflicting datum leaves nothing of the batch written", async () => {
    const a = sqliteAdapter({ path: join(tempDir(), "batch.db") });
    await a.open();
    await a.put(datum("taken"));
    const batch = [datum("n1"), datum("n2"), datum("taken", { content: "other" }), datum("n3")];
    expect((await codeOf(() => a.putMany(batch))).code).toBe("DGENT_CONFLICT");
    for (const id of ["n1", "n2", "n3"]) expect(await a.get(id)).toBeNull();
    const twice = [datum("t1"), datum("t1", { content: "changed" })];
    expect((await codeOf(() => a.putMany(twice))).code).toBe("DGENT_CONFLICT");
    expect(await a.get("t1")).toBeNull();
    expect(await a.putMany([datum("n1"), datum("n1"), datum("taken")])).toEqual(["n1", "n1", "taken"]);
    expect((await a.stats()).count).toBe(2);
    await a.close();
  });

  it("stores empty metadata as NULL and empty content as an empty byte string", async () => {
    const path = join(tempDir(), "empty.db");
    const a = sqliteAdapter({ path });
    await a.open();
    await a.put(datum("e", { content: new Uint8Array(0) }));
    const tricky = JSON.parse('{"__proto__":"x","":""}') as Record<string, string>;
    await a.put(datum("m", { metadata: tricky }));
    expect((await a.get("e"))?.content.byteLength).toBe(0);
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    await a.put(datum("view", { content: backing.subarray(2, 5) }));
    expect([...((await a.get("view"))?.content ?? [])]).toEqual([1, 2, 3]);
    expect(await a.putMany([])).toEqual([]);
    const back = (await a.get("m"))?.metadata ?? {};
    expect(Object.hasOwn(back, "__proto__") && back["__proto__"] === "x" && back[""] === "").toBe(true);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT metadata FROM data WHERE id = 'e'").pluck().get()).toBeNull();
    raw.close();
    await a.close();
  });
});

describe("sqlite: scan and stats", () => {
  it("scan pages through every datum, and the caller may delete between pages", async () => {
    const a = sqliteAdapter({ path: join(tempDir(), "scan.db") });
    await a.open();
    const n = 700;
    await a.putMany(Array.from({ length: n }, (_, i) => datum(`s${i}`, { createdAt: i })));
    const seen = new Set<string>();
    for await (const d of a.scan()) {
      expect(seen.has(d.id)).toBe(false);
      seen.add(d.id);
      expect(await a.delete(d.id)).toBe(true);
    }
    expect(seen.size).toBe(n);
    const stats = await a.stats();
    expect(stats.count).toBe(0);
    expect(stats.bytes).toBe(0);
    await a.close();
  });

  it("stats counts datums and their bytes", async () => {
    const a = sqliteAdapter({ path: join(tempDir(), "stats.db") });
    await a.open();
    await a.put(datum("ab", { content: new Uint8Array(10) }));
    await a.put(datum("é", { content: new Uint8Array(5), metadata: { k: "v" } }));
    const stats = await a.stats();
    expect(stats.count).toBe(2);
    expect(stats.bytes).toBe(10 + 2 + 5 + 2 + '{"k":"v"}'.length);
    await a.close();
  });
});
