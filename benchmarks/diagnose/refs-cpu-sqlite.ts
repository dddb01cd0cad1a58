/**
 * Diagnosis: CPU per compare-and-set on SQLite (this process's `process.cpuUsage()`: user and
 * system, the commit's WAL writes included) for two builds of dgent and the raw driver — the bare
 * `UPDATE refs … WHERE name = ? AND version = ?` and, as dgent kept its reflog before schema 6,
 * the UPDATE with an upsert of a ring slot in one transaction. CPU time hardly moves with the
 * machine's load, where the latency ratios of `refs.ts` swing from run to run.
 *
 *   npm run build && npx vite-node benchmarks/diagnose/refs-cpu-sqlite.ts -- --before /path/to/older/dist [--after dist] [--calls 4000] [--rounds 7]
 *
 * Each round runs `calls` sequential compare-and-sets per contender, the order rotating; prints
 * the medians over the rounds in µs of CPU per call, and each one ÷ the bare UPDATE's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Store } from "../../core/store.js";
import { rawSqliteContender } from "../tiers/sqlite.js";
import { dgentRefOps, type RefOps } from "../tiers/refs.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: { before: { type: "string" }, after: { type: "string", default: "dist" }, calls: { type: "string", default: "4000" }, rounds: { type: "string", default: "7" } },
});
if (values.before === undefined) throw new Error("--before: the dist/ folder of the older build");
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const dir = mkdtempSync(join(tmpdir(), "dgent-refs-cpu-"));

async function dgent(dist: string, name: string): Promise<RefOps & { close(): Promise<void> }> {
  const url = (p: string) => pathToFileURL(join(resolve(dist), p)).href;
  const { createStore, makeDatum } = (await import(url("core/index.js"))) as { createStore(o: unknown): Store; makeDatum(o: unknown): { id: string } };
  const { sqliteAdapter } = (await import(url("adapters/sqlite/index.js"))) as { sqliteAdapter(o: unknown): unknown };
  const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, `${name}.db`) })] });
  const d = makeDatum({ content: "target" });
  await store.put(d as never);
  const ops = await dgentRefOps(store, d.id);
  return { ...ops, name, close: () => store.close() };
}

try {
  const raw = rawSqliteContender(join(dir, "raw.db"));
  const [bare, logged] = raw.refs("target") as [RefOps, RefOps];
  const contenders: { name: string; cas(): unknown }[] = [
    { name: "bare UPDATE", cas: () => bare.cas() },
    { name: "UPDATE + ring slot", cas: () => logged.cas() },
    await dgent(values.before, "dgent before"),
    await dgent(values.after, "dgent after"),
  ];
  const perCall = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (const c of contenders) for (let i = 0; i < 500; i++) await c.cas();
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length] as (typeof contenders)[number];
      const start = process.cpuUsage();
      for (let i = 0; i < calls; i++) await c.cas();
      const used = process.cpuUsage(start);
      perCall.get(c.name)?.push((used.user + used.system) / calls);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = median(perCall.get("bare UPDATE") as number[]);
  console.log(`load ${loadavg().map((x) => x.toFixed(1)).join(" ")}; ${rounds} rounds × ${calls} calls; CPU µs per compare-and-set, median (÷ bare UPDATE):`);
  for (const [name, xs] of perCall) console.log(`  ${name.padEnd(20)} ${median(xs).toFixed(1).padStart(6)}  (${(median(xs) / base).toFixed(2)}×)  rounds ${xs.map((x) => x.toFixed(1)).join(" ")}`);
  for (const c of contenders) await (c as { close?: () => Promise<void> }).close?.();
  await raw.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
