/**
 * Quick latency check of the Postgres tier against raw `pg` in the same run, on the same server
 * and the same table: put, get, list (prefix, 20 rows) and causalChain (20 deep), one operation
 * at a time, alternating the contenders in rounds so both see the same machine load.
 *
 *   npx tsc -p tsconfig.json && node benchmarks/postgres-quick.mjs
 *
 * Uses DGENT_BENCH_POSTGRES_URL (or DGENT_TEST_POSTGRES_URL) when set; otherwise starts a
 * throwaway cluster from /usr/lib/postgresql/<v>/bin (fsync off, like the tests) and removes it.
 * Options: --n=<ops per operation> (default 2000).
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { postgresAdapter } from "dgent/adapters/postgres";
import { throwawayCluster } from "./pg-cluster.mjs";

const N = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 2000);
const ROUNDS = 4;
const CHAIN = 20;

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p95: at(0.95), mean: s.reduce((x, y) => x + y, 0) / s.length };
}

async function time(fn, samples) {
  const t = process.hrtime.bigint();
  await fn();
  samples.push(Number(process.hrtime.bigint() - t) / 1000);
}

const external = process.env.DGENT_BENCH_POSTGRES_URL ?? process.env.DGENT_TEST_POSTGRES_URL;
const cluster = external ? { url: external, stop: async () => undefined } : await throwawayCluster();
const namespace = `bench_${randomBytes(4).toString("hex")}`;
const adapter = postgresAdapter({ url: cluster.url, namespace, listen: false });
const quiet = postgresAdapter({ url: cluster.url, namespace, listen: false, notify: false, applicationName: "dgent-quiet" });
await adapter.open();
await quiet.open();
const raw = new pg.Pool({ connectionString: cluster.url, max: 4 });
const T = `"${namespace}"."data"`;
const content = Buffer.alloc(256, 7);

// Shared data: 20 prefixes × 500 rows, and chains of CHAIN datums.
const seed = [];
for (let p = 0; p < 20; p++) for (let i = 0; i < 500; i++) seed.push({ id: `seed${p}/${String(i).padStart(4, "0")}`, content, createdAt: i, causalParent: i > 0 && i % CHAIN !== 0 ? `seed${p}/${String(i - 1).padStart(4, "0")}` : null, metadata: { p: String(p) } });
await adapter.putMany(seed);
await raw.query(`ANALYZE ${T}`);
const chainEnds = seed.filter((d, i) => i % CHAIN === CHAIN - 1).map((d) => d.id);

const rawSql = {
  put: { name: "raw_put", text: `INSERT INTO ${T} (id, content, created_at, causal_parent, metadata) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING` },
  get: { name: "raw_get", text: `SELECT id, content, created_at, causal_parent, metadata FROM ${T} WHERE id = $1` },
  list: { name: "raw_list", text: `SELECT id, content, created_at, causal_parent, metadata FROM ${T} WHERE id >= $1 AND id < $2 AND created_at > $3 ORDER BY created_at DESC, id DESC LIMIT $4` },
  chain: {
    name: "raw_chain",
    text: `WITH RECURSIVE c AS (SELECT *, 1 AS depth FROM ${T} WHERE id = $1 UNION ALL SELECT t.*, c.depth + 1 FROM c JOIN ${T} t ON t.id = c.causal_parent WHERE c.depth < $2) SELECT id, content, created_at, causal_parent, metadata FROM c ORDER BY depth DESC`,
  },
};

const contenders = {
  "raw pg": {
    put: (d) => raw.query({ ...rawSql.put, values: [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)] }),
    get: (id) => raw.query({ ...rawSql.get, values: [id] }),
    list: (p) => raw.query({ ...rawSql.list, values: [p, p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1), -1, 20] }),
    chain: (id) => raw.query({ ...rawSql.chain, values: [id, 10_000] }),
  },
  "dgent adapter": {
    put: (d) => adapter.put(d),
    get: (id) => adapter.get(id),
    list: (p) => adapter.list({ prefix: p, after: -1, limit: 20 }),
    chain: (id) => adapter.causalChain(id, 10_000),
  },
  "dgent, notify off": {
    put: (d) => quiet.put(d),
    get: (id) => quiet.get(id),
    list: (p) => quiet.list({ prefix: p, after: -1, limit: 20 }),
    chain: (id) => quiet.causalChain(id, 10_000),
  },
};

const samples = {};
for (const name of Object.keys(contenders)) samples[name] = { put: [], get: [], list: [], chain: [] };
// Warm up every contender's connections and prepared statements.
for (const [name, c] of Object.entries(contenders)) {
  for (let i = 0; i < 50; i++) {
    await c.put({ id: `warm/${name}/${i}`, content, createdAt: 1, causalParent: null, metadata: {} });
    await c.get(seed[i].id);
    await c.list("seed1/00");
    await c.chain(chainEnds[i % chainEnds.length]);
  }
}
const per = Math.ceil(N / ROUNDS);
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, c] of Object.entries(contenders)) {
    const s = samples[name];
    const tag = name.replace(/\W/g, "");
    for (let i = 0; i < per; i++) {
      const d = { id: `put/${tag}/${round}/${String(i).padStart(5, "0")}`, content, createdAt: Date.now(), causalParent: null, metadata: { k: "v" } };
      await time(() => c.put(d), s.put);
    }
    for (let i = 0; i < per; i++) await time(() => c.get(seed[(i * 7919 + round) % seed.length].id), s.get);
    for (let i = 0; i < per; i++) await time(() => c.list(`seed${i % 20}/0${i % 5}`), s.list);
    for (let i = 0; i < per; i++) await time(() => c.chain(chainEnds[(i + round) % chainEnds.length]), s.chain);
  }
}

const lines = [];
lines.push(`PostgreSQL ${(await raw.query("SHOW server_version")).rows[0].server_version}, ${external ? "given server" : "throwaway cluster (fsync off)"}, node ${process.version}`);
lines.push(`${N} sequential ops per operation and contender; 256-byte content; list = prefix, 20 rows; chain = ${CHAIN} deep. Times in µs.`);
lines.push("");
lines.push(`| operation | raw pg median | dgent median | dgent/raw | raw p95 | dgent p95 | dgent notify-off median |`);
lines.push(`|---|---|---|---|---|---|---|`);
for (const op of ["put", "get", "list", "chain"]) {
  const r = summary(samples["raw pg"][op]);
  const a = summary(samples["dgent adapter"][op]);
  const q = summary(samples["dgent, notify off"][op]);
  lines.push(`| ${op} | ${r.median.toFixed(0)} | ${a.median.toFixed(0)} | ${(a.median / r.median).toFixed(2)}× | ${r.p95.toFixed(0)} | ${a.p95.toFixed(0)} | ${q.median.toFixed(0)} |`);
}
console.log(lines.join("\n"));

await adapter.close();
await quiet.close();
await raw.query(`DROP SCHEMA "${namespace}" CASCADE`);
await raw.end();
await cluster.stop();
