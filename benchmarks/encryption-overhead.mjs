// What the encryption plugin adds to put and get at 1 KiB on SQLite, against the bare store in
// the same run (rounds interleaved, fresh files): median and mean µs per call and their ratios,
// and the process's CPU time per call (user + system over each loop: what the call costs the
// machine, less swayed than wall time when other processes share the cores). The goal is ≤ 1.2×
// (issue #20).
//
//   npm run build && node benchmarks/encryption-overhead.mjs [--n 3000] [--rounds 3]
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, makeDatum } from "dgent";
import { definePlugin } from "dgent/extend";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { encryptionPlugin } from "dgent/plugins/encryption";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg("n", 3000);
const ROUNDS = arg("rounds", 3);
const dir = mkdtempSync(join(tmpdir(), "dgent-encryption-bench-"));
const ring = { active: "k1", keys: { k1: randomBytes(32) } };
// The same taps doing nothing: what the store's hook path costs, before any cryptography.
const noop = definePlugin({
  name: "noop",
  apply(api) {
    api.hooks.beforePut.tap({ name: "noop", stage: 150 }, (d) => d);
    api.hooks.read.tap({ name: "noop", stage: -150 }, (d) => d);
  },
});
const CONFIGS = {
  bare: () => [],
  "no-op taps (floor)": () => [noop],
  encryption: () => [encryptionPlugin({ keyProvider: () => ring, queryable: ["kind"] })],
  "encryption (random nonce)": () => [encryptionPlugin({ keyProvider: () => ring, queryable: ["kind"], nonce: "random" })],
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cpuPerCall = (since) => {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / N;
};

async function measure(name, round) {
  const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, `${name.replace(/\W/g, "_")}-${round}.db`) })], plugins: CONFIGS[name]() });
  await store.open();
  const ds = Array.from({ length: N }, (_, i) => makeDatum({ content: randomBytes(1024), metadata: { kind: "trace", step: String(i) } }));
  const put = [];
  let cpu = process.cpuUsage();
  for (const d of ds) {
    const t = process.hrtime.bigint();
    await store.put(d);
    put.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const putCpu = cpuPerCall(cpu);
  const get = [];
  cpu = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const id = ds[(i * 7919) % N].id;
    const t = process.hrtime.bigint();
    await store.get(id);
    get.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const getCpu = cpuPerCall(cpu);
  await store.close();
  return { put, get, putCpu, getCpu };
}

const all = Object.fromEntries(Object.keys(CONFIGS).map((k) => [k, { put: [], get: [], putCpu: [], getCpu: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  for (const name of Object.keys(CONFIGS)) {
    const r = await measure(name, round);
    all[name].put.push(...r.put);
    all[name].get.push(...r.get);
    all[name].putCpu.push(r.putCpu);
    all[name].getCpu.push(r.getCpu);
  }
}
rmSync(dir, { recursive: true, force: true });
const base = all.bare;
console.log(`1 KiB datums on SQLite, ${N} puts then ${N} gets per round, ${ROUNDS} rounds (µs per call; CPU: median over rounds of the loop's CPU time / calls)`);
console.log("| config | put median | put mean | get median | get mean | put ratio (median) | get ratio (median) | put CPU | get CPU | put ratio (CPU) | get ratio (CPU) |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const [name, r] of Object.entries(all)) {
  const f = (x) => x.toFixed(1);
  console.log(
    `| ${name} | ${f(median(r.put))} | ${f(mean(r.put))} | ${f(median(r.get))} | ${f(mean(r.get))} | ${(median(r.put) / median(base.put)).toFixed(2)}× | ${(median(r.get) / median(base.get)).toFixed(2)}× | ` +
      `${f(median(r.putCpu))} | ${f(median(r.getCpu))} | ${(median(r.putCpu) / median(base.putCpu)).toFixed(2)}× | ${(median(r.getCpu) / median(base.getCpu)).toFixed(2)}× |`,
  );
}
