/**
 * Diagnosis: the client's CPU per Postgres compare-and-set (this process's `process.cpuUsage()`),
 * sequential and with 16 concurrent callers, for two builds of dgent and the raw `pg` pool of the
 * benchmark (the bare `UPDATE`, a pool of 4). With 16 callers on 2 cores, throughput is bound by
 * the CPU per call of client and server together; this says how much of it is the client's.
 *
 *   npm run build && npx vite-node benchmarks/diagnose/refs-client-pg.ts -- --before /path/to/older/dist [--after dist] [--calls 300] [--rounds 15] [--ms 500]
 *
 * Each round runs, per contender (the order rotating), `calls` sequential compare-and-sets, then
 * 16 callers for `ms`, each moving its own ref. Prints the medians over the rounds: the sequential
 * p50 and CPU per call, the 16 callers' throughput and CPU per call. Postgres: as in the full run
 * (DGENT_BENCH_POSTGRES_URL, else the test harness's throwaway cluster).
 */
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import type { Ref } from "../../core/refs.js";
import type { Store } from "../../core/store.js";
import { sharedPostgres } from "../servers.js";
import { dropSchema } from "../tiers/postgres.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    before: { type: "string" },
    after: { type: "string", default: "dist" },
    calls: { type: "string", default: "300" },
    rounds: { type: "string", default: "15" },
    ms: { type: "string", default: "500" },
  },
});
if (values.before === undefined) throw new Error("--before: the dist/ folder of the older build");
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const ms = Number(values.ms);
const CALLERS = 16;
const NAMES = ["seq", ...Array.from({ length: CALLERS }, (_, i) => `c/${i}`)];

interface Contender {
  readonly name: string;
  move(ref: string): Promise<unknown>;
  close(): Promise<void>;
}

const postgres = sharedPostgres(process.env);
const server = await postgres.get();
const tag = String(process.pid);

async function raw(): Promise<Contender> {
  const schema = `refs_client_raw_${tag}`;
  const pool = new pg.Pool({ connectionString: server.url, max: 4 });
  const r = `${pg.escapeIdentifier(schema)}.refs`;
  await pool.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
  await pool.query(`CREATE TABLE ${r} (name TEXT COLLATE "C" PRIMARY KEY, target TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL, updated_at DOUBLE PRECISION NOT NULL) WITH (fillfactor = 70)`);
  const target = "target";
  const versions = new Map<string, number>();
  for (const name of NAMES) {
    await pool.query(`INSERT INTO ${r} VALUES ($1, $2, 1, 0)`, [name, target]);
    versions.set(name, 1);
  }
  const cas = { name: `${schema}_cas`, text: `UPDATE ${r} SET target = $1, version = version + 1, updated_at = $2 WHERE name = $3 AND version = $4` };
  return {
    name: "raw pg",
    move: async (name) => {
      const v = versions.get(name) as number;
      const done = await pool.query({ ...cas, values: [target, Date.now(), name, v] });
      if (done.rowCount !== 1) throw new Error(`${name}: compare-and-set failed`);
      versions.set(name, v + 1);
    },
    close: async () => {
      await pool.end();
      await dropSchema(server.url, schema);
    },
  };
}

async function dgent(name: string, dist: string): Promise<Contender> {
  const url = (p: string) => pathToFileURL(join(resolve(dist), p)).href;
  const { createStore, makeDatum } = (await import(url("core/index.js"))) as { createStore(o: unknown): Store; makeDatum(o: unknown): { id: string } };
  const { postgresAdapter } = (await import(url("adapters/postgres/index.js"))) as { postgresAdapter(o: unknown): unknown };
  const namespace = `refs_client_${name}_${tag}`;
  const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
  const d = makeDatum({ content: "target" });
  await store.put(d as never);
  const refs = new Map<string, Ref>();
  for (const ref of NAMES) refs.set(ref, await store.refs.set(ref, d.id));
  return {
    name,
    move: async (ref) => {
      refs.set(ref, await store.refs.set(ref, d.id, { expect: { version: (refs.get(ref) as Ref).version } }));
    },
    close: async () => {
      await store.close();
      await dropSchema(server.url, namespace);
    },
  };
}

const contenders: Contender[] = [];
try {
  contenders.push(await raw(), await dgent("before", values.before), await dgent("after", values.after as string));
  const figures = new Map<string, { p50: number[]; cpu: number[]; perSec: number[]; cpu16: number[] }>(contenders.map((c) => [c.name, { p50: [], cpu: [], perSec: [], cpu16: [] }]));
  for (const c of contenders) for (let i = 0; i < 300; i++) await c.move("seq");
  const sample = new Float64Array(calls);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length] as Contender;
      const f = figures.get(c.name) as NonNullable<ReturnType<typeof figures.get>>;
      let start = process.cpuUsage();
      for (let i = 0; i < calls; i++) {
        const t = process.hrtime.bigint();
        await c.move("seq");
        sample[i] = Number(process.hrtime.bigint() - t) / 1000;
      }
      let used = process.cpuUsage(start);
      f.cpu.push((used.user + used.system) / calls);
      f.p50.push([...sample].sort((a, b) => a - b)[calls >> 1] as number);
      let n = 0;
      const t0 = process.hrtime.bigint();
      const deadline = t0 + BigInt(ms * 1e6);
      start = process.cpuUsage();
      await Promise.all(
        Array.from({ length: CALLERS }, async (_, i) => {
          while (process.hrtime.bigint() < deadline) {
            await c.move(`c/${i}`);
            n++;
          }
        }),
      );
      used = process.cpuUsage(start);
      f.perSec.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
      f.cpu16.push((used.user + used.system) / n);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
  console.log(`load ${loadavg().map((x) => x.toFixed(1)).join(" ")}; ${rounds} rounds of ${calls} sequential calls and ${ms} ms of ${CALLERS} callers; medians:`);
  for (const [name, f] of figures) {
    console.log(
      `  ${name.padEnd(7)} sequential p50 ${median(f.p50).toFixed(1)} µs, client CPU ${median(f.cpu).toFixed(1)} µs per call | ${CALLERS} callers ${Math.round(median(f.perSec))}/s, client CPU ${median(f.cpu16).toFixed(1)} µs per call`,
    );
  }
} finally {
  for (const c of contenders) await c.close();
  await new Promise((resolve) => setTimeout(resolve, 500));
  await postgres.close();
}
