import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Datum } from "../../core/datum.js";
import { DEFAULT_MMAP_SIZE, sqliteAdapter } from "../../adapters/sqlite/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, keyvSqlite, unstorageSqlite, type PeerResult } from "../peers.js";
import { dgentContender } from "./dgent.js";

type Row = [string, Buffer, number, string | null, string | null];

function toDatum(r: Row): Datum {
  return { id: r[0], content: r[1], createdAt: r[2], causalParent: r[3], metadata: r[4] === null ? {} : (JSON.parse(r[4]) as Record<string, string>) };
}

/**
 * The raw baseline of the SQLite tier: better-sqlite3 on its own file, WAL, `synchronous = NORMAL`
 * and the same memory map as dgent's (`mmap_size`, 2 GiB by default), the same table and indexes, statements prepared once and
 * read in raw (array) mode; put = `INSERT … ON CONFLICT (id) DO NOTHING` (+ a compare only when
 * the id existed), putMany = one transaction, chain = a plain recursive CTE (no cycle or depth
 * reporting). Synchronous.
 */
export function rawSqliteContender(path: string): Contender {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma(`mmap_size = ${DEFAULT_MMAP_SIZE}`);
  db.exec(`CREATE TABLE IF NOT EXISTS data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT);
CREATE INDEX IF NOT EXISTS idx_data_created ON data (created_at, id);
CREATE INDEX IF NOT EXISTS idx_data_parent ON data (causal_parent);`);
  const insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
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
    }
    return d.id;
  };
  const putAll = db.transaction((ds: readonly Datum[]) => ds.map(putOne));
  return {
    name: "raw better-sqlite3",
    kind: "raw",
    description: "better-sqlite3, WAL, synchronous=NORMAL, same schema and indexes, prepared statements in raw mode; synchronous",
    put: putOne,
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
  };
}

export async function sqliteTier(dir: string, withPeers: boolean): Promise<TierSetup> {
  const base = join(dir, "sqlite");
  mkdirSync(base, { recursive: true });
  const contenders: Contender[] = [
    dgentContender(sqliteAdapter({ dataDir: base, namespace: "dgent" }), "createStore({ tiers: [sqliteAdapter()] }) (WAL, synchronous=NORMAL)"),
    rawSqliteContender(join(base, "raw.db")),
  ];
  const skipped: { name: string; reason: string }[] = [];
  const peers: PeerResult[] = withPeers ? [await keyvSqlite(base), await unstorageSqlite(base)] : [];
  for (const p of peers) {
    if (isSkipped(p)) skipped.push({ name: p.name, reason: p.skipped });
    else contenders.push(p);
  }
  return {
    tier: "sqlite",
    label: "sqlite (better-sqlite3, WAL, synchronous=NORMAL, local ext4)",
    contenders,
    ...(skipped.length ? { skipped } : {}),
    dispose: async () => undefined,
  };
}
