/**
 * Backup and restore throughput of `dgent backup` / `dgent restore` (brotli at quality 1, the default; SHA-256 per chunk, compressed and hashed on a worker thread,
 * verify before and after) on SQLite and Postgres, next to the native tools on the same data in
 * the same run: better-sqlite3's `.backup()` (the online backup API of `sqlite3 .backup`) and a
 * raw better-sqlite3 INSERT of the same rows in one transaction (the restore goal's baseline), with
 * `.restore` (a page copy) and a file copy for scale, for SQLite; `pg_dump -Fc` and `pg_restore`
 * for Postgres.
 *
 *   npm run build && node benchmarks/backup.mjs [--n=100000] [--bytes=1024] [--skip=postgres]
 *
 * --n=1000000 for the issue's size. Postgres: DGENT_BENCH_POSTGRES_URL when set, else a
 * throwaway cluster from /usr/lib/postgresql/<v>/bin (fsync off), removed afterwards.
 * Each row has wall time and CPU time: this process's (all its threads: dgent, or better-sqlite3
 * in it) or the native tool's, plus the throwaway cluster's server processes (not measured for an
 * external server); the ratios are given in both.
 * Results: benchmarks/results/backup.{json,md}.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { makeDatum } from "dgent/extend";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { postgresAdapter } from "dgent/adapters/postgres";
import { backup, restore } from "dgent/backup";
import { throwawayCluster } from "./pg-cluster.mjs";

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const N = Number(arg("n", 100_000));
const BYTES = Number(arg("bytes", 1024));
const SKIP = new Set(String(arg("skip", "")).split(",").filter(Boolean));
const work = mkdtempSync(join(tmpdir(), "dgent-bench-backup-"));
const loadAtStart = loadavg().map((l) => Number(l.toFixed(2)));

/** N datums of BYTES each (half random, half repeated text: compressible like real memories). */
function* datums() {
  for (let i = 0; i < N; i++) {
    const half = Math.floor(BYTES / 2);
    const random = Buffer.from(randomBytes(Math.ceil(half * 0.75) + 3).toString("base64").slice(0, half));
    const text = Buffer.from("the agent noted that ".repeat(Math.ceil((BYTES - half) / 21) + 1).slice(0, BYTES - half));
    const content = Buffer.concat([random, text]);
    yield makeDatum({ content, metadata: { i: String(i), kind: i % 3 ? "note" : "plan" }, createdAt: 1_700_000_000_000 + i });
  }
}

async function fill(adapter) {
  await adapter.open();
  let batch = [];
  let bytes = 0;
  for (const d of datums()) {
    batch.push(d);
    bytes += d.content.byteLength + Buffer.byteLength(d.id) + 20;
    if (batch.length === 2000) {
      await adapter.putMany(batch);
      batch = [];
    }
  }
  if (batch.length) await adapter.putMany(batch);
  await adapter.close();
  return bytes;
}

/** CPU ms of the Postgres server processes this process started (the throwaway cluster); null for an external server. */
function serverCpuMs() {
  if (!serverPid) return null;
  let ticks = 0;
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime, stime (and, for the postmaster, its reaped children's).
      if (Number(p) === serverPid) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (Number(f[1]) === serverPid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return ticks * (1000 / CLOCK_TICKS);
}
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
let serverPid = null;

/** Wall time, this process's CPU time (all its threads) and the Postgres server's, of `fn`. */
async function timed(fn) {
  const server = serverCpuMs();
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  const value = await fn();
  const used = process.cpuUsage(cpu);
  const after = serverCpuMs();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, cpuMs: (used.user + used.system) / 1000, serverCpuMs: server === null ? null : after - server, value };
}

/** A native tool run to completion, with its CPU time (user + system, from the shell's `times`). */
function runTool(file, args) {
  const out = execFileSync("bash", ["-c", '"$0" "$@" > /dev/null; times', file, ...args]).toString().trim().split("\n");
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(out[1] ?? "");
  return m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : null;
}

const row = (tier, contender, op, t, bytes, extra = {}) => {
  // CPU: this process (dgent, or better-sqlite3 in it), or the tool's process, plus the server's.
  const own = typeof t.value === "number" ? t.value : t.cpuMs;
  return {
    tier,
    contender,
    op,
    ms: Math.round(t.ms),
    cpuMs: Math.round(own + (t.serverCpuMs ?? 0)),
    ...(t.serverCpuMs === null ? {} : { serverCpuMs: Math.round(t.serverCpuMs) }),
    datumsPerS: Math.round(N / (t.ms / 1000)),
    mbPerS: Number((bytes / 2 ** 20 / (t.ms / 1000)).toFixed(1)),
    ...extra,
  };
};

/** The pid of this process's child named `name`, or null. */
function childNamed(name) {
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (comm === name && Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid) return Number(p);
    } catch {
      // gone
    }
  }
  return null;
}

