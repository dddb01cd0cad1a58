/**
 * Diagnosis: CPU per put of dgent's Postgres stores by notification mode, for one or more builds
 * in the same rounds: `DIAG_DISTS=<dist>,<dist>` (default this checkout's dist, built),
 * `DIAG_MODES=listen,nolisten,off` (notify on and listening: a store with an `externalChange` tap; notify on, not
 * listening; notify off), `DIAG_CALLERS` concurrent callers (a pool of as many), `DIAG_PREFILL`
 * datums first (default 0: a putMany prefill leaves its connection's cached trigger plan, see
 * migration 7), `DIAG_ROUNDS` × `DIAG_PER` puts per store, rotating; this process's CPU and the
 * cluster's (as postgres-put.ts counts them), throughput, p50; and a plain INSERT on a pool (no
 * tags) unless `DIAG_RAW=0`. `DIAG_VERBOSE=1` prints, per window, the NOTIFYs, reads and prunes
 * the hubs sent (and whether one was handed to a connection already running a statement).
 *
 *   DIAG_DISTS=/old/checkout/dist,$PWD/dist DIAG_MODES=listen,off DIAG_CALLERS=16 npx vite-node benchmarks/diagnose/postgres-notify-ab.ts
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { fileURLToPath } from "node:url";
import { postgresServer } from "../servers.js";
import { makePrefill } from "../workload.js";
import { freshForPuts } from "../concurrency.js";
import { clusterCpuMeter } from "./cluster-cpu.js";

const dists = (process.env.DIAG_DISTS ?? fileURLToPath(new URL("../../dist", import.meta.url))).split(",");
const server = await postgresServer(process.env);
const url = server.url;
const proto = pg.Client.prototype as any;
const orig = proto.query;
const stats = new Map<string, { n: number; ms: number; rows: number; overlap: number }>();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
proto.query = function (this: any, ...args: any[]) {
  const full: string = typeof args[0] === "string" ? args[0] : args[0]?.text ?? "";
  const text = full.replace(/^\/\*[^*]*\*\/\s*/, ""); // without the listener statements' leading comment
  const kind = text.startsWith("NOTIFY") ? "notify" : text.includes("_changes") && text.includes("pg_snapshot_xmin") ? "catchup" : text.startsWith("DELETE FROM") && text.includes("_changes") ? "prune" : null;
  if (!kind) return orig.apply(this, args);
  const busy = this._activeQuery || this._queryQueue.length > 0;
  const t = performance.now();
  const r = orig.apply(this, args);
  const s = stats.get(kind) ?? { n: 0, ms: 0, rows: 0, overlap: 0 };
  stats.set(kind, s);
  s.n++;
  if (busy) s.overlap++;
  if (r && typeof r.then === "function") r.then((res: any) => { s.ms += performance.now() - t; s.rows += res?.rows?.length ?? 0; }, () => undefined);
  return r;
};
const admin = new pg.Client(url); await admin.connect();
const dataDir = (await admin.query("SHOW data_directory")).rows[0].data_directory;
const serverCpuUs = clusterCpuMeter(dataDir);
const callers = Number(process.env.DIAG_CALLERS ?? 1);
const prefill = makePrefill(Number(process.env.DIAG_PREFILL ?? 0));
type S = { name: string; put: (d: any) => Promise<unknown>; close: () => Promise<void> };
const subjects: S[] = [];
let k = 0;
for (const dist of dists) {
  const core = await import(join(dist, "core/store.js"));
  const ad = await import(join(dist, "adapters/postgres/index.js"));
  const modes = (process.env.DIAG_MODES ?? "listen,nolisten,off").split(",");
  for (const mode of modes) {
    const ns = `ab_${k++}`;
    const s = core.createStore({ tiers: [ad.postgresAdapter({ url, namespace: ns, poolSize: callers, notify: mode !== "off", listen: mode === "listen", applicationName: ns })] });
    // A store listens only for someone (a tap on externalChange, as the cache plugin makes).
    if (mode === "listen") s.hooks.externalChange.tap("diag", () => undefined);
    await s.open();
    for (let i = 0; i < prefill.datums.length; i += 1000) await s.putMany(prefill.datums.slice(i, i + 1000));
    subjects.push({ name: `${dist.split("/").slice(-2, -1)[0]}:${mode}`, put: (d) => s.put(d), close: () => s.close() });
  }
}
const pool = new pg.Pool({ connectionString: url, max: callers });
await pool.query(`CREATE TABLE IF NOT EXISTS public.ab_raw (id TEXT COLLATE "C" PRIMARY KEY, content BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, causal_parent TEXT COLLATE "C", metadata JSONB)`);
const raw = { name: "ab_raw_put", text: `INSERT INTO public.ab_raw VALUES ($1,$2,$3,$4,$5::jsonb) ON CONFLICT (id) DO NOTHING` };
if (process.env.DIAG_RAW !== "0") subjects.push({ name: "raw", put: (d) => pool.query({ ...raw, values: [d.id, d.content, d.createdAt, d.causalParent, JSON.stringify(d.metadata)] }), close: async () => {} });
const acc = new Map(subjects.map((s) => [s.name, { n: 0, cl: 0, sv: 0, wall: 0, lat: [] as number[] }]));
const per = Number(process.env.DIAG_PER ?? 3000);
serverCpuUs();
for (const s of subjects) await Promise.all(freshForPuts(callers * 4).map((d) => s.put(d)));
const ROUNDS = Number(process.env.DIAG_ROUNDS ?? 4);
for (let r = 0; r < ROUNDS; r++) {
  for (let j = 0; j < subjects.length; j++) {
    const s = subjects[(j + r) % subjects.length]!;
    const ds = freshForPuts(per);
    let next = 0;
    const a = acc.get(s.name)!;
    stats.clear();
    const c0 = process.cpuUsage(); const s0 = serverCpuUs(); const t0 = performance.now();
    await Promise.all(Array.from({ length: callers }, async () => { while (next < per) { const d = ds[next++]; const t = performance.now(); await s.put(d); a.lat.push(performance.now() - t); } }));
    const wall = performance.now() - t0;
    await new Promise((res) => setTimeout(res, 50));
    const c = process.cpuUsage(c0);
    a.n += per; a.cl += c.user + c.system; a.sv += serverCpuUs() - s0; a.wall += wall * 1000;
    if (process.env.DIAG_VERBOSE) console.log(`  r${r} ${s.name}: ${[...stats].map(([k2, v]) => `${k2} n=${v.n} ov=${v.overlap} ${(v.ms / v.n).toFixed(2)}ms rows=${(v.rows / v.n).toFixed(0)}`).join("; ")}`);
  }
}
const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(`callers ${callers}, ${ROUNDS}×${per} puts each, load ${load}`);
for (const [name, a] of acc) {
  a.lat.sort((x, y) => x - y);
  console.log(`${name.padEnd(28)} cpu ${((a.cl + a.sv) / a.n).toFixed(0)} µs/put (client ${(a.cl / a.n).toFixed(0)} server ${(a.sv / a.n).toFixed(0)}) wall ${(a.wall / a.n).toFixed(0)} µs/put  ${(a.n / a.wall * 1e6).toFixed(0)}/s p50 ${(a.lat[Math.floor(a.lat.length / 2)]! * 1000).toFixed(0)} µs`);
}
for (const s of subjects) await s.close();
await pool.end(); await admin.end(); await server.close();
