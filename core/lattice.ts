/**
 * Durability ranks of the projection lattice. Higher is more durable. Built-in tiers sit on
 * multiples of 10 so third-party adapters can choose a rank between them (e.g. 25: more durable
 * than SQLite, less than a Postgres container).
 */
export const RANKS = Object.freeze({
  memory: 0,
  jsonl: 10,
  sqlite: 20,
  "postgres-docker": 30,
  "postgres-kind": 40,
  s3: 50,
  gcs: 50,
} as const);

export type BuiltInTier = keyof typeof RANKS;

/** Tiers ordered from most to least durable; ties keep their given order. */
export function byDurability<T extends { readonly rank: number }>(tiers: readonly T[]): T[] {
  return tiers
    .map((tier, index) => ({ tier, index }))
    .sort((a, b) => b.tier.rank - a.tier.rank || a.index - b.index)
    .map((entry) => entry.tier);
}

/** The persistence spectrum's name for a rank, for reports. */
export function rankLabel(rank: number): string {
  if (rank <= RANKS.memory) return "volatile";
  if (rank < RANKS["postgres-docker"]) return "local";
  if (rank < RANKS.s3) return "shared";
  return "archive";
}
