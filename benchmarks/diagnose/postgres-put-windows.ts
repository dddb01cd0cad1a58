/**
 * Diagnosis: the concurrency part's put windows at `DIAG_CALLERS` callers (default 1), as the
 * benchmark runs them (each build's Postgres tier: dgent, dgent notify:false and raw pg in schemas
 * of their own, pools of `DIAG_CALLERS`, prefilled with 2,000 datums as the benchmark does; 100 ms
 * windows, a full GC before each, the order rotating), `DIAG_ROUNDS` rounds (default 20); p50,
 * throughput, and CPU per put (this process's and the cluster's, as postgres-put.ts counts them).
 * `DIAG_BEFORE_CHECKOUT=<another checkout>` adds that checkout's tier (its sources), for an A/B in
 * the same rounds. Every store is opened (migrated) before any is prefilled: a CREATE SCHEMA
 * resets the cached plans of every session, which would hide what the prefill leaves behind.
 *
 *   DIAG_BEFORE_CHECKOUT=/path/to/old/checkout npx vite-node benchmarks/diagnose/postgres-put-windows.ts
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { postgresServer } from "../servers.js";
import { drive, opCall } from "../concurrency.js";
import { fullGc, summarize } from "../measure.js";
import { makePrefill } from "../workload.js";
import type { Contender, TierSetup } from "../contender.js";
import * as tierNew from "../tiers/postgres.js";
import { clusterCpuMeter } from "./cluster-cpu.js";

const beforeCheckout = process.env.DIAG_BEFORE_CHECKOUT;
const tierBase: typeof tierNew | null = beforeCheckout ? await import(/* @vite-ignore */ join(beforeCheckout, "benchmarks/tiers/postgres.ts")) : null;

const server = await postgresServer(process.env);
const shared = async () => ({ ...server, close: async () => undefined });
const callers = Number(process.env.DIAG_CALLERS ?? 1);
const prefill = makePrefill(2000);
const contenders: { name: string; c: Contender }[] = [];
const setups: TierSetup[] = [];
const tiers: [string, typeof tierNew][] = [...(tierBase ? [["before", tierBase] as [string, typeof tierNew]] : []), ["this", tierNew]];
for (const [label, t] of tiers) {
  const setup = await t.postgresTier(shared, false, { poolSize: callers, quiet: true });
  setups.push(setup);
  for (const c of setup.contenders) contenders.push({ name: `${label} ${c.name}`, c });
}
// (CREATE SCHEMA resets every session's cached plans: open, i.e. migrate, every store first.)
for (const { c } of contenders) await c.prefill([]);
for (const { c } of contenders) await c.prefill(prefill.datums);
const admin = new pg.Client(server.url); await admin.connect();
const dataDir = (await admin.query("SHOW data_directory")).rows[0].data_directory;
await admin.end();
const serverUs = clusterCpuMeter(dataDir);
serverUs();
for (const { c } of contenders) await drive(callers, 100, callers * 4, opCall(c, "put", callers * 4, prefill.getIds, 0));
const acc = new Map(contenders.map(({ name }) => [name, { lat: [] as number[], n: 0, ms: 0, cl: 0, sv: 0 }]));
const rounds = Number(process.env.DIAG_ROUNDS ?? 20);
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < contenders.length; k++) {
    const { name, c } = contenders[(k + r) % contenders.length]!;
    for (const op of ["put", "get"] as const) {
      fullGc();
      const c0 = process.cpuUsage(); const s0 = serverUs();
      const d = await drive(callers, 100, 10_000, opCall(c, op, 10_000, prefill.getIds, r * 104_729));
      if (op === "put") {
        const a = acc.get(name)!; const cu = process.cpuUsage(c0);
        a.lat.push(...d.lat); a.n += d.lat.length; a.ms += d.endMs - d.startMs; a.cl += cu.user + cu.system; a.sv += serverUs() - s0;
      }
    }
  }
}
console.log(`put, ${callers} caller(s), ${rounds} rounds of 100 ms windows, load ${readFileSync("/proc/loadavg", "utf8").slice(0, 15)}`);
for (const { name } of contenders) {
  const a = acc.get(name)!; const s = summarize(a.lat);
  console.log(`${name.padEnd(28)} p50 ${s.p50.toFixed(0).padStart(5)} µs  ${(a.n / a.ms * 1000).toFixed(0).padStart(5)}/s  CPU ${((a.cl + a.sv) / a.n).toFixed(0)} µs/put (client ${(a.cl / a.n).toFixed(0)} + server ${(a.sv / a.n).toFixed(0)})`);
}
for (const { c } of contenders) await c.close();
for (const s of setups) await s.dispose();
await server.close();
