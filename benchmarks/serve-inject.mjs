// The HTTP layer alone: the put route of dgent serve (SQLite and memory tiers) against the raw
// Fastify + better-sqlite3 route, through Fastify's inject (no sockets), µs per put.
//
//   npm run build && node benchmarks/serve-inject.mjs
import { mkdtempSync } from "node:fs"; import { tmpdir } from "node:os"; import { join } from "node:path";
import Fastify from "fastify";
import Database from "better-sqlite3";
import { createStore } from "dgent";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { memoryAdapter } from "dgent/adapters/memory";
import { createServer } from "dgent/server";
const dir = mkdtempSync(join(tmpdir(), "inj-"));
const db = new Database(join(dir, "raw.db")); db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL");
db.exec("CREATE TABLE datums (id TEXT PRIMARY KEY, content BLOB NOT NULL, created_at INTEGER NOT NULL, causal_parent TEXT, metadata TEXT NOT NULL)");
const ins = db.prepare("INSERT OR IGNORE INTO datums VALUES (?, ?, ?, ?, ?)");
const raw = Fastify();
raw.post("/v1/ns/:ns/datums", async (req) => { const d = req.body; ins.run(d.id, Buffer.from(d.content, "base64"), d.createdAt, d.causalParent, JSON.stringify(d.metadata)); return { id: d.id }; });
await raw.ready();
const sq = createStore({ tiers: [sqliteAdapter({ path: join(dir, "d.db") })], namespace: "bench" });
const mem = createStore({ tiers: [memoryAdapter()], namespace: "bench" });
const s1 = await createServer(sq, { auth: null, changeLog: false }); await s1.app.ready();
const s2 = await createServer(mem, { auth: null, changeLog: false }); await s2.app.ready();
const content = Buffer.from("x".repeat(1024)).toString("base64");
const body = (id) => JSON.stringify({ id, content, createdAt: 1, causalParent: null, metadata: { role: "agent" } });
for (let round = 0; round < 3; round++) {
  const out = [];
  for (const [name, app] of [["raw", raw], ["dgent-sqlite", s1.app], ["dgent-memory", s2.app]]) {
    const t = performance.now();
    for (let i = 0; i < 2000; i++) {
      const r = await app.inject({ method: "POST", url: "/v1/ns/bench/datums", headers: { "content-type": "application/json" }, payload: body(`${round}/${i}`) });
      if (r.statusCode !== 200) throw new Error(r.body);
    }
    out.push(`${name} ${((performance.now() - t) / 2).toFixed(0)}µs`);
  }
  console.log(out.join("  "));
}
