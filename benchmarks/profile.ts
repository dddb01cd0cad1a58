import type { ConcurrencyPlan } from "./concurrency.js";
import type { OpName } from "./contender.js";
import type { SamplePlan } from "./measure.js";

/** How much to measure: the full run (~5–10 min on 2 cores) or `--quick` (< 60 s, for the tests). */
export interface Profile {
  readonly mode: "full" | "quick";
  /** Datums every local and Postgres contender holds before reads are measured. */
  readonly prefill: number;
  /** The same for the object stores (every put is several HTTP requests). */
  readonly objectStorePrefill: number;
  /** Store sizes of the scaling case (get and list latency at each). */
  readonly scaling: readonly [number, number];
  /** Store sizes of the queries part (a filtered list(100) at each; the peers hold the first). */
  readonly queries: readonly [number, number];
  /** `fdatasync` samples for the fsync floor. */
  readonly fsyncSamples: number;
  /** The concurrency section (issue 23). */
  readonly concurrency: ConcurrencyPlan;
  /** Sampling per kind of tier and operation. */
  plan(kind: "local" | "postgres" | "object", op: OpName): SamplePlan;
}

const FULL_LOCAL: SamplePlan = { budgetMs: 700, warmupMs: 150, minWarmup: 200, minSamples: 30, maxSamples: 20_000, rounds: 4 };
const FULL_PG: SamplePlan = { budgetMs: 1500, warmupMs: 300, minWarmup: 100, minSamples: 30, maxSamples: 5_000, rounds: 4 };
const FULL_OBJECT: SamplePlan = { budgetMs: 3000, warmupMs: 300, minWarmup: 3, minSamples: 10, maxSamples: 400, rounds: 2 };

const QUICK_LOCAL: SamplePlan = { budgetMs: 40, warmupMs: 15, minWarmup: 20, minSamples: 10, maxSamples: 1000, rounds: 2 };
const QUICK_PG: SamplePlan = { budgetMs: 60, warmupMs: 20, minWarmup: 10, minSamples: 10, maxSamples: 300, rounds: 2 };
const QUICK_OBJECT: SamplePlan = { budgetMs: 100, warmupMs: 0, minWarmup: 1, minSamples: 2, maxSamples: 20, rounds: 2 };

/** Writes grow the stores; the object stores are slow. Caps on calls per contender and op. */
function capped(plan: SamplePlan, op: OpName, kind: "local" | "postgres" | "object", quick: boolean): SamplePlan {
  if (kind === "object") {
    if (op === "putMany") return { ...plan, minWarmup: 1, warmupMs: 0, minSamples: 2, maxCalls: quick ? 2 : 6, rounds: 2 };
    if (op === "list") return { ...plan, minSamples: quick ? 2 : 8, maxCalls: quick ? 4 : 40 };
    return plan;
  }
  if (op === "putMany") return { ...plan, maxCalls: quick ? 100 : kind === "postgres" ? 600 : 1000 };
  if (op === "put") return { ...plan, maxCalls: quick ? 2000 : 60_000 };
  return plan;
}

export const FULL: Profile = {
  mode: "full",
  prefill: 10_000,
  objectStorePrefill: 300,
  scaling: [10_000, 1_000_000],
  queries: [10_000, 1_000_000],
  fsyncSamples: 400,
  concurrency: { levels: [1, 4, 16, 64], objectLevels: [1, 4, 16], processes: 4, callersPerProcess: 4, windowMs: 300, durableWindowMs: 600, serverWindowMs: 1000, rounds: 5, prefill: 2000, objectPrefill: 100, maxOps: 10_000, fsyncSamples: 200 },
  plan: (kind, op) => capped(kind === "local" ? FULL_LOCAL : kind === "postgres" ? FULL_PG : FULL_OBJECT, op, kind, false),
};

export const QUICK: Profile = {
  mode: "quick",
  prefill: 1_000,
  objectStorePrefill: 110,
  scaling: [1_000, 10_000],
  queries: [2_000, 5_000],
  fsyncSamples: 30,
  concurrency: { levels: [1, 16, 64], objectLevels: [1, 16], processes: 4, callersPerProcess: 4, windowMs: 25, durableWindowMs: 25, serverWindowMs: 25, rounds: 1, prefill: 200, objectPrefill: 20, maxOps: 400, fsyncSamples: 20 },
  plan: (kind, op) => capped(kind === "local" ? QUICK_LOCAL : kind === "postgres" ? QUICK_PG : QUICK_OBJECT, op, kind, true),
};
