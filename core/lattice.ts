/**
 * The ordering of the projection lattice, as numbers. A tier's rank says how durable it is:
 * higher outlives lower. The kernel knows no tier by name; the built-in tiers' ranks are listed
 * by the composition layer (`RANKS` in `dgent`), on multiples of 10, so a third-party adapter
 * can choose a rank between them (e.g. 25: above a local file, below a shared server).
 */

/**
 * Where each band of the persistence spectrum starts. A rank below `local` does not outlive the
 * process; from `local`, data survives on this machine; from `shared`, other machines can reach
 * it; from `archive`, it lives in object storage.
 */
export const RANK_BANDS = Object.freeze({ local: 1, shared: 30, archive: 50 } as const);

/** The band a rank falls in, for reports (`dgent backend`, `store.backend()`). */
export type DurabilityLabel = "volatile" | "local" | "shared" | "archive";

/** Tiers ordered from most to least durable; ties keep their given order. */
export function byDurability<T extends { readonly rank: number }>(tiers: readonly T[]): T[] {
  return tiers
    .map((tier, index) => ({ tier, index }))
    .sort((a, b) => b.tier.rank - a.tier.rank || a.index - b.index)
    .map((entry) => entry.tier);
}

/**
 * The persistence spectrum's name for a rank: below 1 `volatile`, below 30 `local`, below 50
 * `shared`, else `archive`. A third-party rank is labelled by the band it falls in.
 */
export function rankLabel(rank: number): DurabilityLabel {
  if (rank < RANK_BANDS.local) return "volatile";
  if (rank < RANK_BANDS.shared) return "local";
  if (rank < RANK_BANDS.archive) return "shared";
  return "archive";
}
