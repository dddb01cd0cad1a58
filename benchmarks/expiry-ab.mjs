// Expiry's cost on reads of datums that carry no expiry: `get` and `list(100)` through a one-tier
// store, built from two checkouts (before and after expiry), measured interleaved in one process
// so both see the same machine load. Prints the median CPU ns (user + system of this process, so
// other processes on a busy machine count less than in wall time) per operation, and the ratio.
//
//   npm run build && node benchmarks/expiry-ab.mjs --before /path/to/other/checkout [--after .] [--n 20000] [--rounds 15]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const N = Number(arg("n", "20000"));
const ROUNDS = Number(arg("rounds", "15"));
const roots = { before: resolve(arg("before", "")), after: resolve(arg("after", ".")) };
if (!arg("before")) throw new Error("pass --before <checkout with a built dist/>");

const load = async (root) => ({
  dgent: await import(pathToFileURL(join(root, "dist/compose/index.js")).href),
  memory: (await import(pathToFileURL(join(root, "dist/adapters/memory/index.js")).href)).memoryAdapter,
  sqlite: (await import(pathToFileURL(join(root, "dist/adapters/sqlite/index.js")).href)).sqliteAdapter,
});
const builds = { before: await load(roots.before), after: await load(roots.after) };
const dir = mkdtempSync(join(tmpdir(), "dgent-expiry-ab-"));
const content = new Uint8Array(1024).fill(97);
const metadata = { role: "agent", step: "think", session: "s1" };

async function storeOf(version, tier) {
  const b = builds[version];
  const adapter = tier === "memory" ? b.memory() : b.sqlite({ dataDir: join(dir, `${version}-${tier}`) });
  const store = b.dgent.createStore({ tiers: [adapter] });
  await store.open();
  const ids = [];
  const datums = [];
  for (let i = 0; i < N; i++) datums.push(b.dgent.makeDatum({ content, metadata }));
  await store.putMany(datums);
  for (const d of datums) ids.push(d.id);
  return { store, ids };
}

const cpuNs = (since) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) * 1000;
};
async function gets({ store, ids }) {
  const t = process.cpuUsage();
  for (let i = 0; i < N; i++) await store.get(ids[(i * 7919) % N]);
  return cpuNs(t) / N;
}
async function lists({ store }) {
  const n = 200;
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) await store.list({ limit: 100 });
  return cpuNs(t) / n;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const tier of ["memory", "sqlite"]) {
  const stores = { before: await storeOf("before", tier), after: await storeOf("after", tier) };
  for (const [op, fn] of [["get", gets], ["list(100)", lists]]) {
    const samples = { before: [], after: [] };
    await fn(stores.before);
    await fn(stores.after); // warm both
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ["before", "after"] : ["after", "before"];
      for (const v of order) samples[v].push(await fn(stores[v]));
    }
    const b = median(samples.before);
    const a = median(samples.after);
    console.log(`${tier.padEnd(7)} ${op.padEnd(10)} before ${b.toFixed(0).padStart(7)} ns  after ${a.toFixed(0).padStart(7)} ns  after/before ${(a / b).toFixed(3)}`);
  }
  await stores.before.store.close();
  await stores.after.store.close();
}
rmSync(dir, { recursive: true, force: true });
