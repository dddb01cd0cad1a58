/**
 * The peer libraries a user would pick instead of dgent, on the same backends: Keyv (with its
 * official adapters) and unstorage (with its drivers). They are key-value stores: put is `set`,
 * get is `get`, putMany is their batch call, and list(100) is what they offer for enumeration —
 * Keyv's `iterator()` (every entry, then sorted) and unstorage's `getKeys()` (every key, sorted,
 * then `getItems` of the newest 100). Their list relies on time-ordered ids (UUIDv7) sorting by
 * creation; neither has a causal chain. Each is imported lazily: when one is not installed (a
 * user's `dgent bench` without the repository's devDependencies) it is reported as skipped.
 *
 * Configuration favours the peer where its documentation offers a switch: Keyv in memory runs
 * with serialization off (its README: set `serialize`/`deserialize` to undefined), so it stores
 * and returns references (no copies, unlike dgent); SQLite files are switched to WAL with
 * `synchronous = NORMAL`, as dgent's are.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Datum } from "../core/datum.js";
import { compareNewestFirst } from "../core/order.js";
import type { Contender } from "./contender.js";
import { BATCH, fromRecord, toRecord, type DatumRecord } from "./workload.js";

export interface Skipped {
  readonly name: string;
  readonly skipped: string;
}

export type PeerResult = Contender | Skipped;

export function isSkipped(value: Contender | Skipped): value is Skipped {
  return "skipped" in value;
}

/** A peer that must run (a writer process opening what the parent made): its contender, or why not as an error. */
export function mustRun(p: PeerResult): Contender {
  if (isSkipped(p)) throw new Error(`${p.name}: ${p.skipped}`);
  return p;
}

function missing(name: string, error: unknown): Skipped {
  const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
  return { name, skipped: `cannot load: ${message}` };
}

// ---- loading the peers ----

type Loader = (specifier: string) => Promise<unknown>;
let loader: Promise<Loader> | undefined;

/**
 * Imports a peer library: from benchmarks/peers/node_modules (installed by `npm run bench` and
 * `npm test`, see benchmarks/peers/install.mjs) through benchmarks/peers/load.mjs — next to this
 * file in the repository, two levels up from a build in dist/benchmarks/ — else as a plain import
 * (a user's `dgent bench` finds the peers the user installed, or reports them skipped).
 */
export async function importPeer<T>(specifier: string): Promise<T> {
  loader ??= (async (): Promise<Loader> => {
    for (const relative of ["./peers/load.mjs", "../../benchmarks/peers/load.mjs"]) {
      const url = new URL(relative, import.meta.url);
      if (existsSync(fileURLToPath(url))) return ((await import(url.href)) as { load: Loader }).load;
    }
    return (name: string) => import(name) as Promise<unknown>;
  })();
  return (await (await loader)(specifier)) as T;
}

/** The constructors and functions of the peers, as far as the benchmark uses them. */
type Ctor<A extends unknown[] = [Record<string, unknown>?]> = new (...args: A) => unknown;
type Fn<A extends unknown[] = [Record<string, unknown>?]> = (...args: A) => unknown;

// ---- Keyv ----

interface KeyvLike {
  set(key: string, value: unknown): Promise<boolean>;
  get(key: string): Promise<unknown>;
  setMany(entries: Array<{ key: string; value: unknown }>): Promise<boolean[]>;
  iterator?: (namespace?: string) => AsyncGenerator<unknown[], void>;
  disconnect(): Promise<void>;
}

