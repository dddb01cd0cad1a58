import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Datum } from "../../core/datum.js";
import { DEFAULT_MMAP_SIZE, sqliteAdapter } from "../../adapters/sqlite/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, mustRun, keyvSqlite, unstorageSqlite, type PeerResult } from "../peers.js";
import { dgentContender } from "./dgent.js";
import { dgentRefOps, measureRefs, type RefOps } from "./refs.js";

type Row = [string, Buffer, number, string | null, string | null];

function toDatum(r: Row): Datum {
  return { id: r[0], content: r[1], createdAt: r[2], causalParent: r[3], metadata: r[4] === null ? {} : (JSON.parse(r[4]) as Record<string, string>) };
}

/**
 * The raw baseline of the SQLite tier: better-sqlite3 on its own file, WAL, `synchronous = NORMAL`
 * and the same memory map as dgent's (`mmap_size`, 2 GiB by default), the same tables and indexes
 * (schema 3: `data`, its time and children indexes, and the `tags` table the queries read),
 * statements prepared once and read in raw (array) mode; put = one transaction of `INSERT … ON
 * CONFLICT (id) DO NOTHING` (+ a compare only when the id existed) and, for a new row, one
 * prepared insert per tag into `tags` (dgent's schema does that with a trigger; by hand, from
 * the driver, it measured about half the trigger's cost in bulk); putMany = one transaction, chain = a plain recursive CTE (no
 * cycle or depth reporting). Synchronous.
 */
export function rawSqliteContender(path: string): Contender & { refs: (target: string) => RefOps[] } {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma(`mmap_size = ${DEFAULT_MMAP_SIZE}`);
  // Wait for a writer of another process (the concurrency section's writer processes) as dgent does.
  db.pragma("busy_timeout = 5000");
  db.exec(`CREATE TABLE IF NOT EXISTS data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT);
CREATE INDEX IF NOT EXISTS idx_data_created ON data (created_at, id);
CREATE INDEX IF NOT EXISTS idx_data_children ON data (causal_parent, created_at, id);
CREATE TABLE IF NOT EXISTS tags (key TEXT NOT NULL, value TEXT NOT NULL, created_at REAL NOT NULL, id TEXT NOT NULL, PRIMARY KEY (key, value, created_at, id)) WITHOUT ROWID;`);
  const insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
  const insertTag = db.prepare("INSERT INTO tags (key, value, created_at, id) VALUES (?, ?, ?, ?)");
  const get = db.prepare("SELECT id, content, created_at, causal_parent, metadata FROM data WHERE id = ?").raw(true);
  const list = db.prepare("SELECT id, content, created_at, causal_parent, metadata FROM data ORDER BY created_at DESC, id DESC LIMIT ?").raw(true);
  const chain = db
    .prepare(
      `WITH RECURSIVE c(id, parent, depth) AS (
         SELECT id, causal_parent, 0 FROM data WHERE id = ?
         UNION ALL SELECT d.id, d.causal_parent, c.depth + 1 FROM c JOIN data d ON d.id = c.parent WHERE c.depth < 10000)
       SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata FROM c JOIN data d ON d.id = c.id ORDER BY c.depth DESC`,
    )
    .raw(true);
  const putOne = (d: Datum): string => {
    const meta = JSON.stringify(d.metadata);
    if (insert.run(d.id, d.content, d.createdAt, d.causalParent, meta).changes === 0) {
      const prior = get.get(d.id) as Row;
      if (Buffer.compare(prior[1], d.content) !== 0 || prior[3] !== d.causalParent || prior[4] !== meta) throw new Error(`conflict on ${d.id}`);
    } else {
      for (const key in d.metadata) insertTag.run(key, d.metadata[key], d.createdAt, d.id);
    }
    return d.id;
  };
  const putAll = db.transaction((ds: readonly Datum[]) => ds.map(putOne));
  // A datum and its tag rows are one write: one transaction (autocommit would make each its own).
  const putTx = db.transaction(putOne);
  /**
   * Refs by hand: the same refs table; a compare-and-set is the bare conditional UPDATE (one
   * autocommit statement), or the UPDATE with the upsert of the reflog ring's slot in one transaction
   * (the work dgent does); a 3-op transaction is BEGIN, two inserts, the UPDATE, COMMIT.
   */
  const refs = (target: string): RefOps[] => {
    db.exec(`CREATE TABLE IF NOT EXISTS refs (name TEXT PRIMARY KEY, target TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reflog (name TEXT NOT NULL, slot INTEGER NOT NULL, seq INTEGER NOT NULL, from_target TEXT, to_target TEXT, version INTEGER NOT NULL, at REAL NOT NULL, moved_by TEXT NOT NULL, PRIMARY KEY (name, slot)) WITHOUT ROWID;`);
    const create = db.prepare("INSERT INTO refs (name, target, version, updated_at) VALUES (?, ?, 1, ?)");
    for (const name of ["bench/cas", "bench/cas-log", "bench/tx"]) create.run(name, target, Date.now());
    const cas = db.prepare("UPDATE refs SET target = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?");
    // The ring dgent keeps (schema 5): move n in slot n % 100, one upsert.
    const log = db.prepare(`INSERT INTO reflog (name, slot, seq, from_target, to_target, version, at, moved_by) VALUES (?, ? % 100, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, from_target = excluded.from_target, to_target = excluded.to_target, version = excluded.version, at = excluded.at, moved_by = excluded.moved_by`);
    const versions = new Map([["bench/cas", 1], ["bench/cas-log", 1], ["bench/tx", 1]]);
    const move = (name: string, to: string): number => {
      const v = versions.get(name) as number;
      if (cas.run(to, Date.now(), name, v).changes !== 1) throw new Error(`${name}: compare-and-set failed`);
      versions.set(name, v + 1);
      return v + 1;
    };
    const moveLogged = db.transaction((name: string, to: string) => {
      const v = move(name, to);
      log.run(name, v, v, target, to, v, Date.now(), "raw");
    });
    const tx3 = db.transaction((a: Datum, b: Datum) => {
      putOne(a);
      putOne(b);
      move("bench/tx", b.id);
    });
    return [
      { name: "raw better-sqlite3", cas: () => move("bench/cas", target), tx3: (ds) => tx3(ds[0] as Datum, ds[1] as Datum) },
      { name: "raw + reflog row", cas: () => moveLogged("bench/cas-log", target) },
    ];
  };
  return {
    name: "raw better-sqlite3",
    kind: "raw",
    description: "better-sqlite3, WAL, synchronous=NORMAL, same tables and indexes (tag rows inserted by the driver, not a trigger), prepared statements in raw mode; synchronous",
    put: (d) => putTx(d),
    putMany: (ds) => putAll(ds),
    get: (id) => {
      const r = get.get(id) as Row | undefined;
      return r === undefined ? null : toDatum(r);
    },
    list: (limit) => (list.all(limit) as Row[]).map(toDatum),
    chain: (id) => (chain.all(id) as Row[]).map(toDatum),
    prefill: async (ds) => {
      for (let i = 0; i < ds.length; i += 1000) putAll(ds.slice(i, i + 1000));
    },
    close: async () => void db.close(),
    refs,
  };
}

