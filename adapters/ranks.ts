/**
 * Durability ranks of the built-in tiers (higher is more durable), on multiples of 10 so a
 * third-party adapter can choose a rank between them. The kernel orders tiers by these numbers
 * only; the names live here, beside the adapters.
 */
export const RANKS = Object.freeze({
  memory: 0,
  jsonl: 10,
  sqlite: 20,
  /** Shared by every host that reaches the server, but at most as durable as its AOF: see adapters/redis/README.md. */
  redis: 25,
  "postgres-docker": 30,
  "postgres-kind": 40,
  s3: 50,
  gcs: 50,
} as const);

export type BuiltInTier = keyof typeof RANKS;