function keyvContender(name: string, description: string, keyv: KeyvLike, close: () => Promise<void> = () => keyv.disconnect()): Contender {
  const list = keyv.iterator
    ? async (limit: number) => {
        const all: Datum[] = [];
        for await (const entry of (keyv.iterator as NonNullable<KeyvLike["iterator"]>)()) all.push(entry[1] as Datum);
        all.sort(compareNewestFirst);
        return all.slice(0, limit);
      }
    : undefined;
  // No filters and no order in iterator(): every entry is read, the matches sorted.
  const filtered = keyv.iterator
    ? async (tag: string, value: string, limit: number) => {
        const found: Datum[] = [];
        for await (const entry of (keyv.iterator as NonNullable<KeyvLike["iterator"]>)()) {
          const d = entry[1] as Datum;
          if (d.metadata[tag] === value) found.push(d);
        }
        found.sort(compareNewestFirst);
        return found.slice(0, limit);
      }
    : undefined;
  return {
    name,
    kind: "peer",
    description,
    notes: { list: "iterator() over every entry, sorted newest first, first 100", putMany: "setMany()" },
    put: (d) => keyv.set(d.id, d),
    putMany: (ds) => keyv.setMany(ds.map((d) => ({ key: d.id, value: d }))),
    get: (id) => keyv.get(id),
    ...(list ? { list } : {}),
    ...(filtered ? { filtered, filteredNote: "iterator() over every entry, the matches (metadata tag === value) sorted newest first, first 100" } : {}),
    async prefill(datums) {
      for (let i = 0; i < datums.length; i += 1000) {
        await keyv.setMany(datums.slice(i, i + 1000).map((d) => ({ key: d.id, value: d })));
      }
    },
    close,
  };
}

export async function keyvMemory(): Promise<PeerResult> {
  const name = "keyv (Map)";
  try {
    const { default: Keyv } = await importPeer<{ default: Ctor }>("keyv");
    const keyv = new Keyv({ serialize: undefined, deserialize: undefined }) as unknown as KeyvLike;
    return keyvContender(name, "new Keyv({ serialize: undefined, deserialize: undefined }) over its default Map: stores references", keyv);
  } catch (error) {
    return missing(name, error);
  }
}

/** Keyv as it comes: its default Map, with its default (JSON) serialization of every value. */
export async function keyvMemoryJson(): Promise<PeerResult> {
  const name = "keyv (Map, JSON)";
  try {
    const { default: Keyv } = await importPeer<{ default: Ctor }>("keyv");
    const keyv = new Keyv() as unknown as KeyvLike;
    return keyvContender(name, "new Keyv() as it comes: its default Map, values serialized to JSON (content as base64) on set and parsed on get", keyv);
  } catch (error) {
    return missing(name, error);
  }
}

export async function keyvSqlite(dir: string): Promise<PeerResult> {
  const name = "keyv + @keyv/sqlite";
  try {
    const { default: Keyv } = await importPeer<{ default: Ctor }>("keyv");
    const { default: KeyvSqlite } = await importPeer<{ default: new (options: Record<string, unknown>) => { query(sql: string): Promise<unknown> } }>("@keyv/sqlite");
    const store = new KeyvSqlite({ uri: `sqlite://${join(dir, "keyv.sqlite")}`, iterationLimit: 1000 });
    await store.query("PRAGMA journal_mode = WAL");
    await store.query("PRAGMA synchronous = NORMAL");
    const keyv = new Keyv({ store }) as unknown as KeyvLike;
    return keyvContender(name, "@keyv/sqlite (node-sqlite3, async), WAL, synchronous=NORMAL, iterationLimit 1000; JSON serialization", keyv);
  } catch (error) {
    return missing(name, error);
  }
}

/** `max`: the size of its `pg.Pool` (its options go to the pool; pg's default is 10). */
export async function keyvPostgres(url: string, schema: string, max?: number): Promise<PeerResult> {
  const name = "keyv + @keyv/postgres";
  try {
    const { default: Keyv } = await importPeer<{ default: Ctor }>("keyv");
    const { default: KeyvPostgres } = await importPeer<{ default: Ctor }>("@keyv/postgres");
    const store = new KeyvPostgres({ uri: url, schema, table: "keyv", iterationLimit: 1000, ...(max === undefined ? {} : { max }) });
    const keyv = new Keyv({ store }) as unknown as KeyvLike;
    return keyvContender(name, `@keyv/postgres (pg pool${max === undefined ? "" : ` max ${max}`}), its own table, iterationLimit 1000; JSON serialization`, keyv);
  } catch (error) {
    return missing(name, error);
  }
}