const dgentSqlite = (base: string) => dgentContender(sqliteAdapter({ dataDir: base, namespace: "dgent" }), "createStore({ tiers: [sqliteAdapter()] }) (WAL, synchronous=NORMAL)");

/**
 * One contender of a SQLite tier made earlier by `sqliteTier` (its files under `base`), opened by
 * another process: the concurrency section's writer processes share the files.
 */
export async function sqliteContenderFor(name: string, base: string): Promise<Contender> {
  if (name === "dgent") return dgentSqlite(base);
  if (name === "raw better-sqlite3") return rawSqliteContender(join(base, "raw.db"));
  return mustRun(name.startsWith("keyv") ? await keyvSqlite(base) : await unstorageSqlite(base));
}

export async function sqliteTier(dir: string, withPeers: boolean): Promise<TierSetup & { base: string }> {
  const base = join(dir, "sqlite");
  mkdirSync(base, { recursive: true });
  const dgent = dgentSqlite(base);
  const raw = rawSqliteContender(join(base, "raw.db"));
  const contenders: Contender[] = [dgent, raw];
  const skipped: { name: string; reason: string }[] = [];
  const peers: PeerResult[] = withPeers ? [await keyvSqlite(base), await unstorageSqlite(base)] : [];
  for (const p of peers) {
    if (isSkipped(p)) skipped.push({ name: p.name, reason: p.skipped });
    else contenders.push(p);
  }
  return {
    tier: "sqlite",
    base,
    label: "sqlite (better-sqlite3, WAL, synchronous=NORMAL, local ext4)",
    contenders,
    ...(skipped.length ? { skipped } : {}),
    // Refs and transactions (benchmarks/tiers/refs.ts), before the timed writes.
    probe: async (ids, plan) => ({ refs: await measureRefs([await dgentRefOps(dgent.store, ids.get), ...raw.refs(ids.get)], plan("put")) }),
    dispose: async () => undefined,
  };
}
