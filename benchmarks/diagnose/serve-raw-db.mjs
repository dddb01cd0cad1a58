/**
 * The raw baseline's database in the serve diagnoses: better-sqlite3 on dgent's SQLite schema
 * (every migration), with the tier's pragmas, and its prepared INSERT.
 */
import { join } from "node:path";

export async function rawServeDb(dir) {
  const Database = (await import("better-sqlite3")).default;
  const { MIGRATIONS } = await import("dgent/adapters/sqlite");
  const db = new Database(join(dir, "raw.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma(`mmap_size = ${2 ** 31}`);
  for (const m of MIGRATIONS) db.exec(m.up);
  const insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
  return { db, insert };
}