// ---- unstorage ----

interface StorageLike {
  setItem(key: string, value: unknown): Promise<void>;
  getItem(key: string): Promise<unknown>;
  setItems(items: Array<{ key: string; value: unknown }>): Promise<void>;
  getItems(items: string[]): Promise<Array<{ key: string; value: unknown }>>;
  getKeys(base?: string): Promise<string[]>;
  dispose(): Promise<void>;
}

/** Values an unstorage scan fetches per `getItems` call. */
const SCAN_CHUNK = 500;

function unstorageContender(name: string, description: string, storage: StorageLike, close: () => Promise<void> = () => storage.dispose()): Contender {
  const toItems = (ds: readonly Datum[]) => ds.map((d) => ({ key: d.id, value: toRecord(d) }));
  return {
    name,
    kind: "peer",
    description,
    notes: { list: "getKeys() of every key, sorted, getItems() of the newest 100", putMany: "setItems()" },
    put: (d) => storage.setItem(d.id, toRecord(d)),
    putMany: (ds) => storage.setItems(toItems(ds)),
    get: async (id) => {
      const r = (await storage.getItem(id)) as DatumRecord | null;
      return r === null ? null : fromRecord(id, r);
    },
    list: async (limit) => {
      const keys = await storage.getKeys();
      keys.sort();
      const newest = keys.slice(-limit).reverse();
      const items = await storage.getItems(newest);
      return items.map((item) => fromRecord(item.key, item.value as DatumRecord));
    },
    // Every key, sorted (time-ordered ids), then the values newest first in chunks, filtered,
    // until `limit` match: the scan stops early, the best a user can do without an index.
    filtered: async (tag, value, limit) => {
      const keys = await storage.getKeys();
      keys.sort();
      const out: Datum[] = [];
      for (let end = keys.length; end > 0 && out.length < limit; end -= SCAN_CHUNK) {
        const items = await storage.getItems(keys.slice(Math.max(0, end - SCAN_CHUNK), end));
        items.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
        for (const item of items) {
          const r = item.value as DatumRecord;
          if (r.m[tag] !== value) continue;
          out.push(fromRecord(item.key, r));
          if (out.length === limit) break;
        }
      }
      return out;
    },
    filteredNote: `getKeys() of every key, sorted, then getItems() of ${SCAN_CHUNK} at a time from the newest, filtered in JavaScript, until 100 match`,
    async prefill(datums) {
      for (let i = 0; i < datums.length; i += BATCH * 10) await storage.setItems(toItems(datums.slice(i, i + BATCH * 10)));
    },
    close,
  };
}

/** unstorage's db0 driver warns once that it is experimental; the warning is not news here. */
function quietDb0(): void {
  (globalThis as Record<string, unknown>).__unstorage_db0_experimental_warning__ = true;
}

export async function unstorageMemory(): Promise<PeerResult> {
  const name = "unstorage (memory)";
  try {
    const { createStorage } = await importPeer<{ createStorage: Fn }>("unstorage");
    const { default: memoryDriver } = await importPeer<{ default: Fn }>("unstorage/drivers/memory");
    const storage = createStorage({ driver: memoryDriver() }) as unknown as StorageLike;
    return unstorageContender(name, "createStorage({ driver: memory() }); values as JSON (content base64)", storage);
  } catch (error) {
    return missing(name, error);
  }
}

