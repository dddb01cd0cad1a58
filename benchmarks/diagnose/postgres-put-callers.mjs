/**
 * Diagnosis: Postgres put with 16 concurrent callers (`--callers=N` for another number), dgent's store against a raw `pg.Pool` of the
 * same size running raw's statement (the concurrency part's raw contender: the insert and its tag
 * rows in one statement), with the CPU per put of this process and of the server (every process
 * named `postgres*` on the machine: utime + stime from /proc, so run it where the server is) and
 * of the contender's own backends alone (`backends`: without the server's background processes,
 * whose work, autovacuum above all, lands in one contender's round or another's).
 * Each round runs every contender in a fresh child process (a fresh pool, a fresh schema, 2 000
 * untimed puts, then `--puts` timed), the order rotating; medians at the end. `--before=DIR`
 * adds a contender: dgent built in another checkout (its `dist/`), for an A/B of two builds.
 *
 *   npm run build && node benchmarks/diagnose/postgres-put-callers.mjs [--rounds=8] [--puts=20000] [--callers=16] [--before=/path/to/checkout] [--setting=autovacuum=off]
 *
 * A throwaway cluster (benchmarks/pg-cluster.mjs; `--setting` passes a server setting to it, once
 * per setting), or DGENT_BENCH_POSTGRES_URL.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { throwawayCluster } from "../pg-cluster.mjs";

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const CALLERS = Number(arg("callers", "16"));

if (process.env.PUT_CALLERS_CHILD) await child(JSON.parse(process.env.PUT_CALLERS_CHILD));
else await parent();

async function parent() {
  const rounds = Number(arg("rounds", "8"));
  const puts = Number(arg("puts", "20000"));
  const before = arg("before", undefined);
  const settings = process.argv.filter((a) => a.startsWith("--setting=")).map((a) => a.slice("--setting=".length));
  const cluster = process.env.DGENT_BENCH_POSTGRES_URL ? null : await throwawayCluster({ settings });
  const url = process.env.DGENT_BENCH_POSTGRES_URL ?? cluster.url;
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const contenders = [
    { label: "raw pg.Pool", mode: "raw", dist: root },
    ...(before ? [{ label: `dgent (${before})`, mode: "dgent", dist: before }] : []),
    { label: "dgent", mode: "dgent", dist: root },
  ];
  const results = new Map(contenders.map((c) => [c.label, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]);
      for (const c of order) {
        const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--callers=${CALLERS}`], {
          env: { ...process.env, PUT_CALLERS_CHILD: JSON.stringify({ url, puts, mode: c.mode, dist: c.dist, schema: `put_callers_${process.pid}_${r}_${contenders.indexOf(c)}` }) },
          encoding: "utf8",
        });
        if (run.status !== 0) throw new Error(`${c.label}: ${run.stderr}`);
        results.get(c.label).push(JSON.parse(run.stdout));
      }
    }
  } finally {
    await cluster?.stop();
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const raw = median(results.get("raw pg.Pool").map((x) => x.perSecond));
  console.log(`${CALLERS} callers, ${rounds} rounds of ${puts} puts, medians (per put: µs of CPU)`);
  console.log("contender".padEnd(40), "puts/s", "÷ raw", "client", "server", "backends");
  for (const [label, xs] of results) {
    const perSecond = median(xs.map((x) => x.perSecond));
    console.log(label.padEnd(40), String(perSecond).padStart(6), (perSecond / raw).toFixed(2).padStart(5), median(xs.map((x) => x.client)).toFixed(1).padStart(6), median(xs.map((x) => x.server)).toFixed(1).padStart(6), median(xs.map((x) => x.backends)).toFixed(1).padStart(8));
  }
}

/** One contender in this process: returns its throughput and CPU per put on stdout. */
async function child({ url, puts, mode, dist, schema }) {
  const { default: pg } = await import("pg");
  const { makeDatum } = await import(`${dist}/dist/core/index.js`);
  const datums = Array.from({ length: puts + 2000 + CALLERS }, (_, i) =>
    makeDatum({ content: Buffer.alloc(1024, i & 255), createdAt: 1e12 + i, metadata: { kind: "note", n: String(i % 50), agent: `a${i % 7}` } }),
  );
  let put;
  let close;
  if (mode === "dgent") {
    const { createStore } = await import(`${dist}/dist/compose/index.js`);
    const { postgresAdapter } = await import(`${dist}/dist/adapters/postgres/index.js`);
    const store = createStore({ tiers: [postgresAdapter({ url, namespace: schema, poolSize: CALLERS })] });
    await store.open();
    put = (d) => store.put(d);
    close = async () => {
      await store.close();
      const c = new pg.Client(url);
      await c.connect();
      await c.query(`DROP SCHEMA "${schema}" CASCADE`);
      await c.end();
    };
  } else {
    const pool = new pg.Pool({ connectionString: url, max: CALLERS });
    const s = `"${schema}"`;
    await pool.query(`CREATE SCHEMA ${s}`);
    await pool.query(`CREATE TABLE ${s}.t (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
    await pool.query(`CREATE INDEX ON ${s}.t (created_at DESC, id DESC)`);
    await pool.query(`CREATE INDEX ON ${s}.t (causal_parent, created_at, id)`);
    await pool.query(`CREATE TABLE ${s}.tags (key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, created_at DOUBLE PRECISION NOT NULL, id TEXT COLLATE "C" NOT NULL)`);
    await pool.query(`CREATE INDEX ON ${s}.tags (key, value, created_at, id)`);
    const text = `WITH ins AS (INSERT INTO ${s}.t (id, content, created_at, causal_parent, metadata) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id, created_at, metadata)
      INSERT INTO ${s}.tags (key, value, created_at, id) SELECT DISTINCT left(e.key, 64), left(e.value, 256), ins.created_at, ins.id FROM ins, jsonb_each_text(ins.metadata) e`;
    put = (d) => pool.query({ name: "put", text, values: [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)] });
    close = async () => {
      await pool.query(`DROP SCHEMA ${s} CASCADE`);
      await pool.end();
    };
  }
  let next = 0;
  const run = async (n) => {
    const end = next + n;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        for (let i = next++; i < end; i = next++) await put(datums[i]);
      }),
    );
    next = end;
  };
  await run(2000);
  // The contender's backends: every client backend but this probe's (each contender runs alone).
  const probe = new pg.Client(url);
  await probe.connect();
  const pids = (await probe.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")).rows.map((r) => r.pid);
  const backends0 = cpuOf(pids);
  const server0 = serverCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(puts);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server = serverCpu() - server0;
  const backends = cpuOf(pids) - backends0;
  await probe.end();
  await close();
  process.stdout.write(JSON.stringify({ perSecond: Math.round(puts / seconds), client: (cpu.user + cpu.system) / puts, server: server / puts, backends: backends / puts }));
}

/** µs of CPU (user + system) of the processes `pids` (clock ticks of 10 ms; one gone meanwhile counts no more). */
function cpuOf(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10_000;
}

/** µs of CPU (user + system) of every process named postgres* (clock ticks of 10 ms). */
function serverCpu() {
  const named = (pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).startsWith("postgres");
    } catch {
      return false; // gone meanwhile
    }
  };
  return cpuOf(readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && named(pid)));
}
