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
import type { Contender } from "./contender.js";
import { RawJsonl } from "./tiers/jsonl.js";
import { RawMemory } from "./tiers/memory.js";
import { rawSqliteContender } from "./tiers/sqlite.js";
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

/** The raw baseline of a scaling tier (the same as in its tier case), for context. */
function rawFor(tier: ScalingTier, dir: string, name: string): Pick<Contender, "get" | "list" | "close"> & { putMany(ds: Datum[]): unknown } {
  switch (tier) {
    case "memory": {
      const raw = new RawMemory();
      return { putMany: (ds) => raw.putMany(ds), get: (id) => raw.get(id), list: (limit) => raw.list(limit), close: async () => undefined };
    }
    case "jsonl-none": {
      const raw = new RawJsonl(join(dir, `${name}.raw.jsonl`), false);
      return { putMany: (ds) => raw.putMany(ds), get: (id) => raw.get(id), list: (limit) => raw.list(limit), close: async () => raw.close() };
    }
    case "sqlite": {
      const raw = rawSqliteContender(join(dir, `${name}.raw.db`));
      return { putMany: (ds) => raw.putMany?.(ds), get: (id) => raw.get?.(id), list: (limit) => raw.list?.(limit), close: () => raw.close() };
    }
  }
}

type Raw = ReturnType<typeof rawFor>;

/**
 * Loads `n` datums with `putMany` batches of 1000 (chains of 10, one per millisecond, as in the
 * prefill) into the store and its raw baseline. Keeps every 7th id for gets, so a 1M store does
 * not hold a second copy of its ids in the benchmark.
 */
async function fill(store: Store, raw: Raw, n: number, onBatch: (done: number) => void): Promise<string[]> {
  const ids: string[] = [];
  let parent: string | null = null;
  const t0 = Date.now() - n;
  for (let start = 0; start < n; start += FILL_BATCH) {
    const batch: Datum[] = [];
    for (let i = start; i < Math.min(n, start + FILL_BATCH); i++) {
      const d = benchDatum(i, i % 10 === 0 ? null : parent, t0 + i);
      batch.push(d);
      parent = d.id;
      if (i % 7 === 0) ids.push(d.id);
    }
    await store.putMany(batch);
    raw.putMany(batch);
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
  const raws: Raw[] = [];
  try {
    const filled: { ids: string[]; ms: number }[] = [];
    for (const [k, n] of sizes.entries()) {
      const store = createStore({ tiers: [adapterFor(tier, base, `n${n}`)] });
      stores.push(store);
      const raw = rawFor(tier, base, `n${n}`);
      raws.push(raw);
      await store.open();
      const r = await timed(() => fill(store, raw, n, (done) => progress.update(`fill ${n.toLocaleString("en")}: ${Math.floor((done / n) * 100)}%`, (k * 0.45 * done) / n)));
      filled.push({ ids: r.value, ms: r.ms });
      checkDatum(await store.get(r.value[0] as string), `${tier} at ${n}: get`);
      checkDatum(await raw.get?.(r.value[0] as string), `raw ${tier} at ${n}: get`);
    }
    const label = (who: string, n: number) => `${who} @ ${n.toLocaleString("en")}`;
    const subjects = (op: "get" | "list"): Subject<unknown>[] =>
      sizes.flatMap((n, k): Subject<unknown>[] => {
        const store = stores[k] as Store;
        const raw = raws[k] as Raw;
        const ids = (filled[k] as { ids: string[] }).ids;
        const limits = (c: number) => new Array<number>(c).fill(LIST_LIMIT);
        if (op === "get") {
          const rawGet = raw.get as (id: string) => unknown;
          return [
            { name: label("dgent", n), args: cycling(ids), run: (id: unknown) => store.get(id as string) },
            { name: label("raw", n), args: cycling(ids), run: (id: unknown) => rawGet(id as string) },
          ];
        }
        const rawList = raw.list as (limit: number) => unknown;
        return [
          { name: label("dgent", n), args: limits, run: (limit: unknown) => store.list({ limit: limit as number }) },
          { name: label("raw", n), args: limits, run: (limit: unknown) => rawList(limit as number) },
        ];
      });
    const get = await compare(subjects("get"), plan, (d, t, who) => progress.update(`get: ${who}`, 0.9 + (0.05 * d) / t));
    const list = await compare(subjects("list"), plan, (d, t, who) => progress.update(`list: ${who}`, 0.95 + (0.05 * d) / t));
    const [small, large] = sizes;
    const pair = (m: typeof get, who: string) => {
      const a = m.get(label(who, small)) as NonNullable<ReturnType<typeof m.get>>;
      const b = m.get(label(who, large)) as NonNullable<ReturnType<typeof m.get>>;
      return { small: a, large: b, ratio: b.p50 / a.p50 };
    };
    return {
      tier,
      sizes,
      fillMs: [(filled[0] as { ms: number }).ms, (filled[1] as { ms: number }).ms],
      get: pair(get, "dgent"),
      list: pair(list, "dgent"),
      raw: { get: pair(get, "raw"), list: pair(list, "raw") },
    };
  } finally {
    for (const s of stores) await s.close().catch((error: unknown) => progress.log(`  scaling ${tier}: close failed: ${message(error)}`));
    for (const r of raws) await r.close().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
}