const results = [];
const sizeOf = (path) => (statSync(path).isDirectory() ? readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0) : statSync(path).size);

// ---- SQLite
{
  const src = join(work, "src.db");
  const bytes = await fill(sqliteAdapter({ path: src }));
  const b = await timed(() => backup({ from: `sqlite://${src}`, to: join(work, "sqlite-archives") }));
  results.push(row("sqlite", "dgent backup", "backup", b, bytes, { archiveBytes: sizeOf(join(work, "sqlite-archives")) }));
  const r = await timed(() => restore({ from: join(work, "sqlite-archives"), to: `sqlite://${join(work, "restored.db")}`, checkpointPath: join(work, "cp-sqlite.json") }));
  if (r.value.verified !== true) throw new Error("the SQLite restore did not verify");
  results.push(row("sqlite", "dgent restore", "restore", r, bytes));
  const nb = await timed(async () => {
    const db = new Database(src, { readonly: true });
    await db.backup(join(work, "native.db"));
    db.close();
  });
  results.push(row("sqlite", "sqlite3 .backup (better-sqlite3 backup())", "backup", nb, bytes, { archiveBytes: statSync(join(work, "native.db")).size }));
  // Restore baselines. The goal compares with the first: the same rows loaded into a fresh dgent
  // database (same schema, indexes and tag trigger) with raw better-sqlite3, one transaction, no
  // checksums. `.restore` (a page copy of the .backup, better-sqlite3 backup() the other way) and a
  // file copy rebuild nothing, so no logical restore can come near them; they are shown for scale.
  const rawPath = join(work, "raw-restored.db");
  const schema = sqliteAdapter({ path: rawPath });
  await schema.open();
  await schema.close();
  const ri = await timed(async () => {
    const from = new Database(join(work, "native.db"), { readonly: true });
    const to = new Database(rawPath);
    to.pragma("journal_mode = WAL");
    to.pragma("synchronous = NORMAL");
    const insert = to.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
    const rows = from.prepare("SELECT id, content, created_at, causal_parent, metadata FROM data").raw();
    to.transaction(() => {
      for (const r of rows.iterate()) insert.run(...r);
    })();
    from.close();
    to.close();
  });
  results.push(row("sqlite", "raw better-sqlite3 INSERT, one transaction", "restore", ri, bytes));
  const nr = await timed(async () => {
    const db = new Database(join(work, "native.db"), { readonly: true });
    await db.backup(join(work, "native-restored.db"));
    db.close();
  });
  results.push(row("sqlite", "sqlite3 .restore (page copy, better-sqlite3 backup())", "restore", nr, bytes));
  const fc = await timed(async () => copyFileSync(join(work, "native.db"), join(work, "copy-restored.db")));
  results.push(row("sqlite", "file copy of the .backup", "restore", fc, bytes));
}

// ---- Postgres
if (!SKIP.has("postgres")) {
  const external = process.env.DGENT_BENCH_POSTGRES_URL;
  const cluster = external ? null : await throwawayCluster();
  const url = external ?? cluster.url;
  const pgBin = cluster?.bin ?? "/usr/bin";
  // The throwaway cluster's postmaster is this process's child: its CPU (and its backends') is measured.
  if (cluster) serverPid = childNamed("postgres");
  try {
    const bytes = await fill(postgresAdapter({ url, namespace: "bench_src" }));
    const b = await timed(() => backup({ from: url, namespace: "bench_src", to: join(work, "pg-archives") }));
    results.push(row("postgres", "dgent backup", "backup", b, bytes, { archiveBytes: sizeOf(join(work, "pg-archives")) }));
    const r = await timed(() => restore({ from: join(work, "pg-archives"), to: url, namespace: "bench_dst", checkpointPath: join(work, "cp-pg.json") }));
    if (r.value.verified !== true) throw new Error("the Postgres restore did not verify");
    results.push(row("postgres", "dgent restore", "restore", r, bytes));
    const dump = join(work, "dump.pgc");
    const nb = await timed(async () => runTool(join(pgBin, "pg_dump"), ["-Fc", "-n", "bench_src", "-f", dump, "-d", url]));
    results.push(row("postgres", "pg_dump -Fc", "backup", nb, bytes, { archiveBytes: statSync(dump).size }));
    const admin = new pg.Client(url);
    await admin.connect();
    await admin.query("CREATE DATABASE bench_restore");
    await admin.end();
    const target = new URL(url);
    target.pathname = "/bench_restore";
    const nr = await timed(async () => runTool(join(pgBin, "pg_restore"), ["-d", target.href, dump]));
    results.push(row("postgres", "pg_restore", "restore", nr, bytes));
  } finally {
    await cluster?.stop();
  }
}

