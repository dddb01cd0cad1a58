import { walkCausalChain } from "./causal.js";
import { sameValue, type Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import { byDurability } from "./lattice.js";
import type { Adapter, ResolvedListOptions } from "./protocol.js";
import { compareNewestFirst } from "./order.js";

export { compareIds, compareNewestFirst } from "./order.js";

/**
 * The tiers of one store, most durable first, and how an operation spreads over them. Writes
 * land on the landing tier (the most durable); reads consult every tier. The router of the
 * lattice (degradation, promotion) replaces the landing choice, not this shape.
 */
export class TierSet {
  readonly all: readonly Adapter[];
  readonly single: Adapter | null;
  landing: Adapter;

  constructor(tiers: readonly Adapter[]) {
    if (tiers.length === 0) throw dgentError("DGENT_NO_TIERS", "a store needs at least one tier");
    const names = new Set<string>();
    for (const t of tiers) {
      if (names.has(t.name)) {
        throw dgentError(
          "DGENT_DUPLICATE_NAME",
          `two tiers are named "${t.name}"; give each tier of a store its own adapter name`,
        );
      }
      names.add(t.name);
    }
    this.all = Object.freeze(byDurability(tiers));
    this.landing = this.all[0] as Adapter;
    this.single = this.all.length === 1 ? this.landing : null;
  }

  /** Puts on the landing tier, after checking the others for a different datum under the id. */
  async put(datum: Datum): Promise<string> {
    if (this.single) return this.single.put(datum);
    for (const tier of this.all) {
      if (tier === this.landing) continue;
      const existing = await tier.get(datum.id);
      if (existing === null) continue;
      if (!sameValue(existing, datum)) throw conflict(datum.id, tier.name);
      return datum.id;
    }
    return this.landing.put(datum);
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    const tier = this.single;
    if (tier?.putMany) return tier.putMany(datums);
    const ids: string[] = [];
    for (const d of datums) ids.push(await this.put(d));
    return ids;
  }

  /** The datum and the tier that held it. */
  async get(id: string): Promise<{ datum: Datum; tier: Adapter } | null> {
    for (const tier of this.all) {
      const datum = await tier.get(id);
      if (datum !== null) return { datum, tier };
    }
    return null;
  }

  async delete(id: string): Promise<boolean> {
    if (this.single) return this.single.delete(id);
    let existed = false;
    for (const tier of this.all) if (await tier.delete(id)) existed = true;
    return existed;
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    if (this.single) return this.single.list(options);
    const byId = new Map<string, Datum>();
    for (const tier of this.all) {
      for (const d of await tier.list(options)) if (!byId.has(d.id)) byId.set(d.id, d);
    }
    return [...byId.values()].sort(compareNewestFirst).slice(0, options.limit);
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    const tier = this.single;
    if (tier?.causalChain) return tier.causalChain(id, maxDepth);
    return walkCausalChain(id, async (next) => (await this.get(next))?.datum ?? null, maxDepth);
  }

  async *scan(): AsyncIterable<Datum> {
    const seen = this.single ? null : new Set<string>();
    for (const tier of this.all) {
      for await (const d of scanTier(tier)) {
        if (seen) {
          if (seen.has(d.id)) continue;
          seen.add(d.id);
        }
        yield d;
      }
    }
  }
}

/** A tier's `scan`, or a fallback that pages through `list` by creation time. */
export async function* scanTier(tier: Adapter): AsyncIterable<Datum> {
  if (tier.scan) {
    yield* tier.scan();
    return;
  }
  // Fallback: everything in one list call at the largest limit; adapters that can hold more
  // than that must implement scan (the conformance kit checks scan where declared).
  yield* await tier.list({ prefix: "", after: -1, limit: Number.MAX_SAFE_INTEGER });
}

export function conflict(id: string, unit: string) {
  return dgentError(
    "DGENT_CONFLICT",
    `datum ${JSON.stringify(id)} already exists with different content, parent or metadata; datums are immutable`,
    { unit, details: { id } },
  );
}
