/**
 * Diagnosis: the JavaScript pieces of an ids page that do not touch a database — validating the
 * query (`resolveQuery`), building the SQLite and Postgres statements, encoding the cursor.
 *
 *   npx vite-node benchmarks/diagnose/ids-pieces.ts
 */
import { encodeCursor, resolveQuery } from "../../core/query.js";
import { idBounds, idsSql } from "../../adapters/sqlite/query-sql.js";
import { idsSql as pgIdsSql } from "../../adapters/postgres/queries.js";
import { identifiers } from "../../adapters/postgres/sql.js";
import { compare } from "../measure.js";
import { QUERY_TAG, QUERY_VALUES, cycling } from "../workload.js";

const pg = identifiers("q", "data");
const opts = (v: string) => ({ where: { [QUERY_TAG]: v }, limit: 100, select: "ids" as const });
const subject = (name: string, run: (v: string) => unknown) => ({ name, args: cycling(QUERY_VALUES), run: run as (v: unknown) => unknown });
const stats = await compare(
  [
    subject("resolveQuery", (v) => resolveQuery(opts(v))),
    subject("encodeCursor", (v) => encodeCursor(resolveQuery(opts(v)), { createdAt: 1_764_000_000_000, id: `d-${v}-0000123` })),
    subject("sqlite idsSql", (v) => {
      const q = resolveQuery(opts(v));
      return idsSql(q, idBounds(q) as never, { kind: "tag", tag: 0 });
    }),
    subject("postgres idsSql", (v) => pgIdsSql(pg, resolveQuery(opts(v)))),
  ],
  { budgetMs: 500, warmupMs: 150, minWarmup: 200, minSamples: 30, maxSamples: 20_000, rounds: 4 },
  () => undefined,
);
for (const [name, s] of stats) console.log(`${name.padEnd(28)} p50 ${s.p50.toFixed(2)} µs  p95 ${s.p95.toFixed(2)} µs`);
