/**
 * Concurrency of the Postgres tier against a raw `pg.Pool` of the same size, same server, same
 * table, same run: put and get with 1, 4, 16 and 64 concurrent callers in one process, and with
 * 4 processes of 4 callers each. Reports throughput (ops/s) and per-operation p50/p99 (µs), and
 * writes benchmarks/results/concurrency.{json,md}.
 *
 *   npm run build && node benchmarks/concurrency.mjs [--n=2000] [--rounds=3] [--callers=1,4,16,64] [--out=benchmarks/results]
 *     [--before=../main/dist/adapters/postgres/index.js]   (another build, same rounds, its own namespace)
 *
 * Contenders: `raw pg.Pool` (the same INSERT … ON CONFLICT DO NOTHING / SELECT, named prepared
 * statements, pool max = callers), `dgent` (defaults: change notifications on, pool size =
 * callers) and `dgent notify:false`. Rounds alternate the contenders so each sees the same load.
 * Uses DGENT_BENCH_POSTGRES_URL when set; otherwise starts a throwaway cluster from
 * /usr/lib/postgresql/<v>/bin with the test harness's settings (fsync, synchronous_commit and
 * full_page_writes off: commits are cheap, so what serialises them shows) and removes it.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { postgresAdapter } from "dgent/adapters/postgres";
import { throwawayCluster } from "./pg-cluster.mjs";

const arg = (name, dflt) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const SELF = fileURLToPath(import.meta.url);
const CONTENT = Buffer.alloc(256, 7);
const SEED = 2_000;

const BEFORE = process.argv.find((a) => a.startsWith("--before="))?.slice(9);
/** `--before=PATH`: another build's adapters/postgres/index.js, measured in the same rounds on a namespace of its own. */
const before = BEFORE ? await import(new URL(BEFORE, `file://${process.cwd()}/`).href) : null;
const contenderNames = ["raw pg.Pool", "dgent", "dgent notify:false", ...(before ? ["dgent before"] : [])];

/** One contender's put/get for `callers` concurrent callers. */
async function contender(name, url, namespace, callers, tag) {
  const T = `"${namespace}"."data"`;
  if (name === "raw pg.Pool") {
    const pool = new pg.Pool({ connectionString: url, max: callers, application_name: `raw-${tag}` });
    const put = { name: "raw_put", text: `INSERT INTO ${T} (id, content, created_at, causal_parent, metadata) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING` };
    const get = { name: "raw_get", text: `SELECT id, content, created_at, causal_parent, metadata FROM ${T} WHERE id = $1` };
    return {
      put: (d) => pool.query({ ...put, values: [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)] }),
      get: (id) => pool.query({ ...get, values: [id] }),
      close: () => pool.end(),
    };
  }
  if (name === "dgent before") {
    const a = before.postgresAdapter({ url, namespace: `${namespace}_before`, poolSize: callers, connectTimeoutMs: 120_000, applicationName: `before-${tag}` });
    await a.open();
    return { put: (d) => a.put(d), get: (id) => a.get(id), close: () => a.close() };
  }
  const quiet = name === "dgent notify:false";
  // No connection time limit (as the raw pool): 64 connections opening on a loaded machine take a while.
  const a = postgresAdapter({ url, namespace, poolSize: callers, connectTimeoutMs: 120_000, applicationName: `${quiet ? "quiet" : "dgent"}-${tag}`, ...(quiet ? { notify: false } : {}) });
  await a.open();
  return { put: (d) => a.put(d), get: (id) => a.get(id), close: () => a.close() };
}

/** `ops` operations spread over `callers` concurrent loops; per-op latencies in µs, and the wall time. */
async function drive(callers, ops, op) {
  const lat = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= ops) return;
        const t = process.hrtime.bigint();
        await op(i);
        lat.push(Number(process.hrtime.bigint() - t) / 1000);
      }
    }),
  );
  return { lat, wallUs: Number(process.hrtime.bigint() - t0) / 1000 };
}

