/**
 * Filtered lists on the sqlite tier against raw better-sqlite3 running the same SQL, at 10k and
 * 1M datums (README "Queries", figures there). Run:
 *
 *   npx vite-node adapters/sqlite/bench-queries.ts -- [--dir /tmp/dgent-sqlite-bench] [--sizes 10000,1000000] [--samples 400] [--alternatives] [--chain] [--migration]
 *
 * Files are built once per size in `--dir` and reused. Datums as the project benchmark's queries
 * part: 1 KiB of content, 3 tags (role: 3 values, step: unique, topic: 20 values), one per ms.
 * `--alternatives` also times the schemas not chosen, and the write cost of the tags; `--chain`
 * the tail of a 100,000-long chain against a 20-long one; `--migration` the step from schema
 * version 2 on a copy of the largest file (made version 2 again first).
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { makeDatum, type Datum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import { resolveQuery, type QueryOptions } from "../../core/query.js";
import { sqliteAdapter, type SqliteAdapter } from "./index.js";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] as string) : fallback;
};
const DIR = arg("dir", "/tmp/dgent-sqlite-bench");
const SIZES = arg("sizes", "10000,1000000").split(",").map(Number);
const SAMPLES = Number(arg("samples", "400"));
const ALTERNATIVES = process.argv.includes("--alternatives");
const CHAIN = process.argv.includes("--chain");
const MIGRATION = process.argv.includes("--migration");

const CONTENTS = Array.from({ length: 16 }, () => randomBytes(1024));
const ROLES = ["user", "agent", "tool"];
const topic = (i: number) => `t${String(i % 20).padStart(2, "0")}`;
const T0 = 1_700_000_000_000;

function benchDatum(i: number): Datum {
  return makeDatum({
    content: CONTENTS[i % 16] as Buffer,
    createdAt: T0 + i,
    causalParent: null,
    metadata: { role: ROLES[i % 3] as string, step: String(i), topic: topic(i) },
    idPrefix: `s${String(i % 64).padStart(2, "0")}/`,
  });
}

async function build(n: number): Promise<string> {
  mkdirSync(DIR, { recursive: true });
  const path = join(DIR, `queries-${n}.db`);
  if (existsSync(path)) return path;
  const a = sqliteAdapter({ path: `${path}.building` });
  await a.open();
  const started = Date.now();
  for (let i = 0; i < n; i += 1000) await a.putMany(Array.from({ length: Math.min(1000, n - i) }, (_, k) => benchDatum(i + k)));
  await a.close();
  rmSync(`${path}.building-wal`, { force: true });
  rmSync(`${path}.building-shm`, { force: true });
  const { renameSync } = await import("node:fs");
  renameSync(`${path}.building`, path);
  console.log(`built ${path}: ${n} datums in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return path;
}

const p50 = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1] as number;
const now = (): bigint => process.hrtime.bigint();
const us = (from: bigint): number => Number(now() - from) / 1000;

interface Case {
  readonly name: string;
  /** How many distinct queries the case cycles through (each is warmed up before timing). */
  readonly variants: number;
  readonly options: (k: number) => QueryOptions;
}

const CASES: Case[] = [
  { name: "where topic=tNN, limit 100", variants: 20, options: (k) => ({ where: { topic: topic(k) }, limit: 100 }) },
  { name: "… oldest first", variants: 20, options: (k) => ({ where: { topic: topic(k) }, limit: 100, order: "oldest" }) },
  { name: "… select meta", variants: 20, options: (k) => ({ where: { topic: topic(k) }, limit: 100, select: "meta" }) },
  { name: "where topic, role (two tags)", variants: 20, options: (k) => ({ where: { topic: topic(k), role: "user" }, limit: 100 }) },
  { name: "prefix (1/64) + role=user", variants: 64, options: (k) => ({ prefix: `s${String(k % 64).padStart(2, "0")}/`, where: { role: "user" }, limit: 100 }) },
  { name: "topic in [2 values]", variants: 20, options: (k) => ({ where: { topic: { in: [topic(k), topic(k + 1)] } }, limit: 100 }) },
  { name: "children of a datum (none)", variants: 20, options: (k) => ({ parent: `s00/${k}`, limit: 100 }) },
  { name: "plain newest page", variants: 1, options: () => ({ limit: 100 }) },
];

type Row = unknown[];