export async function unstorageFs(dir: string): Promise<PeerResult> {
  const name = "unstorage (fs)";
  try {
    const { createStorage } = await importPeer<{ createStorage: Fn }>("unstorage");
    const { default: fsDriver } = await importPeer<{ default: Fn }>("unstorage/drivers/fs");
    const storage = createStorage({ driver: fsDriver({ base: join(dir, "unstorage-fs") }) }) as unknown as StorageLike;
    return unstorageContender(name, "createStorage({ driver: fs({ base }) }): one file per key, writeFile (no fsync); values as JSON", storage);
  } catch (error) {
    return missing(name, error);
  }
}

export async function unstorageSqlite(dir: string): Promise<PeerResult> {
  const name = "unstorage + db0 (better-sqlite3)";
  try {
    quietDb0();
    const { createStorage } = await importPeer<{ createStorage: Fn }>("unstorage");
    const { default: db0Driver } = await importPeer<{ default: Fn }>("unstorage/drivers/db0");
    const { createDatabase } = await importPeer<{ createDatabase: (connector: unknown) => { getInstance(): Promise<unknown>; dispose(): Promise<void> } }>("db0");
    const { default: sqliteConnector } = await importPeer<{ default: Fn }>("db0/connectors/better-sqlite3");
    const database = createDatabase(sqliteConnector({ path: join(dir, "unstorage-db0.sqlite") }));
    const db = (await database.getInstance()) as { pragma(sql: string): unknown };
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    const storage = createStorage({ driver: db0Driver({ database }) }) as unknown as StorageLike;
    return unstorageContender(name, "unstorage db0 driver over db0's better-sqlite3 connector, WAL, synchronous=NORMAL; values as JSON", storage, async () => {
      await storage.dispose();
      await database.dispose();
    });
  } catch (error) {
    return missing(name, error);
  }
}

export async function unstoragePostgres(url: string, table: string): Promise<PeerResult> {
  const name = "unstorage + db0 (pg)";
  try {
    quietDb0();
    const { createStorage } = await importPeer<{ createStorage: Fn }>("unstorage");
    const { default: db0Driver } = await importPeer<{ default: Fn }>("unstorage/drivers/db0");
    const { createDatabase } = await importPeer<{ createDatabase: (connector: unknown) => { getInstance(): Promise<unknown>; dispose(): Promise<void> } }>("db0");
    const { default: postgresqlConnector } = await importPeer<{ default: Fn }>("db0/connectors/postgresql");
    const database = createDatabase(postgresqlConnector({ url }));
    const storage = createStorage({ driver: db0Driver({ database, tableName: table }) }) as unknown as StorageLike;
    return unstorageContender(name, "unstorage db0 driver over db0's postgresql connector (one pg client); values as JSON", storage, async () => {
      await storage.dispose();
      await database.dispose();
    });
  } catch (error) {
    return missing(name, error);
  }
}

// ---- Redis (the concurrency section; benchmarks/redis.mjs has its own) ----

export async function keyvRedis(url: string, namespace: string): Promise<PeerResult> {
  const name = "keyv + @keyv/redis";
  try {
    const { default: Keyv } = await importPeer<{ default: Ctor }>("keyv");
    const { default: KeyvRedis } = await importPeer<{ default: Ctor<[string]> }>("@keyv/redis");
    const keyv = new Keyv({ store: new KeyvRedis(url), namespace }) as unknown as KeyvLike;
    return keyvContender(name, "Keyv over @keyv/redis (node-redis), its namespace; JSON serialization", keyv);
  } catch (error) {
    return missing(name, error);
  }
}

export async function unstorageRedis(url: string, base: string): Promise<PeerResult> {
  const name = "unstorage (redis)";
  try {
    const { createStorage } = await importPeer<{ createStorage: Fn }>("unstorage");
    const { default: redisDriver } = await importPeer<{ default: Fn }>("unstorage/drivers/redis");
    const storage = createStorage({ driver: redisDriver({ url, base }) }) as unknown as StorageLike;
    return unstorageContender(name, "createStorage({ driver: redis({ url, base }) }) (ioredis); values as JSON", storage);
  } catch (error) {
    return missing(name, error);
  }
}
