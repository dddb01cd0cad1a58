// Where the CPU of a put over HTTP goes, layer by layer: the raw Fastify + better-sqlite3 route of
// serve.mjs (same schema and work as the SQLite tier), the same route calling a dgent store
// (`store`), that store instrumented by the metrics plugin as `dgent serve` does (`store+metrics`),
// and `dgent serve` itself (createServer, no change log). Server CPU µs per put for a fixed number
// of puts, one fresh server at a time, rounds alternating in order; medians.
//
//   npm run build && node benchmarks/diagnose/serve-put-layers.mjs [--connections 1] [--requests 4000] [--rounds 3]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { rawServeDb } from "./serve-raw-db.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const content = Buffer.from("x".repeat(1024)).toString("base64");
const body = (id) => JSON.stringify({ id, content, createdAt: 1_700_000_000_000, causalParent: null, metadata: { role: "agent" } });
const KINDS = ["raw", "store", "store+metrics", "dgent"];

if (process.argv[2] === "--child") {
  const [kind, dir] = process.argv.slice(3);
  const Fastify = (await import("fastify")).default;
  let app;
  if (kind === "dgent") {
    const { createStore } = await import("dgent");
    const { sqliteAdapter } = await import("dgent/adapters/sqlite");
    const { createServer } = await import("dgent/server");
    const server = await createServer(createStore({ tiers: [sqliteAdapter({ path: join(dir, "d.db") })], namespace: "bench" }), { auth: null, changeLog: false });
    app = server.app;
    await server.listen({ port: 0 });
  } else {
    app = Fastify({ routerOptions: { maxParamLength: 8192 } });
    if (kind === "raw") {
      const { insert } = await rawServeDb(dir);
      app.post("/v1/ns/:ns/datums", async (req) => {
        const d = req.body;
        insert.run(d.id, Buffer.from(d.content, "base64"), d.createdAt, d.causalParent, JSON.stringify(d.metadata));
        return { id: d.id };
      });
    } else {
      const { createStore } = await import("dgent");
      const { sqliteAdapter } = await import("dgent/adapters/sqlite");
      const { metricsOf } = await import("dgent/plugins/metrics");
      const { fromWire } = await import("../../dist/server/wire.js");
      const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, "s.db") })], namespace: "bench" });
      await store.open();
      if (kind === "store+metrics") await metricsOf(store);
      app.post("/v1/ns/:ns/datums", async (req) => ({ id: await store.put(fromWire(req.body)) }));
    }
    await app.listen({ port: 0, host: "127.0.0.1" });
  }
  process.on("message", (m) => process.send({ cpu: process.cpuUsage() }));
  process.send({ port: app.server.address().port });
  await new Promise(() => undefined);
}

const CONNECTIONS = arg("connections", 1);
const REQUESTS = arg("requests", 4000);
const ROUNDS = arg("rounds", 3);
const cpu = (child) => new Promise((resolve) => { child.once("message", (m) => resolve(m.cpu)); child.send("cpu"); });

async function run(kind, round) {
  const dir = mkdtempSync(join(tmpdir(), "dgent-layers-"));
  const child = fork(new URL(import.meta.url).pathname, ["--child", kind, dir], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise((resolve) => child.once("message", (m) => resolve(m.port)));
  try {
    let n = 0;
    const fire = (amount, prefix) =>
      new Promise((resolve, reject) => {
        const requests = [{ method: "POST", headers: { "content-type": "application/json" }, setupRequest: (r) => ({ ...r, path: "/v1/ns/bench/datums", body: body(`${prefix}/${n++}`) }) }];
        autocannon({ url: `http://127.0.0.1:${port}`, connections: CONNECTIONS, amount, requests }, (error, result) => (error ? reject(error) : result.non2xx || result.errors ? reject(new Error(`${kind}: ${result.non2xx} non-2xx, ${result.errors} errors`)) : resolve(result)));
      });
    await fire(500, "warm");
    const before = await cpu(child);
    await fire(REQUESTS, `r${round}`);
    const after = await cpu(child);
    return (after.user + after.system - before.user - before.system) / REQUESTS;
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}; ${REQUESTS} puts per run, ${CONNECTIONS} connection(s)`);
const got = Object.fromEntries(KINDS.map((k) => [k, []]));
for (let round = 0; round < ROUNDS; round++) for (const kind of round % 2 ? [...KINDS].reverse() : KINDS) got[kind].push(await run(kind, round));
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const raw = median(got.raw);
for (const kind of KINDS) console.log(`${kind.padEnd(14)} ${median(got[kind]).toFixed(1).padStart(7)} µs CPU/put (median; all ${got[kind].map((x) => x.toFixed(0)).join(", ")})  +${(median(got[kind]) - raw).toFixed(1)} over raw`);
