// The SQL floor of a checkpoint put on SQLite (README "Speed"): raw better-sqlite3, no saver code,
// SqliteSaver's row in its table against dgent's row in the sqlite tier's table (schema made by
// the tier itself) with 0, 1 and 4 tags, without the children index, and with the data table
// rebuilt WITHOUT ROWID (not the tier's schema: what it would save); CPU per insert (id
// generation included), variants taking turns in rounds of 200 inserts, medians of 27 rounds.
//
//   npm run build && node integrations/langgraph/bench-sqlite-floor.mjs
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { createStore, sqliteAdapter } from "dgent";
const dir = mkdtempSync(join(tmpdir(), "floor-"));
const mk = async (name) => { const s = createStore({ tiers: [sqliteAdapter({ path: join(dir, name) })] }); await s.open(); await s.close(); };
const body = Buffer.from(JSON.stringify({ checkpoint: { v: 4, id: randomUUID(), ts: new Date().toISOString(), channel_versions: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`ch${i}`, 52.088682162])), versions_seen: { a: { b: 1.5 } } }, values: { log: Array.from({ length: 60 }, (_, i) => `p${i}`), b: { result: 49, detail: "x".repeat(64) } } }));
const meta4 = (step, t) => JSON.stringify({ "lg.checkpoint": JSON.stringify(["", t]), "m.parents": "{}", "m.source": '"loop"', "m.step": String(step) });
const meta1 = (step, t) => JSON.stringify({ "lg.checkpoint": JSON.stringify(["", t]) });
const variants = {};
const official = new Database(join(dir, "official.db"));
official.pragma("journal_mode=WAL");
official.exec(`CREATE TABLE checkpoints (thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', checkpoint_id TEXT NOT NULL, parent_checkpoint_id TEXT, type TEXT, checkpoint BLOB, metadata BLOB, PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id))`);
const oIns = official.prepare(`INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)`);
const ometa = Buffer.from(JSON.stringify({ source: "loop", step: 50, parents: {} }));
let prev = {};
variants["SqliteSaver row (sync FULL, its default)"] = (i) => { const id = randomUUID(); oIns.run(`t${i % 10}`, "", id, prev.o ?? null, "json", body, ometa); prev.o = id; };
const dgentDb = async (name, setup = () => {}) => {
  await mk(name);
  const db = new Database(join(dir, name));
  db.pragma("journal_mode=WAL"); db.pragma("synchronous=NORMAL");
  setup(db);
  return db.prepare(`INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`);
};
const o2 = new Database(join(dir, "official2.db")); o2.pragma("journal_mode=WAL"); o2.pragma("synchronous=NORMAL");
o2.exec(`CREATE TABLE checkpoints (thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', checkpoint_id TEXT NOT NULL, parent_checkpoint_id TEXT, type TEXT, checkpoint BLOB, metadata BLOB, PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id))`);
const o2Ins = o2.prepare(`INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)`);
variants["SqliteSaver row, sync NORMAL"] = (i) => { const id = randomUUID(); o2Ins.run(`t${i % 10}`, "", id, prev.o2 ?? null, "json", body, ometa); prev.o2 = id; };
const row = (ins, key, meta) => (i) => { const t = `t${i % 10}`; const id = `langgraph/${t}/c/${randomUUID()}`; ins.run(id, body, Date.now() + i / 1000, prev[key] ?? null, meta === null ? null : meta(i % 100, t)); prev[key] = id; };
variants["dgent row, no tags"] = row(await dgentDb("d0.db"), "d0", null);
variants["dgent row, 1 tag"] = row(await dgentDb("d1.db"), "d1", meta1);
variants["dgent row, 4 tags"] = row(await dgentDb("d4.db"), "d4", meta4);
variants["dgent row, 4 tags, no children index"] = row(await dgentDb("d4c.db", (db) => db.exec("DROP INDEX idx_data_children")), "d4c", meta4);
variants["dgent row, no tags, no children index"] = row(await dgentDb("d0c.db", (db) => db.exec("DROP INDEX idx_data_children")), "d0c", null);
// Not the tier's schema: its data table rebuilt WITHOUT ROWID (one B-tree keyed by id instead of a
// rowid table and its primary-key index), the same columns, indexes and triggers otherwise.
const withoutRowid = (db) => {
  const others = db.prepare("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'data' AND type IN ('index', 'trigger') AND sql IS NOT NULL").all();
  db.exec("DROP TABLE data");
  db.exec("CREATE TABLE data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT) WITHOUT ROWID");
  for (const o of others) db.exec(o.sql);
};
variants["dgent row, 4 tags, data WITHOUT ROWID"] = row(await dgentDb("d4w.db", withoutRowid), "d4w", meta4);
variants["dgent row, no tags, data WITHOUT ROWID"] = row(await dgentDb("d0w.db", withoutRowid), "d0w", null);
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const s = {};
const N = 200;
for (let r = 0; r < 30; r++) for (const [k, f] of Object.entries(variants)) { const c = cpu(); for (let i = 0; i < N; i++) f(r * N + i); (s[k] ??= []).push((cpu() - c) / N); }
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
for (const [k, v] of Object.entries(s)) console.log(k.padEnd(44), med(v.slice(3)).toFixed(1), "µs CPU / insert");
rmSync(dir, { recursive: true, force: true });
