/**
 * Diagnosis: only the refs part of `npm run bench` (tiers/refs.ts), on SQLite and Postgres: the
 * same contenders, plans and probes as the full run, without its prefill of 10 000 datums, reads
 * and writes — so the ratios can be measured several times in the time one full run takes.
 *
 *   npx vite-node benchmarks/diagnose/refs.ts -- [--tier sqlite,postgres] [--repeat 3]
 *
 * Each repeat sets the tier up afresh (a new file, a new schema) and runs its probe: compare-and-set
 * and the 3-op transaction, 4 interleaved rounds each; on Postgres also the round trips per call
 * and 16 concurrent callers. Prints every repeat's ratios, then their medians. Postgres: as in the
 * full run (DGENT_BENCH_POSTGRES_URL, else the test harness's throwaway cluster).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FULL } from "../profile.js";
import { sharedPostgres } from "../servers.js";
import { makePrefill } from "../workload.js";
import { postgresTier } from "../tiers/postgres.js";
import type { ConcurrentResult, RefCase } from "../tiers/refs.js";
import { sqliteTier } from "../tiers/sqlite.js";

const { values } = parseArgs({ args: process.argv.slice(2).filter((a) => a !== "--"), options: { tier: { type: "string", default: "sqlite,postgres" }, repeat: { type: "string", default: "3" } } });
const tiers = (values.tier as string).split(",");
const repeat = Number(values.repeat);
const dir = mkdtempSync(join(tmpdir(), "dgent-refs-bench-"));
const postgres = sharedPostgres(process.env);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (x: number) => x.toFixed(2);

try {
  for (const tier of tiers) {
    if (tier !== "sqlite" && tier !== "postgres") throw new Error(`--tier: sqlite or postgres, got ${tier}`);
    const figures = new Map<string, number[]>();
    const note = (key: string, value: number | undefined) => {
      if (value !== undefined) figures.set(key, [...(figures.get(key) ?? []), value]);
    };
    for (let r = 0; r < repeat; r++) {
      const setup = tier === "sqlite" ? await sqliteTier(join(dir, String(r)), false) : await postgresTier(postgres.get, false);
      try {
        const prefill = makePrefill(100);
        for (const c of setup.contenders) await c.prefill(prefill.datums);
        const kind = tier === "sqlite" ? "local" : "postgres";
        const probe = (await setup.probe?.({ get: prefill.getIds[0] as string, chain: prefill.chainEnds[0] as string }, (op) => FULL.plan(kind, op))) ?? {};
        const refs = probe.refs as { cas: RefCase; tx3: RefCase; concurrent?: ConcurrentResult };
        const p50s = (c: RefCase) => Object.entries(c.stats).map(([name, s]) => `${name} ${s.p50.toFixed(1)} µs`).join(", ");
        console.log(`${tier} #${r + 1} (load ${loadavg()[0]?.toFixed(1)}):`);
        console.log(`  cas  dgent ÷ bare raw ${fmt(refs.cas.ratioRaw)}${refs.cas.ratioLogged === undefined ? "" : `, ÷ raw + reflog row ${fmt(refs.cas.ratioLogged)} (the row costs the raw driver ${fmt(refs.cas.reflogCost as number)}×)`}; p50 ${p50s(refs.cas)}`);
        console.log(`  tx3  dgent ÷ raw ${fmt(refs.tx3.ratioRaw)}; p50 ${p50s(refs.tx3)}`);
        note("cas ÷ bare raw", refs.cas.ratioRaw);
        note("cas ÷ raw + reflog row", refs.cas.ratioLogged);
        note("reflog row, raw ÷ bare raw", refs.cas.reflogCost);
        note("tx3 ÷ raw", refs.tx3.ratioRaw);
        if (refs.concurrent) {
          console.log(`  16 callers  raw ÷ dgent ${fmt(refs.concurrent.rawOverDgent)} (${Object.entries(refs.concurrent.opsPerSec).map(([n, v]) => `${n} ${Math.round(v)}/s`).join(", ")})`);
          note("16 callers, raw ÷ dgent", refs.concurrent.rawOverDgent);
        }
        if (probe.roundTrips) console.log(`  round trips ${JSON.stringify(probe.roundTrips)}`);
      } finally {
        for (const c of setup.contenders) await c.close();
        await setup.dispose();
      }
    }
    console.log(`${tier}, medians of ${repeat}: ${[...figures].map(([k, v]) => `${k} ${fmt(median(v))}`).join("; ")}`);
  }
} finally {
  // Let the pools' clients finish closing before the cluster stops under them.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await postgres.close();
  rmSync(dir, { recursive: true, force: true });
}
