/**
 * The Redis tier next to raw node-redis doing the same work, Keyv (@keyv/redis) and unstorage
 * (its redis driver, on ioredis), in one run against one throwaway redis-server (no persistence,
 * so the disk is out of the picture). One operation at a time (each awaited), as an agent's
 * loop does. Contenders alternate operation by operation: the k-th put of every contender runs
 * back to back, in an order that rotates with k, so each sees the same machine load and follows
 * each of the others equally often. Ratios are the median over rounds of the ratio of the two
 * contenders' p50 in that round (a round's contenders ran within the same few milliseconds).
 *
 *   npm run bench:peers && npx vite-node benchmarks/redis.mjs -- [--rounds=20] [--ops=200] [--url=redis://…] [--before=<dist>]
 *
 * `--before=<dist>` (another build's dist directory, e.g. main's) adds that build's adapter and
 * listening store as two more contenders ("… (before)"), interleaved with the rest: an A/B of the
 * tier in one run. Results are then written to redis-ab.{json,md} instead.
 *
 * Writes benchmarks/results/redis.json and redis.md and prints the table.
 *
 * What each contender does per operation (a datum: 1 KiB of content, two metadata tags):
 * - dgent store: `store.put` / `store.get` / `store.list({ limit: 100 })` on a store of one redis
 *   tier (validation, hooks, router) with `listen: false`; dgent store, listening: the same with
 *   change events on (the default: a second connection subscribed to the namespace's channel; no
 *   other process listens, so its puts publish nothing); dgent adapter: the tier's own methods.
 * - raw: the same work with plain commands on the same driver (`@redis/client`, the node-redis
 *   core the tier loads): put = one Lua script that checks
 *   the id is free, then HSET (content, createdAt, parent, metadata) + ZADD to the time index and
 *   the id index; get = HGETALL; list(100) = ZRANGE … REV LIMIT 0 100 then 100 HGETALL pipelined.
 * - raw SET alone: put only, one plain `SET` of the datum's stored bytes: the floor, what the peers'
 *   puts cost the server, without the tier's append-only check, indexes and change event.
 * - Keyv: `set` / `get` of the datum as a JSON value (content as a string); Keyv has no ordered
 *   listing, so list is n/a.
 * - unstorage: `setItem` / `getItem` likewise; its listing (`getKeys` + `getItems`) is unordered
 *   and reads every key, so list is n/a.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { createClient } from "@redis/client"; // the client the tier loads (node-redis core)
import { load } from "./peers/load.mjs"; // the peers, from benchmarks/peers/node_modules (npm run bench:peers)
import { makeDatum } from "../core/datum.ts";
import { createStore } from "../core/store.ts";
import { startRedis } from "../test/harness/redis.ts";
import { encodeDatum, redisAdapter } from "../adapters/redis/index.ts";
import { rawRedis } from "./tiers/redis.ts";
const { default: Keyv } = await load("keyv");
const { default: KeyvRedis } = await load("@keyv/redis");
const { createStorage } = await load("unstorage");
const { default: redisDriver } = await load("unstorage/drivers/redis");

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const ROUNDS = Number(arg("rounds", 20));
const OPS = Number(arg("ops", 200));
const given = arg("url", null);
const before = arg("before", null);
const server = given ? null : await startRedis();
const url = given ?? server.url;

const CONTENT = "x".repeat(1024);
const datum = (tag, i) =>
  makeDatum({ id: `${tag}/${String(i).padStart(8, "0")}`, content: CONTENT, createdAt: 1.7e12 + i, metadata: { role: "user", thread: "t1" } });

// --- contenders -------------------------------------------------------------------------------
const adapter = redisAdapter({ url, namespace: "bench-adapter", listen: false });
await adapter.open();
const store = createStore({ tiers: [redisAdapter({ url, namespace: "bench-store", listen: false })], upgrader: false });
await store.open();
// The default: the store listens for other processes' changes (a second connection, subscribed to
// the namespace's channel). No other process listens here, so its puts announce nothing.
const listening = createStore({ tiers: [redisAdapter({ url, namespace: "bench-listening" })], upgrader: false });
await listening.open();

// Another build's tier (an A/B in the same run): its adapter and its listening store, from its dist.
const old = before
  ? {
      adapter: (await import(`${before}/adapters/redis/index.js`)).redisAdapter,
      createStore: (await import(`${before}/core/store.js`)).createStore,
    }
  : null;
const oldAdapter = old ? old.adapter({ url, namespace: "bench-adapter-before", listen: false }) : null;
await oldAdapter?.open();
const oldListening = old ? old.createStore({ tiers: [old.adapter({ url, namespace: "bench-listening-before" })], upgrader: false }) : null;
await oldListening?.open();

const raw = createClient({ url, RESP: 2 });
raw.on("error", () => undefined);
await raw.connect();
const rawOps = await rawRedis(raw, "raw"); // the raw baseline, shared with the concurrency section (benchmarks/tiers/redis.ts)
const rawPut = rawOps.put;
const rawGet = rawOps.get;
const rawList = () => rawOps.list(100);

const keyv = new Keyv({ store: new KeyvRedis(url), namespace: "bench-keyv" });
const storage = createStorage({ driver: redisDriver({ url, base: "bench-unstorage" }) });
const asValue = (d) => ({ content: CONTENT, createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata });

const contenders = {
  "dgent store": { put: (d) => store.put(d), get: (id) => store.get(id), list: () => store.list({ limit: 100 }) },
  "dgent store, listening": { put: (d) => listening.put(d), get: (id) => listening.get(id), list: () => listening.list({ limit: 100 }) },
  "dgent adapter": { put: (d) => adapter.put(d), get: (id) => adapter.get(id), list: () => adapter.list({ prefix: "", after: -1, limit: 100 }) },
  ...(old
    ? {
        "dgent adapter (before)": { put: (d) => oldAdapter.put(d), get: (id) => oldAdapter.get(id), list: () => oldAdapter.list({ prefix: "", after: -1, limit: 100 }) },
        "dgent store, listening (before)": { put: (d) => oldListening.put(d), get: (id) => oldListening.get(id), list: () => oldListening.list({ limit: 100 }) },
      }
    : {}),
  "raw node-redis": { put: rawPut, get: rawGet, list: rawList },
  // The floor of a put without the tier's guarantees: one plain SET of the same bytes, which is the
  // work Keyv and unstorage do (no append-only check, no index, no change event); put only.
  "raw SET alone": { put: (d) => raw.sendCommand(["SET", `raw1:d:${d.id}`, encodeDatum(d)]), get: null, list: null },
  "Keyv (@keyv/redis)": { put: (d) => keyv.set(d.id, asValue(d)), get: (id) => keyv.get(id), list: null },
  "unstorage (redis/ioredis)": { put: (d) => storage.setItem(d.id.replace("/", ":"), asValue(d)), get: (id) => storage.getItem(id.replace("/", ":")), list: null },
};

// --- measurement ------------------------------------------------------------------------------
const names = Object.keys(contenders);
const OPS_LIST = Math.max(10, OPS / 4);
const samples = Object.fromEntries(names.map((name) => [name, { put: [], get: [], list: [] }]));
/** Per round, per contender and operation: that round's p50. */
const perRound = [];
const written = Object.fromEntries(names.map((name) => [name, []]));
let counter = 0;
const loadBefore = loadavg()[0];

