/**
 * Diagnosis: CPU per compare-and-set on Postgres — the server's (every process of the cluster, from
 * /proc/<pid>/stat) and this client's (`process.cpuUsage()`) — for two builds of dgent and the bare
 * raw `UPDATE`. CPU time, unlike latency, hardly moves with the machine's load, so this compares
 * builds where the load makes the latency ratios of `refs-ab.ts` swing from run to run. Linux only.
 *
 *   npm run build && npx vite-node benchmarks/diagnose/refs-cpu.ts -- --before /path/to/older/dist [--after dist] [--calls 4000] [--rounds 5]
 *
 * Each round runs `calls` sequential compare-and-sets per contender (the order rotating); prints
 * the medians over the rounds, in µs of CPU per call, and the WAL the cluster wrote per call (bytes;
 * other activity on the cluster counts too, so run it alone).
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import type { Store } from "../../core/store.js";
import { sharedPostgres } from "../servers.js";
import { makePrefill } from "../workload.js";
import { dropSchema, rawPgForRefs } from "../tiers/postgres.js";
import { dgentRefOps } from "../tiers/refs.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: { before: { type: "string" }, after: { type: "string", default: "dist" }, calls: { type: "string", default: "4000" }, rounds: { type: "string", default: "5" } },
});
if (values.before === undefined) throw new Error("--before: the dist/ folder of the older build");
const calls = Number(values.calls);
const rounds = Number(values.rounds);

async function load(dist: string): Promise<{ createStore(o: unknown): Store; postgresAdapter(o: unknown): unknown }> {
  const url = (p: string) => pathToFileURL(join(resolve(dist), p)).href;
  const core = (await import(url("core/index.js"))) as { createStore(o: unknown): Store };
  const pgAdapter = (await import(url("adapters/postgres/index.js"))) as { postgresAdapter(o: unknown): unknown };
  return { createStore: core.createStore, postgresAdapter: pgAdapter.postgresAdapter };
}

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux
/** CPU time (µs) so far of each process. */
function cpuOf(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      out.set(pid, (Number(fields[11]) + Number(fields[12])) * TICK_US); // utime, stime
    } catch {
      // gone
    }
  }
  return out;
}
/** CPU spent between two readings: by processes in both, and all of it by those that started in between. */
function spent(before: Map<number, number>, after: Map<number, number>): number {
  let us = 0;
  for (const [pid, t] of after) us += t - (before.get(pid) ?? 0);
  return us;
}

const postgres = sharedPostgres(process.env);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
try {
  const server = await postgres.get();
  const prefill = makePrefill(100);
  const target = prefill.getIds[0] as string;
  const tag = String(process.pid);
  const contenders: { name: string; cas: () => unknown; close: () => Promise<void> }[] = [];
  for (const [which, dist] of [["after", values.after as string], ["before", values.before]] as const) {
    const b = await load(dist);
    const namespace = `refs_cpu_${which}_${tag}`;
    const store = b.createStore({ tiers: [b.postgresAdapter({ url: server.url, namespace, listen: false })] });
    await store.putMany(prefill.datums);
    const ops = await dgentRefOps(store, target);
    contenders.push({
      name: which,
      cas: ops.cas,
      close: async () => {
        await store.close();
        await dropSchema(server.url, namespace);
      },
    });
  }
  const raw = await rawPgForRefs(server.url, `refs_cpu_raw_${tag}`, prefill.datums, target);
  contenders.splice(1, 0, { name: "raw pg", cas: raw.bare.cas, close: raw.close });
  for (const c of contenders) for (let i = 0; i < 300; i++) await c.cas();
  const client = new pg.Client(server.url);
  await client.connect();
  const server_ = new Map<string, number[]>();
  const client_ = new Map<string, number[]>();
  const wal_ = new Map<string, number[]>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(k + r) % contenders.length] as (typeof contenders)[number];
        const pids = async () => (await client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity")).rows.map((row) => row.pid);
        const w0 = (await client.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0]?.lsn;
        const s0 = cpuOf(await pids());
        const c0 = process.cpuUsage();
        for (let i = 0; i < calls; i++) await c.cas();
        const c1 = process.cpuUsage(c0);
        const s1 = cpuOf(await pids());
        const wal = (await client.query<{ bytes: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::text AS bytes", [w0])).rows[0]?.bytes;
        wal_.set(c.name, [...(wal_.get(c.name) ?? []), Number(wal) / calls]);
        server_.set(c.name, [...(server_.get(c.name) ?? []), spent(s0, s1) / calls]);
        client_.set(c.name, [...(client_.get(c.name) ?? []), (c1.user + c1.system) / calls]);
      }
    }
  } finally {
    await client.end();
  }
  for (const c of contenders) {
    const s = server_.get(c.name) as number[];
    const cl = client_.get(c.name) as number[];
    const w = wal_.get(c.name) as number[];
    console.log(
      `${c.name}: server ${median(s).toFixed(1)} µs CPU per call (${s.map((x) => x.toFixed(0)).join(", ")}), client ${median(cl).toFixed(1)} µs (${cl.map((x) => x.toFixed(0)).join(", ")}), WAL ${median(w).toFixed(0)} bytes per call`,
    );
  }
  for (const c of contenders) await c.close();
} finally {
  await new Promise((r) => setTimeout(r, 500));
  await postgres.close();
}
