// The server's CPU time per put request — dgent serve against the raw Fastify + better-sqlite3
// routes of serve.mjs — for a fixed number of requests (autocannon, 1 and 64 keep-alive
// connections). On a shared, loaded machine req/s mostly measures the load; CPU time per request
// measures the work. One server at a time, rounds alternating raw / raw-bare / dgent.
//
//   npm run build && node benchmarks/serve-cpu.mjs [--requests 4000] [--rounds 2]
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REQUESTS = arg("requests", 4000);
const ROUNDS = arg("rounds", 2);
const content = Buffer.from("x".repeat(1024)).toString("base64");
const body = (id) => JSON.stringify({ id, content, createdAt: 1_700_000_000_000, causalParent: null, metadata: { role: "agent" } });
const SERVE = new URL("./serve.mjs", import.meta.url).pathname;

function start(kind, dir) {
  const child = fork(SERVE, ["--child", kind, dir], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve) => child.once("message", (m) => resolve({ child, url: `http://127.0.0.1:${m.port}` })));
}
const cpu = (child) => new Promise((resolve) => { child.once("message", (m) => resolve(m.cpu)); child.send("cpu"); });

async function run(kind, connections, round) {
  const dir = mkdtempSync(join(tmpdir(), "dgent-serve-cpu-"));
  const { child, url } = await start(kind, dir);
  try {
    let n = 0;
    const fire = (amount, prefix) =>
      new Promise((resolve, reject) => {
        const requests = [{ method: "POST", headers: { "content-type": "application/json" }, setupRequest: (r) => ({ ...r, path: "/v1/ns/bench/datums", body: body(`${prefix}/${n++}`) }) }];
        autocannon({ url, connections, amount, requests }, (error, result) => (error ? reject(error) : result.non2xx || result.errors ? reject(new Error(`${kind}: ${result.non2xx} non-2xx, ${result.errors} errors`)) : resolve(result)));
      });
    await fire(500, "warm"); // JIT and caches, not measured
    const before = await cpu(child);
    const result = await fire(REQUESTS, `r${round}`);
    const after = await cpu(child);
    return { kind, connections, round, rps: Math.round(result.requests.average), cpuUs: +((after.user + after.system - before.user - before.system) / REQUESTS).toFixed(1) };
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}; ${REQUESTS} puts per run`);
for (let round = 0; round < ROUNDS; round++) {
  for (const connections of [1, 64]) {
    for (const kind of ["raw", "raw-bare", "dgent", "dgent-changes"]) {
      const r = await run(kind, connections, round);
      rows.push(r);
      console.log(`${kind.padEnd(14)} x${String(connections).padEnd(3)} ${String(r.cpuUs).padStart(7)} µs CPU/put  (${r.rps} req/s)`);
    }
  }
}
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(", ")}`);
const mean = (kind, c) => {
  const xs = rows.filter((r) => r.kind === kind && r.connections === c).map((r) => r.cpuUs);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
for (const c of [1, 64]) {
  for (const kind of ["raw-bare", "dgent", "dgent-changes"]) console.log(`x${c} ${kind}: raw CPU/put ÷ ${kind} CPU/put = ${(mean("raw", c) / mean(kind, c)).toFixed(2)}`);
}