const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const mean = (xs) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
const median = (xs) => pct(xs, 50);

const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** `n` operations of each contender that has `op`, interleaved: step k runs every contender once, starting at a rotating one. */
async function phase(round, op, n, run) {
  const who = names.filter((name) => contenders[name][op]);
  const got = Object.fromEntries(who.map((name) => [name, []]));
  const steps = who.map((_, step) => step).filter((step) => step > 0 && gcd(step, who.length) === 1);
  for (let k = 0; k < n; k++) {
    // Step k's order: from a rotating start, every `step`-th contender, the step changing with k,
    // so that each contender follows each of the others equally often.
    const start = (k + Math.max(round, 0)) % who.length;
    const step = steps[Math.floor(k / who.length) % steps.length];
    for (let j = 0; j < who.length; j++) {
      const name = who[(start + j * step) % who.length];
      // What the previous operation left for the event loop (a library's callbacks after its
      // promise resolved) runs here, before the clock starts, rather than in the next contender's time.
      await settle();
      const t0 = process.hrtime.bigint();
      await run(name, contenders[name][op], k);
      got[name].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return got;
}

for (let round = -1; round < ROUNDS; round++) {
  // Round -1 warms up (connections, JIT, script caches) and is not counted.
  const puts = await phase(round, "put", OPS, async (name, put) => {
    const d = datum(name.split(" ")[0], counter++);
    await put(d);
    written[name].push(d.id);
  });
  const gets = await phase(round, "get", OPS, async (name, get, k) => {
    const ids = written[name];
    const id = ids[(k * 7919) % ids.length];
    if ((await get(id)) == null) throw new Error(`${name}: ${id} not found`);
  });
  const lists = await phase(round, "list", OPS_LIST, async (name, list) => {
    if ((await list()).length !== 100) throw new Error(`${name}: list did not return 100`);
  });
  if (round < 0) continue;
  const r = {};
  for (const [op, got] of [["put", puts], ["get", gets], ["list", lists]]) {
    for (const [name, xs] of Object.entries(got)) {
      samples[name][op].push(...xs);
      (r[name] ??= {})[op] = median(xs);
    }
  }
  perRound.push(r);
}
const loadAfter = loadavg()[0];

const results = Object.fromEntries(
  Object.entries(samples).map(([name, s]) => [
    name,
    Object.fromEntries(["put", "get", "list"].map((op) => [op, s[op].length ? { n: s[op].length, meanMs: mean(s[op]), p50Ms: pct(s[op], 50), p99Ms: pct(s[op], 99) } : null])),
  ]),
);
/** The median over rounds of a's round p50 ÷ b's round p50. */
const ratioOf = (a, b, op) => (results[a][op] && results[b][op] ? median(perRound.map((r) => r[a][op] / r[b][op])) : null);
const ratio = (name, op) => ratioOf(name, "raw node-redis", op);
const goals = [];
for (const who of ["dgent adapter", "dgent store", "dgent store, listening", ...(old ? ["dgent adapter (before)", "dgent store, listening (before)"] : [])]) {
  for (const op of ["get", "put"]) goals.push({ goal: `${who} ${op} p50 ≤ 1.3× raw`, value: ratio(who, op), pass: ratio(who, op) <= 1.3 });
  for (const op of ["get", "put"]) {
    for (const peer of ["Keyv (@keyv/redis)", "unstorage (redis/ioredis)"]) {
      const value = ratioOf(who, peer, op);
      goals.push({ goal: `${who} ${op} p50 ahead of ${peer}`, value, pass: value < 1 });
    }
  }
  goals.push({ goal: `${who} list(100) p50 ≤ 2 ms`, value: results[who].list.p50Ms, pass: results[who].list.p50Ms <= 2 });
}
// The store over the same tier: validation plus the expiry view, on datums that carry no expiry.
for (const op of ["get", "list"]) {
  const value = ratioOf("dgent store", "dgent adapter", op);
  goals.push({ goal: `dgent store ${op} ÷ adapter ${op} ≤ 1.05 (expiry view and validation, no datum expiring)`, value, pass: value <= 1.05 });
}

const f = (x, d = 3) => (x == null ? "n/a" : x.toFixed(d));
const lines = [
  `# Redis tier benchmark`,
  "",
  `redis-server ${given ? given.replace(/\/\/[^@]*@/, "//***@") : "throwaway, no persistence"}; ${ROUNDS} rounds × ${OPS} puts and gets and ${OPS_LIST} list(100) per contender, one at a time, contenders alternating operation by operation; datum of 1 KiB content and two tags; node ${process.version}; load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (2 cores); ${new Date().toISOString()}.`,
  "p50, p99 and mean over every sample; the ×raw columns and the goals' ratios are the median over rounds of the two contenders' p50 ratio in that round.",
  "Command: `npx vite-node benchmarks/redis.mjs -- --rounds=" + ROUNDS + " --ops=" + OPS + (before ? " --before=<main's dist>" : "") + "`",
  "",
  "| contender | put p50 ms | put p99 | put mean | get p50 ms | get p99 | list(100) p50 ms | list p99 | list mean | put ×raw | get ×raw | list ×raw |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...Object.entries(results).map(
    ([name, r]) =>
      `| ${name} | ${f(r.put?.p50Ms)} | ${f(r.put?.p99Ms)} | ${f(r.put?.meanMs)} | ${f(r.get?.p50Ms)} | ${f(r.get?.p99Ms)} | ${f(r.list?.p50Ms)} | ${f(r.list?.p99Ms)} | ${f(r.list?.meanMs)} | ${f(ratio(name, "put"), 2)} | ${f(ratio(name, "get"), 2)} | ${f(ratio(name, "list"), 2)} |`,
  ),
  "",
  "| goal | value | pass |",
  "|---|---|---|",
  ...goals.map((g) => `| ${g.goal} | ${f(g.value, 2)} | ${g.pass ? "yes" : "**no**"} |`),
  "",
];
const md = lines.join("\n");
console.log(md);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const out = before ? "redis-ab" : "redis";
writeFileSync(new URL(`./results/${out}.json`, import.meta.url), JSON.stringify({ rounds: ROUNDS, ops: OPS, node: process.version, at: new Date().toISOString(), loadAverage: { before: loadBefore, after: loadAfter }, results, perRound, goals }, null, 2) + "\n");
writeFileSync(new URL(`./results/${out}.md`, import.meta.url), md);

await Promise.all([store.close(), listening.close(), adapter.close(), oldAdapter?.close(), oldListening?.close(), raw.close(), keyv.disconnect?.(), storage.dispose()]);
await server?.close();
process.exit(0);
