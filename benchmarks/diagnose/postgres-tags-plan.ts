/**
 * Diagnosis: what a single put costs the server on a connection whose first insert was a batch,
 * with the tags triggers of migration 4 (`SELECT DISTINCT` over every datum's tags) and of
 * migration 7 (duplicates removed per datum). PL/pgSQL keeps the plan of the trigger's statement
 * made at its first run in the session, sized by that run's transition table; a batch of 1,000
 * left a hash aggregate sized for 100,000 rows that every later single put set up again.
 *
 * For each schema version, two connections: one whose first statement is a 1,000-datum batch,
 * one fresh; then rounds of 200 single puts on each in turn (the order rotating), the server CPU
 * of each connection's backend (/proc/<pid>/schedstat: the harness's cluster on this machine).
 *
 *   npx vite-node benchmarks/diagnose/postgres-tags-plan.ts
 */
import { readFileSync } from "node:fs";
import pg from "pg";
import type { Datum } from "../../core/datum.js";
import { migrate, MIGRATIONS } from "../../adapters/postgres/migrations.js";
import { identifiers, statements, BATCH_PARAMS } from "../../adapters/postgres/sql.js";
import { freshForPuts } from "../concurrency.js";
import { postgresServer } from "../servers.js";
import { makePrefill } from "../workload.js";

const server = await postgresServer(process.env);
const pool = new pg.Pool({ connectionString: server.url, max: 2 });
pool.on("error", () => undefined); // the cluster stops at the end
const cpuUs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1000;
const values = (d: Datum) => [d.id, Buffer.from(d.content), d.createdAt, d.causalParent, JSON.stringify(d.metadata)];

interface Conn {
  readonly label: string;
  readonly client: pg.Client;
  readonly pid: number;
  readonly put: { name: string; text: string };
  us: number;
  n: number;
}
const conns: Conn[] = [];
const versions = [["migration 4's trigger", 6], ["migration 7's trigger", MIGRATIONS.length]] as const;
// Every schema first: DDL run later could flush the connections' cached plans (a full reset of
// their caches when the invalidation queue overflows), which is what this measures.
for (const [, upTo] of versions) {
  const schema = `diag_tags_${upTo}`;
  const ids = identifiers(schema, "data");
  await pool.query(`DROP SCHEMA IF EXISTS ${ids.schema} CASCADE`);
  await migrate(pool, ids, "data", schema, "diag", MIGRATIONS.slice(0, upTo));
}
for (const [label, upTo] of versions) {
  const sql = statements(identifiers(`diag_tags_${upTo}`, "data"));
  for (const first of ["first a batch of 1,000", "fresh"]) {
    const client = new pg.Client(server.url);
    await client.connect();
    const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid as number;
    if (first !== "fresh") {
      const batch = makePrefill(1000).datums;
      await client.query({ ...sql.batch(1024, true), values: [...batch.flatMap(values), ...new Array((1024 - batch.length) * BATCH_PARAMS).fill(null)] });
    }
    conns.push({ label: `${label}, ${first}`, client, pid, put: sql.put, us: 0, n: 0 });
  }
}
for (const c of conns) for (const d of freshForPuts(20)) await c.client.query({ ...c.put, values: values(d) });
const rounds = Number(process.env.DIAG_ROUNDS ?? 10);
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < conns.length; k++) {
    const c = conns[(k + r) % conns.length] as Conn;
    const ds = freshForPuts(200);
    const t0 = cpuUs(c.pid);
    for (const d of ds) await c.client.query({ ...c.put, values: values(d) });
    c.us += cpuUs(c.pid) - t0;
    c.n += ds.length;
  }
}
const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(`server CPU per single put (notify off), ${rounds} × 200 puts per connection, load ${load}`);
for (const c of conns) console.log(`  ${c.label.padEnd(46)} ${(c.us / c.n).toFixed(1)} µs`);
for (const c of conns) await c.client.end();
for (const upTo of [6, MIGRATIONS.length]) await pool.query(`DROP SCHEMA IF EXISTS "diag_tags_${upTo}" CASCADE`);
await pool.end();
await server.close();
