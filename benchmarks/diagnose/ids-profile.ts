/**
 * Diagnosis: a CPU profile of `store.query({ where: { topic }, limit: 100, select: "ids" })` on
 * SQLite (`--n` datums, default 100,000), the self time of its hottest functions.
 *
 *   npx vite-node benchmarks/diagnose/ids-profile.ts -- [--n 100000] [--calls 200000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore } from "../../core/store.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { QUERY_TAG, QUERY_VALUES, queryDatum } from "../workload.js";

const arg = (name: string, d: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : d);
const n = arg("--n", 100_000);
const calls = arg("--calls", 200_000);
const dir = mkdtempSync(join(tmpdir(), "sqidp-"));
const store = createStore({ tiers: [sqliteAdapter({ dataDir: dir, namespace: "q" })] });
try {
  await store.open();
  const t0 = Date.now() - n;
  for (let s = 0; s < n; s += 5000) await store.putMany(Array.from({ length: Math.min(5000, n - s) }, (_, k) => queryDatum(s + k, null, t0 + s + k)));
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) await store.query({ where: { [QUERY_TAG]: QUERY_VALUES[i % QUERY_VALUES.length] as string }, limit: 100, select: "ids" });
  };
  await run(20_000);
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 50 });
  await session.post("Profiler.start");
  const t = performance.now();
  await run(calls);
  const ms = performance.now() - t;
  const { profile } = await session.post("Profiler.stop");
  const self = new Map<string, number>();
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const dt = profile.timeDeltas ?? [];
  (profile.samples ?? []).forEach((id, i) => {
    const node = nodes.get(id);
    if (node === undefined) return;
    const f = node.callFrame;
    const key = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`${calls} calls, ${((ms * 1000) / calls).toFixed(1)} µs a call`);
  for (const [key, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / calls).toFixed(2).padStart(6)} µs  ${key}`);
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
