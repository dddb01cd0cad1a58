import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Datum } from "../core/datum.js";
import type { Adapter } from "../core/protocol.js";
import { createStore, type Store } from "../core/store.js";
import { jsonlAdapter } from "../adapters/jsonl/index.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { compare, timed, type SamplePlan, type Subject } from "./measure.js";
import type { Progress } from "./progress.js";
import type { ScalingResult } from "./results.js";
import { message } from "./run-tier.js";
import { LIST_LIMIT, benchDatum, checkDatum, cycling } from "./workload.js";

export const SCALING_TIERS = ["memory", "jsonl-none", "sqlite"] as const;
export type ScalingTier = (typeof SCALING_TIERS)[number];

const FILL_BATCH = 1000;

function adapterFor(tier: ScalingTier, dir: string, name: string): Adapter {
  switch (tier) {
    case "memory":
      return memoryAdapter();
    case "jsonl-none":
      return jsonlAdapter({ dataDir: dir, namespace: name, durability: "none" });
    case "sqlite":
      return sqliteAdapter({ dataDir: dir, namespace: name });
  }
}

/**
 * Loads `n` datums with `putMany` batches of 1000 (chains of 10 as in the prefill). Keeps every
 * 7th id for gets, so a 1M store does not hold a second copy of its ids in the benchmark.
 */
async function fill(store: Store, n: number, onBatch: (done: number) => void): Promise<string[]> {
  const ids: string[] = [];
  let parent: string | null = null;
  for (let start = 0; start < n; start += FILL_BATCH) {
    const batch: Datum[] = [];
    for (let i = start; i < Math.min(n, start + FILL_BATCH); i++) {
      const d = benchDatum(i, i % 10 === 0 ? null : parent);
      batch.push(d);
      parent = d.id;
      if (i % 7 === 0) ids.push(d.id);
    }
    await store.putMany(batch);
    onBatch(Math.min(n, start + FILL_BATCH));
  }
  // Scatter the read order (a prime stride) so gets do not walk the store in insertion order.
  const scattered = new Array<string>(ids.length);
  for (let k = 0; k < ids.length; k++) scattered[k] = ids[(k * 7919) % ids.length] as string;
  return scattered;
}

/**
 * Get and list(100) latency of one dgent store at two sizes. Both stores exist at once and are
 * measured interleaved, so machine load falls on both alike; the ratio large ÷ small is the
 * verdict's figure (goal: ≤ 1.5).
 */
export async function runScaling(tier: ScalingTier, sizes: readonly [number, number], dir: string, plan: SamplePlan, progress: Progress): Promise<ScalingResult> {
  const base = join(dir, `scaling-${tier}`);
  mkdirSync(base, { recursive: true });
  const stores: Store[] = [];
  try {
    const filled: { ids: string[]; ms: number }[] = [];
    for (const [k, n] of sizes.entries()) {
      const store = createStore({ tiers: [adapterFor(tier, base, `n${n}`)] });
      stores.push(store);
      await store.open();
      const r = await timed(() => fill(store, n, (done) => progress.update(`fill ${n.toLocaleString("en")}: ${Math.floor((done / n) * 100)}%`, (k * 0.45 * done) / n)));
      filled.push({ ids: r.value, ms: r.ms });
      checkDatum(await store.get(r.value[0] as string), `${tier} at ${n}: get`);
    }
    const label = (n: number) => `${tier} @ ${n.toLocaleString("en")}`;
    const subjects = (op: "get" | "list"): Subject<unknown>[] =>
      stores.map((store, k) => {
        const n = sizes[k] as number;
        if (op === "get") return { name: label(n), args: cycling((filled[k] as { ids: string[] }).ids), run: (id) => store.get(id as string) };
        return { name: label(n), args: (c: number) => new Array<number>(c).fill(LIST_LIMIT), run: (limit) => store.list({ limit: limit as number }) };
      });
    const get = await compare(subjects("get"), plan, (d, t, who) => progress.update(`get: ${who}`, 0.9 + (0.05 * d) / t));
    const list = await compare(subjects("list"), plan, (d, t, who) => progress.update(`list: ${who}`, 0.95 + (0.05 * d) / t));
    const pick = (m: typeof get, n: number) => m.get(label(n)) as NonNullable<ReturnType<typeof m.get>>;
    const [small, large] = sizes;
    const g = { small: pick(get, small), large: pick(get, large) };
    const l = { small: pick(list, small), large: pick(list, large) };
    return {
      tier,
      sizes,
      fillMs: [(filled[0] as { ms: number }).ms, (filled[1] as { ms: number }).ms],
      get: { ...g, ratio: g.large.p50 / g.small.p50 },
      list: { ...l, ratio: l.large.p50 / l.small.p50 },
    };
  } finally {
    for (const s of stores) await s.close().catch((error: unknown) => progress.log(`  scaling ${tier}: close failed: ${message(error)}`));
    rmSync(base, { recursive: true, force: true });
  }
}
