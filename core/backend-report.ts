/**
 * `store.backend()`: which tiers a store has, which one writes land on, whether it is degraded,
 * what waits for promotion or for a tier to return, and each tier's counts. The report is built
 * from the router's and upgrader's state; building it re-probes tiers that are down.
 */
import { rankLabel, type DurabilityLabel } from "./lattice.js";
import type { AdapterStats } from "./protocol.js";
import type { Router } from "./router.js";
import type { PromotionProgress, Upgrader } from "./upgrader.js";
import type { RetentionTotals } from "./retention.js";

export interface TierReport {
  readonly name: string;
  readonly rank: number;
  /** The band of the rank: `volatile`, `local`, `shared` or `archive` (see `rankLabel`). */
  readonly durability: DurabilityLabel;
  readonly persistent: boolean;
  readonly landing: boolean;
  readonly up: boolean;
  readonly count: number | null;
  readonly bytes: number | null;
  /** The last error that took the tier down, when it is down. */
  readonly error: string | null;
  /** Where the data lives (a file, a redacted URL), when the tier says. */
  readonly location: string | null;
}

export interface BackendReport {
  readonly namespace: string;
  readonly landing: string;
  /** True when writes land on a tier that does not outlive the process. Announce it. */
  readonly volatile: boolean;
  /** The tier writes land on when it is up. */
  readonly preferred: string;
  /** True when writes land below the preferred tier because it is down. */
  readonly degraded: boolean;
  /** Datums on tiers below the most durable tier that is up (waiting for the upgrader). */
  readonly pendingPromotions: number;
  /** Deletes journaled for tiers that are down. */
  readonly pendingDeletes: number;
  /** The running or last promotion: from, to, moved, kept, total, rate, when; `null` before the first. */
  readonly promotion: PromotionProgress | null;
  /** What retention deleted and moved through this store object since it was created (core/RETENTION.md). */
  readonly retention: RetentionTotals;
  readonly tiers: readonly TierReport[];
}

export async function backendReport(namespace: string, router: Router, upgrader: Upgrader, retention: RetentionTotals): Promise<BackendReport> {
  const landing = router.landing;
  const tiers: TierReport[] = [];
  for (const state of router.states) {
    const tier = state.adapter;
    await router.check(state);
    const stats: AdapterStats | null = state.up && tier.stats ? await tier.stats().catch(() => null) : null;
    const location = stats?.path ?? stats?.location ?? stats?.url;
    tiers.push({
      name: tier.name,
      rank: tier.rank,
      durability: rankLabel(tier.rank),
      persistent: tier.capabilities.persistent,
      landing: tier === landing,
      up: state.up,
      count: stats?.count ?? null,
      bytes: stats?.bytes ?? null,
      error: state.up ? null : (state.lastError?.message ?? null),
      location: typeof location === "string" ? location : null,
    });
  }
  return {
    namespace,
    landing: landing.name,
    volatile: !landing.capabilities.persistent,
    preferred: router.preferred.adapter.name,
    degraded: landing !== router.preferred.adapter,
    pendingPromotions: await upgrader.pending(),
    pendingDeletes: router.pending.size,
    promotion: upgrader.progress(),
    retention: { ...retention },
    tiers,
  };
}
