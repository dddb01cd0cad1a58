/**
 * Diagnosis: where a SQLite compare-and-set's time goes, layer by layer. Each contender moves its
 * own ref by version, one call at a time; they run in interleaved blocks, and each block's p50 and
 * CPU per call (`process.cpuUsage()`) are kept. Contenders:
 * - `bare UPDATE`: the raw baseline of `npm run bench` (its own file and 4-column table);
 * - `bare on dgent's table`: the same statement on a dgent file's `refs` table;
 * - `+ log_seq`: and the move's number, which fires the `reflog_spill` trigger's check;
 * - `dgent's statement`: `REFS.casVersion` as the adapter binds it (with the row's `recent`);
 * - `adapter.setRef` and `store.refs.set`: the same through dgent's adapter, and its store.
 *
 *   npm run build && npx vite-node benchmarks/diagnose/refs-layers-sqlite.ts -- [--dist dist] [--calls 500] [--rounds 41]
 *
 * Prints, per contender, the medians over the blocks and each ÷ the bare UPDATE's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import type { Ref } from "../../core/refs.js";
import type { Store } from "../../core/store.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: { dist: { type: "string", default: "dist" }, calls: { type: "string", default: "500" }, rounds: { type: "string", default: "41" } },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const dir = mkdtempSync(join(tmpdir(), "dgent-refs-layers-"));
const url = (p: string) => pathToFileURL(join(resolve(values.dist as string), p)).href;
const { createStore, makeDatum } = (await import(url("core/index.js"))) as { createStore(o: unknown): Store; makeDatum(o: unknown): { id: string } };
const { sqliteAdapter } = (await import(url("adapters/sqlite/index.js"))) as { sqliteAdapter(o: unknown): SetRef & object };
const { REFS } = (await import(url("adapters/sqlite/sql.js"))) as { REFS: { casVersion: string } };

interface SetRef {
  setRef(name: string, target: string, expect: { version: number }, move: { by: string; at: number }): Promise<Ref>;
}
const BY = "host:1234";

const closers: (() => unknown)[] = [];

function open(file: string): Database.Database {
  const db = new Database(join(dir, file));
  closers.push(() => db.close());
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("mmap_size = 268435456");
  return db;
}

/** A dgent file holding ref `r`, and a second connection to it. */
async function dgentFile(file: string): Promise<{ db: Database.Database; target: string }> {
  const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, file) })] });
  const d = makeDatum({ content: "target" });
  await store.put(d as never);
  await store.refs.set("r", d.id);
  await store.close();
  return { db: open(file), target: d.id };
}

/** A statement moving ref `r` by version; `bind` gives its parameters for the version expected. */
function moving(db: Database.Database, sql: string, bind: (version: number, at: number) => unknown[]): () => void {
  const stmt = db.prepare(sql);
  let version = 1;
  return () => {
    if (stmt.run(...bind(version, Date.now())).changes !== 1) throw new Error("the compare-and-set moved nothing");
    version++;
  };
}

const contenders: { name: string; call(): unknown }[] = [];
try {
  {
    const db = open("raw.db");
    db.exec("CREATE TABLE refs (name TEXT PRIMARY KEY, target TEXT NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID");
    const target = makeDatum({ content: "target" }).id;
    db.prepare("INSERT INTO refs VALUES ('r', ?, 1, 0)").run(target);
    const call = moving(db, "UPDATE refs SET target = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?", (v, at) => [target, at, "r", v]);
    contenders.push({ name: "bare UPDATE", call });
  }
  {
    const { db, target } = await dgentFile("bare.db");
    const call = moving(db, "UPDATE refs SET target = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?", (v, at) => [target, at, "r", v]);
    contenders.push({ name: "bare on dgent's table", call });
  }
  {
    const { db, target } = await dgentFile("seq.db");
    const call = moving(db, "UPDATE refs SET target = ?, version = version + 1, updated_at = ?, log_seq = log_seq + 1 WHERE name = ? AND version = ?", (v, at) => [target, at, "r", v]);
    contenders.push({ name: "+ log_seq", call });
  }
  {
    const { db, target } = await dgentFile("stmt.db");
    const call = moving(db, REFS.casVersion, (v, at) => [target, at, `,${JSON.stringify(target)},${v + 1},${at},${JSON.stringify(BY)}]`, "r", v]);
    contenders.push({ name: "dgent's statement", call });
  }
  {
    const adapter = sqliteAdapter({ path: join(dir, "adapter.db") });
    const store = createStore({ tiers: [adapter] });
    closers.push(() => store.close());
    const d = makeDatum({ content: "target" });
    await store.put(d as never);
    let a = await store.refs.set("a", d.id);
    let s = await store.refs.set("s", d.id);
    contenders.push({ name: "adapter.setRef", call: async () => void (a = await adapter.setRef("a", d.id, { version: a.version }, { by: BY, at: Date.now() })) });
    contenders.push({ name: "store.refs.set", call: async () => void (s = await store.refs.set("s", d.id, { expect: { version: s.version } })) });
  }
  const p50s = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const cpus = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (const c of contenders) for (let i = 0; i < 1000; i++) await c.call();
  const sample = new Float64Array(calls);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length] as (typeof contenders)[number];
      const start = process.cpuUsage();
      for (let i = 0; i < calls; i++) {
        const t = process.hrtime.bigint();
        const out = c.call();
        if (out instanceof Promise) await out;
        sample[i] = Number(process.hrtime.bigint() - t) / 1000;
      }
      const used = process.cpuUsage(start);
      cpus.get(c.name)?.push((used.user + used.system) / calls);
      p50s.get(c.name)?.push([...sample].sort((a, b) => a - b)[calls >> 1] as number);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  const baseP50 = median(p50s.get("bare UPDATE") as number[]);
  const baseCpu = median(cpus.get("bare UPDATE") as number[]);
  console.log(`load ${loadavg().map((x) => x.toFixed(1)).join(" ")}; ${rounds} blocks × ${calls} calls; medians (÷ bare UPDATE):`);
  for (const c of contenders) {
    const p = median(p50s.get(c.name) as number[]);
    const u = median(cpus.get(c.name) as number[]);
    console.log(`  ${c.name.padEnd(22)} p50 ${p.toFixed(2).padStart(6)} µs (${(p / baseP50).toFixed(3)}×)   CPU ${u.toFixed(2).padStart(6)} µs (${(u / baseCpu).toFixed(3)}×)`);
  }
} finally {
  for (const close of closers) await close();
  rmSync(dir, { recursive: true, force: true });
}
