/**
 * Measures the native queries of the memory and JSONL tiers on the adapters directly, at two
 * store sizes, for the READMEs' tables:
 *
 *   npx vite-node adapters/shared-index/bench-queries.ts -- --sizes 10000,1000000 --tiers memory,jsonl
 *
 * Each store holds datums of 1 KiB with 3 tags (`topic`: 20 values, `role`: 3, `step`: unique),
 * in chains of 10. Per store: the fill, the first filtered query (which builds the `topic` index),
 * then the p50 of 2000 calls of each query after 50 warm-up calls; for JSONL also the reopen (replay).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeDatum, type Datum } from "../../core/datum.js";
import type { Adapter } from "../../core/protocol.js";
import { resolveQuery, unpaged, type QueryOptions } from "../../core/query.js";
import { jsonlAdapter } from "../jsonl/index.js";
import { memoryAdapter } from "../memory/index.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const SIZES = arg("sizes", "10000,1000000").split(",").map(Number);
const TIERS = arg("tiers", "memory,jsonl").split(",");
const CALLS = Number(arg("calls", "2000"));
const content = new Uint8Array(1024);

function p50(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function measure(label: string, fn: () => Promise<unknown>, calls = CALLS): Promise<void> {
  for (let i = 0; i < 50; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  console.log(`  ${label}: p50 ${p50(times).toFixed(1)} µs`);
}

async function fill(a: Adapter, n: number): Promise<void> {
  let parent: string | null = null;
  for (let i = 0; i < n; i += 5000) {
    const batch: Datum[] = [];
    for (let j = i; j < Math.min(n, i + 5000); j++) {
      const d = makeDatum({
        content,
        createdAt: 1_700_000_000_000 + j,
        causalParent: j % 10 === 0 ? null : parent,
        metadata: { topic: `t${j % 20}`, role: ["user", "agent", "tool"][j % 3] as string, step: String(j) },
      });
      parent = d.id;
      batch.push(d);
    }
    await a.putMany?.(batch);
  }
}

const page = (a: Adapter, options: QueryOptions) => () => (a.query as NonNullable<Adapter["query"]>).call(a, resolveQuery(options));

const dir = mkdtempSync(join(tmpdir(), "dgent-bench-queries-"));
try {
  for (const tier of TIERS) {
    for (const n of SIZES) {
      const path = join(dir, `${n}.jsonl`);
      const a: Adapter = tier === "memory" ? memoryAdapter() : jsonlAdapter({ path, durability: "none" });
      await a.open();
      const t0 = Date.now();
      await fill(a, n);
      console.log(`${tier}, ${n.toLocaleString("en")} datums: filled in ${Date.now() - t0} ms`);
      const t1 = process.hrtime.bigint();
      await page(a, { where: { topic: "t7" } })();
      console.log(`  first filtered query (builds the topic index): ${(Number(process.hrtime.bigint() - t1) / 1e6).toFixed(1)} ms`);
      await measure("where topic = t7, limit 100, full", page(a, { where: { topic: "t7" } }));
      await measure("where topic = t7, limit 100, ids", page(a, { where: { topic: "t7" }, select: "ids" }));
      await measure("topic in (t3, t4) and role = user, oldest first, limit 100, ids", page(a, { where: { topic: { in: ["t3", "t4"] }, role: "user" }, order: "oldest", select: "ids" }));
      await measure("count topic = t7", () => (a.count as NonNullable<Adapter["count"]>).call(a, unpaged(resolveQuery({ where: { topic: "t7" } }, { paged: false }))), 200);
      await measure("list(100)", () => a.list({ prefix: "", after: -1, limit: 100 }));
      await a.close();
      if (tier === "jsonl") {
        const t2 = Date.now();
        const b = jsonlAdapter({ path, durability: "none" });
        await b.open();
        console.log(`  reopen (replay): ${Date.now() - t2} ms`);
        await b.close();
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
