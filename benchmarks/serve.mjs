// dgent serve against a minimal Fastify route doing the same raw better-sqlite3 work, each in a
// child process of its own, driven by autocannon with 1 and 64 keep-alive connections: get and
// put of ~1 KiB datums as JSON (content in base64), throughput ratio dgent / raw (goal ≥ 0.8).
// Also: SSE fan-out to 100 clients (delivery latency p50/p99 from the put being sent to each
// client's event) and the server's idle memory.
//
// Each case alternates the servers over several rounds (raw, dgent, raw, dgent, …, raw): every
// dgent run is compared with the mean of the raw runs just before and after it, and the figure is
// the median of those round ratios, so load on the shared machine drifting during a case weighs on
// both sides alike and one disturbed run does not decide it.
//
//   npm run build && node benchmarks/serve.mjs [--seconds 3] [--rounds 3]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const SECONDS = Number(arg("seconds", 3));
const ROUNDS = Number(arg("rounds", 3));
const PRELOAD = 2000;
const content = Buffer.from("x".repeat(1024)).toString("base64");
const body = (id) => JSON.stringify({ id, content, createdAt: 1_700_000_000_000, causalParent: null, metadata: { role: "agent" } });

// ---- the servers (child mode) ----
if (process.argv[2] === "--child") {
  const [kind, dir] = process.argv.slice(3);
  const Fastify = (await import("fastify")).default;
  let app;
  if (kind === "raw" || kind === "raw-bare") {
    // raw: the same SQLite work as dgent's SQLite tier — its schema (the data table with its time
    // and children indexes, the tags table its triggers keep for tag queries), its pragmas (WAL,
    // synchronous = NORMAL: no fsync per commit on either side, mmap) and its INSERT. raw-bare:
    // the earlier baseline, one table with a primary key only (less work than a store does).
    const Database = (await import("better-sqlite3")).default;
    const db = new Database(join(dir, `${kind}.db`));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    let insert, select;
    if (kind === "raw") {
      const { MIGRATIONS } = await import("dgent/adapters/sqlite");
      db.pragma(`mmap_size = ${2 ** 31}`);
      for (const m of MIGRATIONS) db.exec(m.up);
      insert = db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
      select = db.prepare("SELECT id, content, created_at, causal_parent, metadata FROM data WHERE id = ?");
    } else {
      db.exec("CREATE TABLE IF NOT EXISTS datums (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at INTEGER NOT NULL, causal_parent TEXT, metadata TEXT NOT NULL)");
      insert = db.prepare("INSERT OR IGNORE INTO datums VALUES (?, ?, ?, ?, ?)");
      select = db.prepare("SELECT id, content, created_at, causal_parent, metadata FROM datums WHERE id = ?");
    }
    app = Fastify({ routerOptions: { maxParamLength: 8192 } });
    app.post("/v1/ns/:ns/datums", async (req) => {
      const d = req.body;
      insert.run(d.id, Buffer.from(d.content, "base64"), d.createdAt, d.causalParent, JSON.stringify(d.metadata));
      return { id: d.id };
    });
    app.get("/v1/ns/:ns/datums/:id", async (req, reply) => {
      const row = select.get(req.params.id);
      if (!row) return reply.code(404).send({ error: { code: "DGENT_NOT_FOUND" } });
      return { id: row.id, content: row.content.toString("base64"), createdAt: row.created_at, causalParent: row.causal_parent, metadata: JSON.parse(row.metadata) };
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
  } else {
    const { createStore } = await import("dgent");
    const { sqliteAdapter } = await import("dgent/adapters/sqlite");
    const { createServer } = await import("dgent/server");
    const store = createStore({ tiers: [sqliteAdapter({ path: join(dir, `${kind}.db`) })], namespace: "bench" });
    // dgent-changes: the change stream on, as `dgent serve` runs it (a SQLite store streams from
    // the file's change table, which its triggers fill inside each write's transaction).
    const server = await createServer(store, { auth: null, ...(kind === "dgent-changes" ? {} : { changeLog: false }), maxQueue: 100_000 });
    app = server.app;
    await server.listen({ port: 0 });
  }
  process.on("message", (m) => {
    if (m === "memory") process.send({ memory: process.memoryUsage() });
    if (m === "cpu") process.send({ cpu: process.cpuUsage() });
  });
  process.send({ port: app.server.address().port });
  await new Promise(() => undefined);
}

// ---- the driver ----
function start(kind, dir) {
  const child = fork(new URL(import.meta.url).pathname, ["--child", kind, dir], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve) => child.once("message", (m) => resolve({ child, url: `http://127.0.0.1:${m.port}` })));
}
const ask = (child, what = "memory") => new Promise((resolve) => { child.once("message", (m) => resolve(m[what])); child.send(what); });

async function post(url, id) {
  const res = await fetch(`${url}/v1/ns/bench/datums`, { method: "POST", headers: { "content-type": "application/json" }, body: body(id) });
  if (res.status !== 200) throw new Error(`put ${id}: ${res.status} ${await res.text()}`);
}

function cannon(url, op, connections, prefix, seconds = SECONDS) {
  let n = 0;
  const requests = op === "get"
    ? [{ method: "GET", setupRequest: (r) => ({ ...r, path: `/v1/ns/bench/datums/pre%2F${n++ % PRELOAD}` }) }]
    : [{ method: "POST", headers: { "content-type": "application/json" }, setupRequest: (r) => ({ ...r, path: "/v1/ns/bench/datums", body: body(`${prefix}/${n++}`) }) }];
  return new Promise((resolve, reject) => {
    autocannon({ url, connections, duration: seconds, requests }, (error, result) => {
      if (error) reject(error);
      else if (result.non2xx > 0 || result.errors > 0) reject(new Error(`${op}: ${result.non2xx} non-2xx, ${result.errors} errors`));
      else resolve({ rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, total: result.requests.total });
    });
  });
}

function sseClient(url, onEvent) {
  return new Promise((resolve) => {
    const req = request(`${url}/v1/ns/bench/changes`, (res) => {
      res.setEncoding("utf8");
      let buf = "";
      res.on("data", (chunk) => {
        buf += chunk;
        let at;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const data = block.split("\n").find((l) => l.startsWith("data: "));
          if (data) onEvent(JSON.parse(data.slice(6)));
        }
      });
      resolve(req);
    });
    req.end();
  });
}