/** Rows as datums (or headers), as the adapter and the project benchmark's raw baseline do. */
function decode(rows: Row[], full: boolean): unknown[] {
  return full
    ? rows.map((r) => ({ id: r[0], content: r[1], createdAt: r[2], causalParent: r[3], metadata: r[4] === null ? {} : JSON.parse(r[4] as string) }))
    : rows.map((r) => ({ id: r[0], createdAt: r[1], causalParent: r[2], metadata: r[3] === null ? {} : JSON.parse(r[3] as string) }));
}

async function measure(n: number): Promise<void> {
  const path = await build(n);
  const a: SqliteAdapter = sqliteAdapter({ path });
  const store = createStore({ tiers: [sqliteAdapter({ path })] });
  await a.open();
  await store.open();
  const raw = new Database(path, { readonly: true });
  raw.pragma("mmap_size = 2147483648");
  console.log(`\n${n} datums (${path}); p50 µs over ${SAMPLES} samples, interleaved, after two warm-up rounds of every variant`);
  console.log("| case | adapter.query | store.query | raw (same SQL) | adapter ÷ raw | statements | plan |");
  console.log("|---|---|---|---|---|---|---|");
  for (const c of CASES) {
    // The statement the adapter runs for each variant, run raw: prepared once, rows decoded the same way.
    const subjects = await Promise.all(
      Array.from({ length: c.variants }, async (_, k) => {
        const q = resolveQuery(c.options(k));
        const built = (await a.explainQuery(q)) as NonNullable<Awaited<ReturnType<SqliteAdapter["explainQuery"]>>>;
        const stmt = raw.prepare(built.sql).raw(true);
        const full = q.select === "full";
        return {
          q,
          built,
          raw: () => decode(stmt.all(...built.params) as Row[], full),
          adapter: () => a.query(q),
          store: () => store.query(c.options(k)),
        };
      }),
    );
    for (let round = 0; round < 2; round++) for (const s of subjects) (s.raw(), await s.adapter(), await s.store());
    const times = { adapter: [] as number[], store: [] as number[], raw: [] as number[] };
    for (let i = 0; i < SAMPLES; i++) {
      const s = subjects[i % c.variants] as (typeof subjects)[number];
      const lengths: number[] = [];
      // The three in a rotating order, so that none always runs first (on colder caches).
      for (let j = 0; j < 3; j++) {
        const which = (["raw", "adapter", "store"] as const)[(i + j) % 3] as "raw" | "adapter" | "store";
        const t = now();
        const got = which === "raw" ? s.raw() : which === "adapter" ? await s.adapter() : (await s.store()).items;
        times[which].push(us(t));
        lengths.push(got.length);
      }
      if (new Set(lengths).size !== 1) throw new Error(`${c.name}: pages of ${lengths.join(", ")} items`);
    }
    const before = (await a.stats()).queries as number;
    await (subjects[0] as (typeof subjects)[number]).adapter();
    const statements = ((await a.stats()).queries as number) - before - 1;
    const plan = (subjects[0] as (typeof subjects)[number]).built.plan.filter((l) => /SEARCH|SCAN/.test(l)).join("; ");
    const [ad, sq, rw] = [p50(times.adapter), p50(times.store), p50(times.raw)];
    console.log(`| ${c.name} | ${ad.toFixed(0)} | ${sq.toFixed(0)} | ${rw.toFixed(0)} | ${(ad / rw).toFixed(2)}× | ${statements} | ${plan} |`);
  }
  if (ALTERNATIVES) alternatives(raw);
  raw.close();
  await store.close();
  await a.close();
}

/** The same filtered page (topic = tNN, newest 100) by the schemas not chosen, on the same file. */
function alternatives(raw: Database.Database): void {
  const cols = "d.id, d.content, d.created_at, d.causal_parent, d.metadata";
  const alt: Record<string, string> = {
    "tags (key, value, created_at, id): our index, in order": `SELECT ${cols} FROM tags AS t CROSS JOIN data AS d ON d.id = t.id WHERE t.key = 'topic' AND t.value = ? ORDER BY t.created_at DESC, t.id DESC LIMIT 100`,
    "tags (key, value, id) without created_at: every match joined and sorted": `SELECT ${cols} FROM tags AS t CROSS JOIN data AS d ON d.id = t.id WHERE t.key = 'topic' AND t.value = ? ORDER BY d.created_at DESC, d.id DESC LIMIT 100`,
    "no tag index: walk the time index, json_each on each row": `SELECT ${cols} FROM data AS d INDEXED BY idx_data_created WHERE EXISTS (SELECT 1 FROM json_each(d.metadata) AS j WHERE j.key = 'topic' AND j.value = ?) ORDER BY d.created_at DESC, d.id DESC LIMIT 100`,
  };
  console.log("\nalternatives (p50 µs, raw better-sqlite3):");
  for (const [name, sql] of Object.entries(alt)) {
    const stmt = raw.prepare(sql).raw(true);
    const samples = name.includes("without") ? 5 : 50;
    const ts: number[] = [];
    for (let s = 0; s < samples; s++) {
      const t = now();
      stmt.all(topic(s));
      ts.push(us(t));
    }
    console.log(`  ${name}: ${p50(ts).toFixed(0)}`);
  }
}

