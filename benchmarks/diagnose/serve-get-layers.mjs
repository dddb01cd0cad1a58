// Where the CPU of a get over HTTP goes, layer by layer: the raw Fastify + better-sqlite3 route of
// serve.mjs (same schema and SELECT as the SQLite tier), the same route calling a dgent store's get
// (`store`, the one-tier fast path), that store instrumented by the metrics plugin as `dgent serve`
// does (`store+metrics`), and `dgent serve` itself (createServer, no change log). Server CPU µs
// per get for a fixed number of gets (keep-alive, autocannon), one fresh server at a time, rounds
// alternating in order; medians.
//
//   npm run build && node benchmarks/diagnose/serve-get-layers.mjs [--connections 64] [--requests 20000] [--rounds 3] [--kinds raw,dgent]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { rawServeDb } from "./serve-raw-db.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const PRELOAD = 2000;
const bytes = Buffer.from("x".repeat(1024));
const KINDS = arg("kinds", "raw,store,store+metrics,dgent").split(",");

if (process.argv[2] === "--child") {
  const [kind, dir] = process.argv.slice(3);
  const Fastify = (await import("fastify")).default;
  let app;
  const datum = (i) => ({ id: `pre/${i}`, content: new Uint8Array(bytes), createdAt: 1_700_000_000_000, causalParent: null, metadata: { role: "agent" } });
  if (kind === "dgent") {
    const { createStore } = await import("dgent");
    const { sqliteAdapter } = await import("dgent/adapters/sqlite");
    const { createServer } = await import("dgent/server");
    const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "d.db") })], namespace: "bench" });
    for (let i = 0; i < PRELOAD; i++) await store.put(datum(i));
    const server = await createServer(store, { auth: null, changeLog: false });
    app = server.app;
    await server.listen({ port: 0 });
  } else {
    // raw+timeouts: the raw route on a Fastify built with dgent serve's request timeout (30 s, which
    // Node checks every 7.5 s); Fastify's default is none.
    const timeouts = kind === "raw+timeouts" ? { requestTimeout: 30_000, http: { requestTimeout: 30_000, connectionsCheckingInterval: 7_500 } } : {};
    app = Fastify({ routerOptions: { maxParamLength: 8192 }, ...timeouts });
    if (kind === "raw" || kind === "raw+timeouts") {
      const { db, insert } = await rawServeDb(dir);
      for (let i = 0; i < PRELOAD; i++) insert.run(`pre/${i}`, bytes, 1_700_000_000_000, null, JSON.stringify({ role: "agent" }));
      const select = db.prepare("SELECT id, content, created_at, causal_parent, metadata FROM data WHERE id = ?");
      app.get("/v1/ns/:ns/datums/:id", async (req, reply) => {
        const row = select.get(req.params.id);
        if (!row) return reply.code(404).send({ error: { code: "DGENT_NOT_FOUND" } });
        return { id: row.id, content: row.content.toString("base64"), createdAt: row.created_at, causalParent: row.causal_parent, metadata: JSON.parse(row.metadata) };
      });
    } else {
      const { createStore } = await import("dgent");
      const { sqliteAdapter } = await import("dgent/adapters/sqlite");
      const { metricsOf } = await import("dgent/plugins/metrics");
      const { toWire } = await import("../../dist/server/wire.js");
      const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "s.db") })], namespace: "bench" });
      for (let i = 0; i < PRELOAD; i++) await store.put(datum(i));
      if (kind === "store+metrics") await metricsOf(store);
      app.get("/v1/ns/:ns/datums/:id", async (req, reply) => {
        const d = await store.get(req.params.id);
        if (d === null) return reply.code(404).send({ error: { code: "DGENT_NOT_FOUND" } });
        return toWire(d);
      });
    }
    await app.listen({ port: 0, host: "127.0.0.1" });
  }
  process.on("message", () => process.send({ cpu: process.cpuUsage() }));
  process.send({ port: app.server.address().port });
  await new Promise(() => undefined);
}

const CONNECTIONS = Number(arg("connections", 64));
const REQUESTS = Number(arg("requests", 20000));
const ROUNDS = Number(arg("rounds", 3));
const cpu = (child) => new Promise((resolve) => { child.once("message", (m) => resolve(m.cpu)); child.send("cpu"); });

async function run(kind) {
  const dir = mkdtempSync(join(tmpdir(), "dgent-get-layers-"));
  const child = fork(new URL(import.meta.url).pathname, ["--child", kind, dir], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise((resolve) => child.once("message", (m) => resolve(m.port)));
  try {
    let n = 0;
    const fire = (amount) =>
      new Promise((resolve, reject) => {
        const requests = [{ method: "GET", setupRequest: (r) => ({ ...r, path: `/v1/ns/bench/datums/pre%2F${n++ % PRELOAD}` }) }];
        autocannon({ url: `http://127.0.0.1:${port}`, connections: CONNECTIONS, amount, requests }, (error, result) => (error ? reject(error) : result.non2xx || result.errors ? reject(new Error(`${kind}: ${result.non2xx} non-2xx, ${result.errors} errors`)) : resolve(result)));
      });
    await fire(Math.min(5000, REQUESTS / 2)); // JIT and caches, not measured
    const before = await cpu(child);
    const result = await fire(REQUESTS);
    const after = await cpu(child);
    return { cpuUs: (after.user + after.system - before.user - before.system) / REQUESTS, rps: result.requests.average };
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}; ${REQUESTS} gets per run, ${CONNECTIONS} connection(s)`);
const got = Object.fromEntries(KINDS.map((k) => [k, []]));
for (let round = 0; round < ROUNDS; round++) for (const kind of round % 2 ? [...KINDS].reverse() : KINDS) got[kind].push(await run(kind));
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const raw = median(got[KINDS[0]].map((r) => r.cpuUs));
for (const kind of KINDS) {
  const cpus = got[kind].map((r) => r.cpuUs);
  console.log(`${kind.padEnd(14)} ${median(cpus).toFixed(1).padStart(7)} µs CPU/get (median; all ${cpus.map((x) => x.toFixed(0)).join(", ")})  ${(median(cpus) - raw >= 0 ? "+" : "")}${(median(cpus) - raw).toFixed(1)} over ${KINDS[0]}; req/s ${got[kind].map((r) => r.rps.toFixed(0)).join(", ")}`);
}
