// What each plugin adds to put and get, against the bare store in the same run, on memory and
// SQLite: median and mean µs per call (the mean shows costs a median hides, such as a batch flush
// that one put in a hundred pays), and the saving of compression on agent-trace JSON.
//
//   npm run build && node benchmarks/plugins-overhead.mjs [--n 3000] [--rounds 3] [--only bare,metrics]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, makeDatum } from "dgent";
import { memoryAdapter } from "dgent/adapters/memory";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { cache, cachePlugin } from "dgent/plugins/cache";
import { compression, compressionPlugin } from "dgent/plugins/compression";
import { entropyPlugin } from "dgent/plugins/entropy";
import { lensPlugin } from "dgent/plugins/lens";
import { reactive, reactivePlugin } from "dgent/plugins/reactive";
import { synergyPlugin, synergyBus } from "dgent/plugins/synergy";
import { writeBehindPlugin } from "dgent/plugins/write-behind";
import { metricsPlugin } from "dgent/plugins/metrics";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const N = arg("n", 3000);
const ROUNDS = arg("rounds", 3);
const dir = mkdtempSync(join(tmpdir(), "dgent-plugins-bench-"));

// ~1 KiB of agent-trace JSON per datum, tagged for the lens.
const body = (i) =>
  JSON.stringify({
    step: i,
    role: "agent",
    thought: "Consider the tool results, compare them with the plan, and decide on the next action. ".repeat(9),
    tool: { name: "search", args: { q: `query ${i}` } },
  });
const NOTE = { type: "object", properties: { step: { type: "integer" }, role: { type: "string" } }, required: ["step", "role"] };

synergyBus("bench").on("*", () => undefined);
const CONFIGS = {
  bare: () => [],
  cache: () => [cachePlugin()],
  entropy: () => [entropyPlugin()],
  lens: () => [lensPlugin({ schemas: { trace: NOTE } })],
  compression: () => [compressionPlugin({ threshold: 512 })],
  reactive: () => [reactivePlugin({ overflow: "drop-oldest" })],
  synergy: () => [synergyPlugin({ bus: "bench" })],
  "write-behind": () => [writeBehindPlugin({ maxBatch: 100, intervalMs: 1000 })],
  metrics: () => [metricsPlugin()],
  "all seven": () => [
    cachePlugin(), entropyPlugin(), lensPlugin({ schemas: { trace: NOTE } }), compressionPlugin({ threshold: 512 }),
    reactivePlugin({ overflow: "drop-oldest" }), synergyPlugin({ bus: "bench" }), writeBehindPlugin({ maxBatch: 100, intervalMs: 1000 }),
  ],
};

// `--only bare,metrics`: just those rows (bare is always measured, it is the baseline).
const onlyArg = process.argv.indexOf("--only");
if (onlyArg > 0) {
  const keep = new Set(["bare", ...String(process.argv[onlyArg + 1]).split(",")]);
  for (const name of Object.keys(CONFIGS)) if (!keep.has(name)) delete CONFIGS[name];
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function measure(tierKind, name, round) {
  const tier = tierKind === "memory" ? memoryAdapter() : sqliteAdapter({ path: join(dir, `${name.replace(/\W/g, "_")}-${round}.db`) });
  const store = createStore({ tiers: [tier], plugins: CONFIGS[name]() });
  await store.open();
  if (name === "reactive" || name === "all seven") (await store.plugin(reactive)).subscribe(() => undefined);
  const ds = Array.from({ length: N }, (_, i) => makeDatum({ content: body(i), metadata: { type: "trace", step: String(i) }, idPrefix: `${name}/` }));
  const put = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await store.put(ds[i]);
    put.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const get = [];
  for (let i = 0; i < N; i++) {
    const id = ds[(i * 7919) % N].id;
    const t = process.hrtime.bigint();
    await store.get(id);
    get.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  let extra = "";
  if (name === "compression") {
    const s = (await store.plugin(compression)).stats();
    extra = `stored ${(s.ratio * 100).toFixed(1)}% of ${s.bytesIn} bytes (saved ${s.saved})`;
  }
  if (name === "cache") extra = `hit rate ${((await store.plugin(cache)).stats().hitRate * 100).toFixed(0)}%`;
  await store.close();
  return { put: median(put), putMean: mean(put), get: median(get), getMean: mean(get), extra };
}

const rows = [];
for (const tierKind of ["memory", "sqlite"]) {
  // Rounds interleave the configurations, so drift on a shared machine hits them all alike.
  const results = Object.fromEntries(Object.keys(CONFIGS).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of Object.keys(CONFIGS)) results[name].push(await measure(tierKind, name, round));
  }
  const best = (name, key) => Math.min(...results[name].map((r) => r[key]));
  const bare = { put: best("bare", "put"), putMean: best("bare", "putMean"), get: best("bare", "get") };
  for (const name of Object.keys(CONFIGS)) {
    const r = { put: best(name, "put"), putMean: best(name, "putMean"), get: best(name, "get") };
    const sign = (x) => (x >= 0 ? `+${x.toFixed(1)}` : x.toFixed(1));
    rows.push({
      tier: tierKind,
      plugin: name,
      "put µs (median)": r.put.toFixed(1),
      "put µs (mean)": r.putMean.toFixed(1),
      "get µs (median)": r.get.toFixed(1),
      "Δput median": name === "bare" ? "" : sign(r.put - bare.put),
      "Δput mean": name === "bare" ? "" : sign(r.putMean - bare.putMean),
      "Δget median": name === "bare" ? "" : sign(r.get - bare.get),
      note: results[name][0].extra,
    });
  }
}
console.log(`n=${N} datums of ~1 KiB agent-trace JSON per run, best of ${ROUNDS} interleaved rounds; node ${process.version}`);
console.table(rows);
rmSync(dir, { recursive: true, force: true });
