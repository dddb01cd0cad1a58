/**
 * Diagnosis: SQLite get at 10k and at 1M rows with raw better-sqlite3 (dgent's schema), with the
 * default page cache, with a memory map (`mmap_size`), and as a WITHOUT ROWID table. Takes a few
 * minutes (two 1M-row files).
 *
 *   npx vite-node benchmarks/diagnose/sqlite-1m.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { compare } from "../measure.js";
import { benchDatum, cycling } from "../workload.js";
const dir = mkdtempSync(join(tmpdir(), "sq1m-"));
const make = (path: string, n: number, withoutRowid = false) => {
  const db = new Database(path);
  db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL");
  db.exec(`CREATE TABLE data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT)${withoutRowid ? " WITHOUT ROWID" : ""};
CREATE INDEX idx_data_created ON data (created_at, id); CREATE INDEX idx_data_parent ON data (causal_parent);`);
  const ins = db.prepare("INSERT INTO data VALUES (?, ?, ?, ?, ?)");
  const ids: string[] = [];
  const tx = db.transaction((from: number, to: number) => { for (let i = from; i < to; i++) { const d = benchDatum(i, null, 1e12 + i); ins.run(d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)); if (i % 7 === 0) ids.push(d.id); } });
  for (let i = 0; i < n; i += 1000) tx(i, Math.min(n, i + 1000));
  db.close();
  const scattered = ids.map((_, k) => ids[(k * 7919) % ids.length] as string);
  return scattered;
};
const small = make(join(dir, "s.db"), 10_000);
const large = make(join(dir, "l.db"), 1_000_000);
const smallW = make(join(dir, "sw.db"), 10_000, true);
const largeW = make(join(dir, "lw.db"), 1_000_000, true);
const open = (path: string, pragmas: string[]) => { const db = new Database(path); db.pragma("journal_mode = WAL"); for (const p of pragmas) db.pragma(p); return db.prepare("SELECT content, created_at, causal_parent, metadata FROM data WHERE id = ?").raw(true); };
const variants: Array<[string, string[]]> = [["default", []], ["mmap 2GB", ["mmap_size = 2147483648"]]];
const subjects = [];
for (const [label, pragmas] of variants) {
  for (const [size, path, ids] of [["10k", join(dir, "s.db"), small], ["1M", join(dir, "l.db"), large]] as const) {
    const st = open(path, pragmas);
    subjects.push({ name: `${label} @ ${size}`, args: cycling(ids), run: (id: unknown) => st.get(id as string) });
  }
  for (const [size, path, ids] of [["10k", join(dir, "sw.db"), smallW], ["1M", join(dir, "lw.db"), largeW]] as const) {
    const st = open(path, pragmas);
    subjects.push({ name: `WITHOUT ROWID ${label} @ ${size}`, args: cycling(ids), run: (id: unknown) => st.get(id as string) });
  }
}
const r = await compare(subjects, { budgetMs: 800, warmupMs: 200, minWarmup: 200, minSamples: 30, maxSamples: 20000, rounds: 4 });
for (const [k, v] of r) console.log(k.padEnd(22), v.p50.toFixed(2), "µs");
rmSync(dir, { recursive: true, force: true });