function stats(samples, wallUs, ops) {
  const s = Float64Array.from(samples).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { ops, opsPerSec: Math.round((ops * 1e6) / wallUs), p50: Math.round(at(0.5)), p99: Math.round(at(0.99)) };
}

function merge(parts) {
  const lat = parts.flatMap((p) => p.lat);
  return { lat, wallUs: parts.reduce((x, p) => x + p.wallUs, 0) };
}

const datum = (id) => ({ id, content: CONTENT, createdAt: Date.now(), causalParent: null, metadata: { k: "v" } });

// ---- child mode: one process of the 4-process rows ----
if (process.argv.includes("--child")) {
  const [url, namespace, name, callers, ops, tag] = JSON.parse(arg("job", "[]"));
  const c = await contender(name, url, namespace, callers, tag);
  // Warm the connections and prepared statements, then wait for the parent's go.
  await drive(callers, callers * 4, (i) => c.get(`seed/${i % SEED}`));
  process.stdout.write("ready\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  const out = {};
  const put = await drive(callers, ops, (i) => c.put(datum(`p4/${tag}/${i}`)));
  process.stdout.write("put-done\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  const get = await drive(callers, ops, (i) => c.get(`seed/${(i * 7919) % SEED}`));
  out.put = put.lat;
  out.get = get.lat;
  await c.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const N = Number(arg("n", "2000"));
const ROUNDS = Number(arg("rounds", "3"));
const OUT = arg("out", join(fileURLToPath(new URL(".", import.meta.url)), "results"));
const LEVELS = (arg("callers", "1,4,16,64")).split(",").map(Number);

const external = process.env.DGENT_BENCH_POSTGRES_URL;
const cluster = external ? { url: external, stop: async () => undefined } : await throwawayCluster({ settings: ["full_page_writes=off", "max_connections=400"] });
// A failed run must not leave its cluster behind.
process.on("uncaughtException", (error) => {
  console.error(error);
  void cluster.stop().finally(() => process.exit(1));
});
process.on("unhandledRejection", (error) => {
  console.error(error);
  void cluster.stop().finally(() => process.exit(1));
});
const namespace = `conc_${randomBytes(4).toString("hex")}`;
const setup = postgresAdapter({ url: cluster.url, namespace, listen: false, applicationName: "setup" });
await setup.open();
await setup.putMany(Array.from({ length: SEED }, (_, i) => ({ ...datum(`seed/${i}`), createdAt: i })));
const admin = new pg.Client(cluster.url);
await admin.connect();
await admin.query(`ANALYZE "${namespace}"."data"`);
if (before) {
  const b = before.postgresAdapter({ url: cluster.url, namespace: `${namespace}_before`, listen: false, applicationName: "setup-before" });
  await b.open();
  await b.putMany(Array.from({ length: SEED }, (_, i) => ({ ...datum(`seed/${i}`), createdAt: i })));
  await b.close();
  await admin.query(`ANALYZE "${namespace}_before"."data"`);
}
const serverVersion = (await admin.query("SHOW server_version")).rows[0].server_version;

const results = { rows: [] };

/**
 * Samples pg_stat_activity every 10 ms while `work` runs: of the contender's backends that were
 * active, how many waited for the lock that orders the commits of notifying transactions
 * (`Lock` / `object`: Postgres locks the database object at commit for NOTIFY). Unlike
 * throughput, this does not depend on how busy the machine is.
 */
async function sampled(appPrefix, work) {
  let active = 0;
  let waiting = 0;
  let done = false;
  const loop = (async () => {
    while (!done) {
      const r = await admin.query(
        `SELECT count(*) FILTER (WHERE state = 'active')::int AS active,
                count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'object')::int AS waiting
         FROM pg_stat_activity WHERE application_name = $1`,
        [appPrefix],
      );
      active += r.rows[0].active;
      waiting += r.rows[0].waiting;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await loop;
    lockWaits.push({ appPrefix, active, waiting });
  }
}
const lockWaits = [];
const appPrefixOf = (name, callers) => `${{ "raw pg.Pool": "raw", dgent: "dgent", "dgent notify:false": "quiet", "dgent before": "before" }[name]}-c${callers}`;
const log = (s) => process.stderr.write(`${s}\n`);

for (const callers of LEVELS) {
  const ops = callers === 1 ? Math.ceil(N / 2) : N;
  const per = Math.ceil(ops / ROUNDS);
  const cs = {};
  for (const name of contenderNames) cs[name] = await contender(name, cluster.url, namespace, callers, `c${callers}`);
  // Warm every connection of every pool.
  for (const name of contenderNames) await drive(callers, callers * 8, (i) => cs[name].get(`seed/${i % SEED}`));
  const acc = {};
  for (const name of contenderNames) acc[name] = { put: [], get: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? contenderNames : [...contenderNames].reverse()) {
      const tag = name.replace(/\W/g, "");
      acc[name].put.push(await sampled(appPrefixOf(name, callers), () => drive(callers, per, (i) => cs[name].put(datum(`p/${tag}/${callers}/${round}/${i}`)))));
      acc[name].get.push(await drive(callers, per, (i) => cs[name].get(`seed/${(i * 7919 + round) % SEED}`)));
    }
  }
  for (const name of contenderNames) {
    for (const op of ["put", "get"]) {
      const m = merge(acc[name][op]);
      const row = { op, callers, processes: 1, contender: name, ...stats(m.lat, m.wallUs, m.lat.length) };
      if (op === "put") {
        const w = lockWaits.filter((x) => x.appPrefix === appPrefixOf(name, callers));
        const active = w.reduce((n, x) => n + x.active, 0);
        row.notifyLockWaitShare = active === 0 ? 0 : Number((w.reduce((n, x) => n + x.waiting, 0) / active).toFixed(3));
      }
      results.rows.push(row);
      log(`${op} callers=${callers} ${name}: ${row.opsPerSec} ops/s p50 ${row.p50} p99 ${row.p99}`);
    }
    await cs[name].close();
  }
}

// 4 processes × 4 callers, one contender at a time, all four started together.
const PROCS = 4;
const PER_PROC_CALLERS = 4;
for (const name of contenderNames) {
  const ops = Math.ceil(N / PROCS);
  const kids = Array.from({ length: PROCS }, (_, k) => {
    const child = spawn(process.execPath, [SELF, "--child", `--job=${JSON.stringify([cluster.url, namespace, name, PER_PROC_CALLERS, ops, `${name.replace(/\W/g, "")}${k}`])}`, ...(BEFORE ? [`--before=${new URL(BEFORE, `file://${process.cwd()}/`).pathname}`] : [])], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    let buf = "";
    const waiters = [];
    child.stdout.on("data", (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        waiters.shift()?.(line);
      }
    });
    return { child, line: () => new Promise((r) => waiters.push(r)) };
  });
  const ready = kids.map((k) => k.line());
  await Promise.all(ready);
  const putDone = kids.map((k) => k.line());
  const t0 = process.hrtime.bigint();
  for (const k of kids) k.child.stdin.write("go\n");
  await Promise.all(putDone);
  const putWall = Number(process.hrtime.bigint() - t0) / 1000;
  const final = kids.map((k) => k.line());
  const t1 = process.hrtime.bigint();
  for (const k of kids) k.child.stdin.write("go\n");
  const outs = (await Promise.all(final)).map((l) => JSON.parse(l));
  const getWall = Number(process.hrtime.bigint() - t1) / 1000;
  for (const [op, wall] of [["put", putWall], ["get", getWall]]) {
    const lat = outs.flatMap((o) => o[op]);
    const row = { op, callers: PROCS * PER_PROC_CALLERS, processes: PROCS, contender: name, ...stats(lat, wall, lat.length) };
    results.rows.push(row);
    log(`${op} ${PROCS} processes × ${PER_PROC_CALLERS} callers ${name}: ${row.opsPerSec} ops/s p50 ${row.p50} p99 ${row.p99}`);
  }
}

await setup.close();
await admin.query(`DROP SCHEMA "${namespace}" CASCADE`);
if (before) await admin.query(`DROP SCHEMA "${namespace}_before" CASCADE`);
await admin.end();
await cluster.stop();

// ---- report ----
results.environment = {
  node: process.version,
  postgres: serverVersion,
  server: external ? "DGENT_BENCH_POSTGRES_URL" : "throwaway cluster (loopback TCP; fsync, synchronous_commit, full_page_writes off)",
  cpus: cpus().length,
  opsPerLevel: N,
  rounds: ROUNDS,
  content: "256 bytes, metadata {k: v}",
  date: new Date().toISOString(),
};
const find = (op, callers, processes, contender) => results.rows.find((r) => r.op === op && r.callers === callers && r.processes === processes && r.contender === contender);
const lines = [
  "# Concurrency: the Postgres tier against a raw pg.Pool of the same size",
  "",
  `PostgreSQL ${serverVersion}, ${results.environment.server}; node ${process.version}; ${results.environment.cpus} CPUs. ` +
    `${N} operations per level and contender (half at 1 caller), ${ROUNDS} alternating rounds; 256-byte content. ` +
    "Throughput in operations per second; latency per operation in µs. ratio = dgent ÷ raw throughput (higher is better).",
  "",
  "Command: `npm run build && node benchmarks/concurrency.mjs`",
  "",
  "| op | callers | processes | raw ops/s | dgent ops/s | ratio | notify:false ops/s | ratio | raw p50 / p99 | dgent p50 / p99 |",
  "|---|---|---|---|---|---|---|---|---|---|",
];
const levels = [...LEVELS.map((c) => [c, 1]), [PROCS * PER_PROC_CALLERS, PROCS]];
const befores = [];
for (const op of ["put", "get"]) {
  for (const [callers, processes] of levels) {
    const r = find(op, callers, processes, "raw pg.Pool");
    const d = find(op, callers, processes, "dgent");
    const q = find(op, callers, processes, "dgent notify:false");
    if (!r || !d || !q) continue;
    const b = find(op, callers, processes, "dgent before");
    if (b) befores.push(`| ${op} | ${callers} | ${processes} | ${r.opsPerSec} | ${b.opsPerSec} | ${(b.opsPerSec / r.opsPerSec).toFixed(2)}× | ${d.opsPerSec} | ${(d.opsPerSec / r.opsPerSec).toFixed(2)}× |`);
    lines.push(
      `| ${op} | ${callers} | ${processes} | ${r.opsPerSec} | ${d.opsPerSec} | ${(d.opsPerSec / r.opsPerSec).toFixed(2)}× | ${q.opsPerSec} | ${(q.opsPerSec / r.opsPerSec).toFixed(2)}× | ${r.p50} / ${r.p99} | ${d.p50} / ${d.p99} |`,
    );
  }
}
lines.push(
  "",
  "Share of the contender's active backends waiting for the commit lock of notifying transactions (`Lock: object` in pg_stat_activity, sampled every 10 ms during the puts):",
  "",
  `| callers | ${contenderNames.join(" | ")} |`,
  `|---|${contenderNames.map(() => "---|").join("")}`,
  ...LEVELS.map((c) => `| ${c} | ${contenderNames.map((n) => `${((find("put", c, 1, n)?.notifyLockWaitShare ?? 0) * 100).toFixed(0)} %`).join(" | ")} |`),
);
if (befores.length) {
  lines.push("", `Same run, the build given with \`--before\` (${BEFORE}; its own namespace, same server):`, "", "| op | callers | processes | raw ops/s | before ops/s | ratio | dgent ops/s | ratio |", "|---|---|---|---|---|---|---|---|", ...befores);
}
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, "concurrency.json"), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(OUT, "concurrency.md"), `${lines.join("\n")}\n`);
console.log(lines.join("\n"));