async function fanOut(url, clients = 100, events = 200) {
  const sentAt = new Map();
  const latencies = [];
  let pending = 0;
  let wake = null;
  const reqs = [];
  for (let i = 0; i < clients; i++) {
    reqs.push(await sseClient(url, (change) => {
      const t = sentAt.get(change.key);
      if (t !== undefined) latencies.push(performance.now() - t);
      if (--pending === 0) wake?.();
    }));
  }
  for (let i = 0; i < events; i++) {
    const id = `fan/${i}`;
    pending += clients;
    const done = new Promise((resolve) => (wake = resolve));
    sentAt.set(id, performance.now());
    await post(url, id);
    await done;
  }
  for (const r of reqs) r.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { clients, events, deliveries: latencies.length, p50Ms: +q(0.5).toFixed(2), p99Ms: +q(0.99).toFixed(2), maxMs: +latencies.at(-1).toFixed(2) };
}

const dir = mkdtempSync(join(tmpdir(), "dgent-serve-bench-"));
const results = { date: new Date().toISOString(), load: (await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(", "), node: process.version, seconds: SECONDS, rounds: ROUNDS, datumBytes: 1024, runs: [], ratios: [], summary: [] };
const KINDS = ["raw", "raw-bare", "dgent", "dgent-changes"];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
try {
  // All servers up at once; each case runs ROUNDS rounds of (raw, raw-bare, dgent, dgent-changes)
  // — get: (raw, dgent) — and a last raw, each run after 1 s of unmeasured warm-up.
  const servers = {};
  for (const kind of KINDS) {
    servers[kind] = await start(kind, dir);
    const idle = await ask(servers[kind].child);
    results[`${kind}IdleMemory`] = { rssMiB: +(idle.rss / 2 ** 20).toFixed(1), heapUsedMiB: +(idle.heapUsed / 2 ** 20).toFixed(1) };
    for (let i = 0; i < PRELOAD; i++) await post(servers[kind].url, `pre/${i}`);
  }
  for (const connections of [1, 64]) {
    for (const op of ["get", "put"]) {
      const round = op === "get" ? ["raw", "dgent"] : ["raw", "raw-bare", "dgent", "dgent-changes"];
      const order = [...Array.from({ length: ROUNDS }, () => round).flat(), "raw"];
      const load = (await import("node:os")).loadavg()[0];
      const got = [];
      for (const [i, kind] of order.entries()) {
        await cannon(servers[kind].url, op, connections, `warm-${op}-${connections}-${i}`, 1); // not measured: JIT, caches
        const before = await ask(servers[kind].child, "cpu");
        const r = await cannon(servers[kind].url, op, connections, `${op}-${connections}-${i}`);
        const after = await ask(servers[kind].child, "cpu");
        // The server's CPU time per request (user + system): what the work costs, whatever else
        // the machine runs meanwhile (req/s on a shared, loaded machine is mostly the load).
        const cpuUs = +((after.user + after.system - before.user - before.system) / r.total).toFixed(1);
        got.push({ server: kind, op, connections, round: Math.floor(i / round.length), ...r, cpuUs });
        console.error(`${kind.padEnd(14)} ${op} x${String(connections).padEnd(3)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  ${cpuUs} µs CPU/req`);
      }
      results.runs.push(...got);
      // Each run against the mean of the raw runs just before and after it.
      for (const [i, r] of got.entries()) {
        if (r.server === "raw") continue;
        const before = got.slice(0, i).reverse().find((x) => x.server === "raw");
        const after = got.slice(i + 1).find((x) => x.server === "raw");
        const rps = (before.rps + after.rps) / 2;
        const cpu = (before.cpuUs + after.cpuUs) / 2;
        results.ratios.push({ server: r.server, op, connections, round: r.round, ratio: +(r.rps / rps).toFixed(3), cpuRatio: +(cpu / r.cpuUs).toFixed(3) });
      }
      for (const server of round.slice(1)) {
        const mine = results.ratios.filter((x) => x.server === server && x.op === op && x.connections === connections);
        results.summary.push({ server, op, connections, load: +load.toFixed(1), ratio: +median(mine.map((x) => x.ratio)).toFixed(3), min: Math.min(...mine.map((x) => x.ratio)), cpuRatio: +median(mine.map((x) => x.cpuRatio)).toFixed(3) });
      }
    }
  }
  results.sseFanOut = await fanOut(servers["dgent-changes"].url);
  console.error(`sse fan-out: ${JSON.stringify(results.sseFanOut)}`);
  for (const kind of KINDS) servers[kind].child.kill();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const out = new URL("./results/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "serve.json"), `${JSON.stringify(results, null, 2)}\n`);
const md = [
  "# dgent serve vs a raw Fastify + better-sqlite3 route",
  "",
  `${results.date}, Node ${results.node}, ${SECONDS} s per run, ${ROUNDS} rounds per case, 1 KiB datums as JSON (base64 content); autocannon keep-alive connections. Command: \`npm run build && node benchmarks/serve.mjs --seconds ${SECONDS} --rounds ${ROUNDS}\`. Load average when it started: ${results.load} (2 shared cores).`,
  "`raw` does the SQLite work of dgent's SQLite tier (its schema, indexes, tag triggers, pragmas and INSERT; synchronous = NORMAL on both: no fsync per commit); `raw-bare` is the earlier baseline (one table, primary key only).",
  "`dgent` serves without a change stream (`changeLog: false`); `dgent-changes` with it, as `dgent serve` runs it (the SQLite file's change table, filled by triggers inside each write's transaction; no SSE client is subscribed while puts are measured). `raw` writes no change log.",
  "",
  "Each case alternates the servers: rounds of raw, (raw-bare,) dgent (, dgent-changes), then a last raw, each run after 1 s of unmeasured warm-up. Every run is compared with the mean of the raw runs just before and after it; the figures are the medians over the rounds (`lowest`: the lowest round). `vs raw` compares req/s; `CPU vs raw` compares the server's CPU time per request (raw's ÷ this one's): the throughput ratio a server that has the CPU to itself would reach.",
  "",
  "| server | op | connections | load (1 min) | vs raw (median) | lowest round | CPU vs raw (median) |",
  "|---|---|---|---|---|---|---|",
  ...results.summary.map((x) => `| ${x.server} | ${x.op} | ${x.connections} | ${x.load} | **${x.ratio}** | ${x.min} | ${x.cpuRatio} |`),
  "",
  "Every run:",
  "",
  "| server | op | connections | round | req/s | p50 ms | p99 ms | CPU µs/req | vs raw | CPU vs raw |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...results.runs.map((r) => {
    const x = r.server === "raw" ? null : results.ratios.find((y) => y.server === r.server && y.op === r.op && y.connections === r.connections && y.round === r.round);
    return `| ${r.server} | ${r.op} | ${r.connections} | ${r.round} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.cpuUs} | ${x ? x.ratio : "—"} | ${x ? x.cpuRatio : "—"} |`;
  }),
  "",
  `SSE fan-out: ${results.sseFanOut.clients} clients × ${results.sseFanOut.events} puts: delivery p50 ${results.sseFanOut.p50Ms} ms, p99 ${results.sseFanOut.p99Ms} ms, max ${results.sseFanOut.maxMs} ms (from sending the put to each client's event).`,
  "",
  `Idle memory after start: dgent ${results.dgentIdleMemory.rssMiB} MiB RSS (${results.dgentIdleMemory.heapUsedMiB} MiB heap), with change log ${results["dgent-changesIdleMemory"].rssMiB} MiB RSS; raw route ${results.rawIdleMemory.rssMiB} MiB RSS.`,
  "",
];
writeFileSync(join(out, "serve.md"), md.join("\n"));
console.log(md.join("\n"));
