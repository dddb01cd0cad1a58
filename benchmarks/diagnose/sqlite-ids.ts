/**
 * Diagnosis: where an ids page (`store.query({ where: { topic }, limit: 100, select: "ids" })`)
 * spends its time on SQLite, layer by layer, against the raw baseline's statement on the same
 * file: raw better-sqlite3 (pluck, and `[id, created_at]` rows), `adapter.queryIds`,
 * `adapter.query` with `"ids"`, `store.query`. Builds one store of `--n` datums (default 100,000)
 * in a temporary directory.
 *
 *   npx vite-node benchmarks/diagnose/sqlite-ids.ts -- [--n 100000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { resolveQuery } from "../../core/query.js";
import { createStore } from "../../core/store.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { compare } from "../measure.js";
import { rawSqliteQueries } from "../tiers/queries-raw.js";
import { QUERY_TAG, QUERY_VALUES, cycling, queryDatum } from "../workload.js";

const at = process.argv.indexOf("--n");
const n = at >= 0 ? Number(process.argv[at + 1]) : 100_000;
const dir = mkdtempSync(join(tmpdir(), "sqids-"));
const adapter = sqliteAdapter({ dataDir: dir, namespace: "q" });
const store = createStore({ tiers: [adapter] });
try {
  await store.open();
  const t0 = Date.now() - n;
  for (let s = 0; s < n; s += 5000) await store.putMany(Array.from({ length: Math.min(5000, n - s) }, (_, k) => queryDatum(s + k, null, t0 + s + k)));
  const raw = rawSqliteQueries(join(dir, "q.db"));
  const db = new Database(join(dir, "q.db"), { readonly: true });
  const rows = db.prepare(`SELECT id, created_at FROM tags WHERE key = '${QUERY_TAG}' AND value = ? ORDER BY created_at DESC, id DESC LIMIT ?`).raw(true);
  const last = db.prepare(`SELECT (SELECT 1 FROM tags WHERE key = 'dgent.expiresAt' LIMIT 1), (SELECT created_at FROM data WHERE id = ?)`).raw(true);
  const idsThenLast = (v: string) => {
    const page = raw.ids(v, 100) as string[];
    return [page, last.get(page.at(-1) ?? "")];
  };
  const inTxn = db.transaction(idsThenLast);
  // The last id's created_at read again from the page's own index range (hot): no seek into data.
  const lastByOffset = db.prepare(`SELECT (SELECT 1 FROM tags WHERE key = 'dgent.expiresAt' LIMIT 1), (SELECT created_at FROM tags WHERE key = '${QUERY_TAG}' AND value = ? ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?)`).raw(true);
  const byOffset = db.transaction((v: string) => {
    const page = raw.ids(v, 100) as string[];
    return [page, lastByOffset.get(v, page.length - 1)];
  });
  const pageOf = `SELECT id, created_at FROM tags WHERE key = '${QUERY_TAG}' AND value = ? ORDER BY created_at DESC, id DESC LIMIT ?`;
  const probe = `(SELECT 1 FROM tags WHERE key = 'dgent.expiresAt' LIMIT 1)`;
  const agg = db.prepare(`SELECT json_group_array(k.id), min(k.created_at), ${probe} FROM (${pageOf}) AS k`).raw(true);
  const aggOrdered = db.prepare(`SELECT json_group_array(k.id ORDER BY k.created_at DESC, k.id DESC), min(k.created_at), ${probe} FROM (${pageOf}) AS k`).raw(true);
  const parsed = (row: unknown) => {
    const r = row as [string, number, number | null];
    return [JSON.parse(r[0]) as string[], r[1], r[2]];
  };
  console.log(JSON.stringify(parsed(agg.get(QUERY_VALUES[0], 100))).slice(0, 120), JSON.stringify(parsed(agg.get(QUERY_VALUES[0], 100))) === JSON.stringify(parsed(aggOrdered.get(QUERY_VALUES[0], 100))));
  const ids = (v: string) => resolveQuery({ where: { [QUERY_TAG]: v }, limit: 100, select: "ids" });
  const subject = (name: string, run: (v: string) => unknown) => ({ name, args: cycling(QUERY_VALUES), run: run as (v: unknown) => unknown });
  const stats = await compare(
    [
      subject("raw pluck ids", (v) => raw.ids(v, 100)),
      subject("raw [id, created_at] rows", (v) => rows.all(v, 100)),
      subject("raw ids + last's created_at", idsThenLast),
      subject("… in one read transaction", (v) => inTxn(v)),
      subject("… created_at by OFFSET, in txn", (v) => byOffset(v)),
      subject("json_group_array + min + probe", (v) => parsed(agg.get(v, 100))),
      subject("… ORDER BY in the aggregate", (v) => parsed(aggOrdered.get(v, 100))),
      subject("adapter.queryIds", (v) => adapter.queryIds(ids(v))),
      subject("adapter.query ids", (v) => adapter.query(ids(v))),
      subject("store.query ids", (v) => store.query({ where: { [QUERY_TAG]: v }, limit: 100, select: "ids" })),
    ],
    { budgetMs: 700, warmupMs: 150, minWarmup: 200, minSamples: 30, maxSamples: 20_000, rounds: Number(process.env.ROUNDS ?? 4) },
    () => undefined,
  );
  for (const [name, s] of stats) console.log(`${name.padEnd(28)} p50 ${s.p50.toFixed(1)} µs  p95 ${s.p95.toFixed(1)} µs`);
  db.close();
  await raw.close();
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