rmSync(work, { recursive: true, force: true });
const ratio = (tier, op, field) => {
  const mine = results.find((r) => r.tier === tier && r.op === op && r.contender.startsWith("dgent"));
  const peer = results.find((r) => r.tier === tier && r.op === op && !r.contender.startsWith("dgent"));
  return mine && peer ? Number((mine[field] / peer[field]).toFixed(2)) : null;
};
const ratios = Object.fromEntries(
  ["sqlite", "postgres"].flatMap((t) => ["backup", "restore"].map((op) => [`${t} ${op}`, ratio(t, op, "ms")])).filter(([, v]) => v !== null),
);
/** The same ratios in CPU time (this process or the tool, plus the Postgres server's), which the shared machine sways less. */
const cpuRatios = Object.fromEntries(
  ["sqlite", "postgres"].flatMap((t) => ["backup", "restore"].map((op) => [`${t} ${op}`, ratio(t, op, "cpuMs")])).filter(([, v]) => v !== null),
);
// For scale only (not the goal): the SQLite restore against the page copy.
{
  const mine = results.find((r) => r.tier === "sqlite" && r.op === "restore" && r.contender.startsWith("dgent"));
  const page = results.find((r) => r.contender.startsWith("sqlite3 .restore"));
  if (mine && page) ratios["sqlite restore vs .restore page copy (scale, not the goal)"] = Number((mine.ms / page.ms).toFixed(2));
}
const report = {
  date: new Date().toISOString(),
  n: N,
  bytesPerDatum: BYTES,
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg().map((l) => Number(l.toFixed(2))), node: process.version },
  command: `node benchmarks/backup.mjs --n=${N} --bytes=${BYTES}`,
  results,
  ratios,
  cpuRatios,
};
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/backup.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
const md = [
  `# Backup and restore throughput`,
  "",
  `${N} datums of ${BYTES} bytes (half random, half text), ${report.date}, ${report.machine.cpus} CPUs, load at the start ${loadAtStart.join(" / ")}, at the end ${report.machine.loadavg.join(" / ")}, Node ${process.version}.`,
  `dgent: brotli (quality 1, the default), SHA-256 per chunk, chunks compressed and hashed (and, in a full backup, datums hashed) on one worker thread while the main thread reads, SQLite read from one snapshot (exportDatums), every chunk checked before a restore writes and the digest checked after. Command: \`${report.command}\`.`,
  "",
  "| tier | contender | op | ms | CPU ms | of which server | datums/s | MB/s | archive bytes |",
  "|---|---|---|---:|---:|---:|---:|---:|---:|",
  ...results.map((r) => `| ${r.tier} | ${r.contender} | ${r.op} | ${r.ms} | ${r.cpuMs} | ${r.serverCpuMs ?? ""} | ${r.datumsPerS} | ${r.mbPerS} | ${r.archiveBytes ?? ""} |`),
  "",
  "dgent time ÷ native time (goal ≤ 2; the SQLite restore's baseline is the raw INSERT of the same rows, see benchmarks/backup.mjs):",
  "",
  ...Object.entries(ratios).map(([k, v]) => `- ${k}: ${v}×${cpuRatios[k] === undefined ? "" : ` (CPU time: ${cpuRatios[k]}×)`}`),
  "",
  "CPU ms: user + system time of this process (all its threads: dgent, or better-sqlite3 in it) or of the native tool's process, plus, for Postgres, the server's processes (the throwaway cluster's; empty for an external server).",
  "",
].join("\n");
writeFileSync(new URL("./results/backup.md", import.meta.url), md);
process.stdout.write(md);
