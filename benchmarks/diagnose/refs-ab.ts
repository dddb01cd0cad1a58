/**
 * Diagnosis: the refs part (tiers/refs.ts) of two builds of dgent in the same rounds, next to the
 * same raw baseline — so a change to refs is measured against the code before it under the same
 * load, not against figures of another run.
 *
 *   npm run build && npx vite-node benchmarks/diagnose/refs-ab.ts -- --before /path/to/older/dist [--after dist] [--tier sqlite,postgres] [--repeat 3]
 *
 * `--before` and `--after` are the `dist/` folders of two builds (`npx tsc -p tsconfig.json` in a
 * checkout of the older commit). Each repeat makes fresh stores: `after`, the bare raw baseline
 * and `before`, sampled interleaved (compare-and-set and the 3-op transaction, as in the full
 * run); on Postgres also 16 concurrent compare-and-set callers, the three in alternating rounds.
 * Prints each repeat's p50s and ratios (÷ the bare raw UPDATE), then their medians.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Ref } from "../../core/refs.js";
import type { Store } from "../../core/store.js";
import { FULL } from "../profile.js";
import { sharedPostgres } from "../servers.js";
import { makePrefill } from "../workload.js";
import { dropSchema, rawPgForRefs } from "../tiers/postgres.js";
import { dgentRefOps, measureConcurrentCas, measureRefs, type RefOps } from "../tiers/refs.js";
import { rawSqliteContender } from "../tiers/sqlite.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: { tier: { type: "string", default: "sqlite,postgres" }, repeat: { type: "string", default: "3" }, before: { type: "string" }, after: { type: "string", default: "dist" } },
});
if (values.before === undefined) throw new Error("--before: the dist/ folder of the older build");
const tiers = (values.tier as string).split(",");
const repeat = Number(values.repeat);

interface Build {
  createStore(options: unknown): Store;
  sqliteAdapter(options: unknown): unknown;
  postgresAdapter(options: unknown): unknown;
}
async function load(dist: string): Promise<Build> {
  const url = (p: string) => pathToFileURL(join(resolve(dist), p)).href;
  const core = (await import(url("core/index.js"))) as { createStore: Build["createStore"] };
  const sqlite = (await import(url("adapters/sqlite/index.js"))) as { sqliteAdapter: Build["sqliteAdapter"] };
  const postgres = (await import(url("adapters/postgres/index.js"))) as { postgresAdapter: Build["postgresAdapter"] };
  return { createStore: core.createStore, sqliteAdapter: sqlite.sqliteAdapter, postgresAdapter: postgres.postgresAdapter };
}
const builds = { after: await load(values.after as string), before: await load(values.before) };

const dir = mkdtempSync(join(tmpdir(), "dgent-refs-ab-"));
const postgres = sharedPostgres(process.env);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (x: number) => x.toFixed(2);
const CALLERS = 16;

try {
  for (const tier of tiers) {
    if (tier !== "sqlite" && tier !== "postgres") throw new Error(`--tier: sqlite or postgres, got ${tier}`);
    const figures = new Map<string, number[]>();
    const note = (key: string, value: number) => figures.set(key, [...(figures.get(key) ?? []), value]);
    for (let r = 0; r < repeat; r++) {
      const prefill = makePrefill(100);
      const target = prefill.getIds[0] as string;
      const stores: Record<"after" | "before", Store> = {} as never;
      const cleanups: (() => Promise<void>)[] = [];
      let raw: RefOps;
      let rawConcurrent: ((caller: number) => Promise<unknown>) | null = null;
      const server = tier === "postgres" ? await postgres.get() : null;
      const tag = `${process.pid}_${r}`;
      for (const which of ["after", "before"] as const) {
        const b = builds[which];
        const base = join(dir, `${r}-${which}`);
        mkdirSync(base, { recursive: true });
        const namespace = `refs_ab_${which}_${tag}`;
        const adapter = server === null ? b.sqliteAdapter({ dataDir: base, namespace: "dgent" }) : b.postgresAdapter({ url: server.url, namespace });
        const store = b.createStore({ tiers: [adapter] });
        await store.putMany(prefill.datums);
        stores[which] = store;
        cleanups.push(async () => {
          await store.close();
          if (server !== null) await dropSchema(server.url, namespace);
        });
      }
      if (server === null) {
        const c = rawSqliteContender(join(dir, `${r}-raw.db`));
        await c.prefill(prefill.datums);
        raw = c.refs(target)[0] as RefOps;
        cleanups.push(async () => c.close());
      } else {
        const c = await rawPgForRefs(server.url, `refs_ab_raw_${tag}`, prefill.datums, target);
        raw = c.bare;
        rawConcurrent = c.concurrent;
        cleanups.push(c.close);
      }
      try {
        const after = { ...(await dgentRefOps(stores.after, target)), name: "after" };
        const before = { ...(await dgentRefOps(stores.before, target)), name: "before" };
        const plan = FULL.plan(tier === "sqlite" ? "local" : "postgres", "put");
        const refs = await measureRefs([after, raw, before], plan);
        const line = [`${tier} #${r + 1} (load ${loadavg()[0]?.toFixed(1)})`];
        for (const op of ["cas", "tx3"] as const) {
          const s = refs[op].stats;
          const p50 = (n: string) => (s[n] as { p50: number }).p50;
          line.push(`  ${op}: p50 raw ${p50(raw.name).toFixed(1)} µs, before ${p50("before").toFixed(1)} (${fmt(p50("before") / p50(raw.name))}×), after ${p50("after").toFixed(1)} (${fmt(p50("after") / p50(raw.name))}×)`);
          note(`${op} before ÷ raw`, p50("before") / p50(raw.name));
          note(`${op} after ÷ raw`, p50("after") / p50(raw.name));
        }
        if (rawConcurrent !== null) {
          const contender = (name: "after" | "before") => {
            const versions = new Map<number, Ref>();
            return {
              name,
              init: async () => {
                for (let i = 0; i < CALLERS; i++) versions.set(i, await stores[name].refs.set(`bench/c/${i}`, target));
              },
              cas: async (caller: number) => {
                const ref = versions.get(caller) as Ref;
                versions.set(caller, await stores[name].refs.set(`bench/c/${caller}`, target, { expect: { version: ref.version } }));
              },
            };
          };
          const a = contender("after");
          const b = contender("before");
          await a.init();
          await b.init();
          const c = await measureConcurrentCas([a, { name: raw.name, cas: rawConcurrent }, b], CALLERS, plan.budgetMs, plan.rounds);
          const ops = c.opsPerSec as Record<string, number>;
          const rawOps = ops[raw.name] as number;
          line.push(`  ${CALLERS} callers: raw ${Math.round(rawOps)}/s, before ${Math.round(ops.before as number)}/s (${fmt((ops.before as number) / rawOps)}× raw), after ${Math.round(ops.after as number)}/s (${fmt((ops.after as number) / rawOps)}× raw)`);
          note("16 callers before ÷ raw (throughput)", (ops.before as number) / rawOps);
          note("16 callers after ÷ raw (throughput)", (ops.after as number) / rawOps);
        }
        console.log(line.join("\n"));
      } finally {
        for (const c of cleanups) await c();
      }
    }
    console.log(`${tier}, medians of ${repeat}:\n${[...figures].map(([k, v]) => `  ${k} ${fmt(median(v))} (${v.map(fmt).join(", ")})`).join("\n")}`);
  }
} finally {
  await new Promise((resolve) => setTimeout(resolve, 500));
  await postgres.close();
  rmSync(dir, { recursive: true, force: true });
}
