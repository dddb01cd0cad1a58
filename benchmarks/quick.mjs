// Quick per-tier latency: put, get, list(100), causalChain(10) through a dgent store, next to the
// raw driver doing the same work in the same run. Not the full benchmark (that is `npm run bench`
// when it lands); a fast check that prints medians.
//
//   npm run build && node benchmarks/quick.mjs [--n 5000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createStore, makeDatum } from "dgent";
import { memoryAdapter } from "dgent/adapters/memory";
import { jsonlAdapter } from "dgent/adapters/jsonl";
import { sqliteAdapter } from "dgent/adapters/sqlite";

const N = Number(process.argv[process.argv.indexOf("--n") + 1]) || 5000;
const dir = mkdtempSync(join(tmpdir(), "dgent-quick-"));
const content = new Uint8Array(1024).fill(97);
const metadata = { role: "agent", step: "think", session: "s1" };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(n, fn) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return median(samples);
}

function datums(n, prefix) {
  const out = [];
  let parent = null;
  for (let i = 0; i < n; i++) {
    const d = makeDatum({ content, metadata, causalParent: i % 10 === 0 ? null : parent, idPrefix: prefix });
    out.push(d);
    parent = d.id;
  }
  return out;
}

async function dgentCase(name, adapter, n) {
  const store = createStore({ tiers: [adapter] });
  await store.open();
  const ds = datums(n, `${name}/`);
  const put = await time(n, (i) => store.put(ds[i]));
  const get = await time(n, (i) => store.get(ds[(i * 7919) % n].id));
  const list = await time(Math.min(n, 500), () => store.list({ limit: 100 }));
  const chain = await time(Math.min(n, 2000), (i) => store.causalChain(ds[(Math.floor(i / 10) * 10 + 9) % n].id));
  await store.close();
  return { tier: name, put, get, list, chain };
}

// The adapter called directly, without a store: the difference is what the store and its
// (untapped) hooks cost per operation.
async function bareAdapter(name, adapter, n) {
  await adapter.open();
  const ds = datums(n, `${name}/`);
  const put = await time(n, (i) => adapter.put(ds[i]));
  const get = await time(n, (i) => adapter.get(ds[(i * 7919) % n].id));
  const list = await time(Math.min(n, 500), () => adapter.list({ prefix: "", after: -1, limit: 100 }));
  const chain = await time(Math.min(n, 2000), (i) => adapter.causalChain(ds[(Math.floor(i / 10) * 10 + 9) % n].id, 10_000));
  await adapter.close();
  return { tier: name, put, get, list, chain };
}

async function rawMap(n) {
  const map = new Map();
  const ds = datums(n, "raw/");
  const put = await time(n, async (i) => void map.set(ds[i].id, ds[i]));
  const get = await time(n, async (i) => map.get(ds[(i * 7919) % n].id));
  return { tier: "raw Map", put, get, list: NaN, chain: NaN };
}

async function rawSqlite(n) {
  const db = new Database(join(dir, "raw.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("mmap_size = 2147483648"); // as the SQLite tier does by default
  db.exec("CREATE TABLE data (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at REAL NOT NULL, causal_parent TEXT, metadata TEXT); CREATE INDEX i1 ON data(created_at, id); CREATE INDEX i2 ON data(causal_parent)");
  const ins = db.prepare("INSERT INTO data VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING");
  const sel = db.prepare("SELECT * FROM data WHERE id = ?");
  const lst = db.prepare("SELECT * FROM data ORDER BY created_at DESC, id DESC LIMIT 100");
  const chainQ = db.prepare("WITH RECURSIVE c(id, p, d) AS (SELECT id, causal_parent, 0 FROM data WHERE id = ? UNION ALL SELECT data.id, data.causal_parent, c.d + 1 FROM data JOIN c ON data.id = c.p WHERE c.d < 10000) SELECT data.* FROM c JOIN data ON data.id = c.id ORDER BY c.d DESC");
  const ds = datums(n, "rawsql/");
  const put = await time(n, async (i) => {
    const d = ds[i];
    ins.run(d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata));
  });
  const get = await time(n, async (i) => {
    const r = sel.get(ds[(i * 7919) % n].id);
    JSON.parse(r.metadata);
  });
  const list = await time(Math.min(n, 500), async () => lst.all().map((r) => JSON.parse(r.metadata)));
  const chain = await time(Math.min(n, 2000), async (i) => chainQ.all(ds[(Math.floor(i / 10) * 10 + 9) % n].id));
  db.close();
  return { tier: "raw better-sqlite3", put, get, list, chain };
}

const rows = [];
try {
  rows.push(await rawMap(N));
  rows.push(await bareAdapter("memory (no store)", memoryAdapter(), N));
  rows.push(await dgentCase("memory", memoryAdapter(), N));
  rows.push(await dgentCase("jsonl none", jsonlAdapter({ dataDir: dir, namespace: "none", durability: "none" }), N));
  rows.push(await dgentCase("jsonl group", jsonlAdapter({ dataDir: dir, namespace: "group", durability: "group" }), Math.min(N, 2000)));
  rows.push(await dgentCase("jsonl fsync", jsonlAdapter({ dataDir: dir, namespace: "fsync", durability: "fsync" }), Math.min(N, 1000)));
  rows.push(await rawSqlite(N));
  rows.push(await bareAdapter("sqlite (no store)", sqliteAdapter({ dataDir: dir, namespace: "bare" }), N));
  rows.push(await dgentCase("sqlite", sqliteAdapter({ dataDir: dir, namespace: "bench" }), N));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const fmt = (x) => (Number.isNaN(x) ? "-" : x < 10 ? x.toFixed(2) : x.toFixed(0));
console.log(`median µs per operation, 1 KiB content, 3 tags, n=${N} (node ${process.version})`);
console.log(["tier".padEnd(20), "put".padStart(8), "get".padStart(8), "list100".padStart(8), "chain10".padStart(8)].join(""));
for (const r of rows) console.log([r.tier.padEnd(20), ...[r.put, r.get, r.list, r.chain].map((x) => fmt(x).padStart(8))].join(""));