/** put p50 on a fresh file with and without the tag triggers (the write cost of the index). */
async function writeCost(): Promise<void> {
  const result: Record<string, number> = {};
  for (const variant of ["tags", "no tags"]) {
    const path = join(DIR, `put-${variant.replace(" ", "-")}.db`);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    const a = sqliteAdapter({ path });
    await a.open();
    if (variant === "no tags") {
      const w = new Database(path);
      w.exec("DROP TRIGGER tags_insert; DROP TRIGGER tags_delete;");
      w.close();
    }
    const ts: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const d = benchDatum(i);
      const t = now();
      await a.put(d);
      ts.push(us(t));
    }
    result[variant] = p50(ts);
    await a.close();
  }
  console.log(`\nput p50 µs (3 tags, 1 KiB): with the tags triggers ${result.tags?.toFixed(1)}, without ${result["no tags"]?.toFixed(1)}`);
}

/** chainTail(end, 20) p50 on a 100,000-long chain and on a 20-long one (same file). */
async function chainTails(): Promise<void> {
  const path = join(DIR, "chain.db");
  const fresh = !existsSync(path);
  const a = sqliteAdapter({ path });
  await a.open();
  if (fresh) {
    for (const [name, length] of [["long", 100_000], ["short", 20]] as const) {
      for (let i = 0; i < length; i += 1000) {
        await a.putMany(
          Array.from({ length: Math.min(1000, length - i) }, (_, k) =>
            makeDatum({ id: `${name}/${i + k}`, content: CONTENTS[0] as Buffer, createdAt: T0 + i + k, causalParent: i + k ? `${name}/${i + k - 1}` : null, metadata: { role: "user" } }),
          ),
        );
      }
    }
  }
  const times: Record<string, number[]> = { "100,000-long": [], "20-long": [] };
  for (let s = 0; s < SAMPLES + 20; s++) {
    for (const [label, id] of [["100,000-long", "long/99999"], ["20-long", "short/19"]] as const) {
      const t = now();
      const tail = await a.chainTail(id, 20);
      if (s >= 20) times[label]?.push(us(t));
      if (tail.length !== 20) throw new Error(`chainTail(${id}) gave ${tail.length}`);
    }
  }
  console.log(`\nchainTail(end, 20) p50 µs: 100,000-long chain ${p50(times["100,000-long"] ?? []).toFixed(1)}, 20-long ${p50(times["20-long"] ?? []).toFixed(1)}`);
  await a.close();
}

/** How long opening a version-2 copy of the largest file takes (the backfill of its tags). */
async function migration(): Promise<void> {
  const n = Math.max(...SIZES);
  const source = await build(n);
  const copy = join(DIR, `migrate-${n}.db`);
  const { copyFileSync } = await import("node:fs");
  for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) rmSync(f, { force: true });
  copyFileSync(source, copy);
  const old = new Database(copy);
  old.exec("DROP TRIGGER tags_insert; DROP TRIGGER tags_delete; DROP TABLE tags; DROP INDEX idx_data_children; CREATE INDEX idx_data_parent ON data (causal_parent); PRAGMA user_version = 2; VACUUM;");
  old.close();
  const a = sqliteAdapter({ path: copy });
  const t = now();
  await a.open();
  const seconds = us(t) / 1e6;
  const stats = await a.stats();
  await a.close();
  console.log(`\nmigration to version 3 of ${n} datums (${JSON.stringify(stats.migrationsApplied)}): ${seconds.toFixed(1)} s`);
  for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) rmSync(f, { force: true });
}

for (const n of SIZES) await measure(n);
if (ALTERNATIVES) await writeCost();
if (CHAIN) await chainTails();
if (MIGRATION) await migration();
