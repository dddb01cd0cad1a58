import type { ContenderKind, OpName } from "./contender.js";
import type { ConcurrencyPlan } from "./concurrency.js";
import type { Stats } from "./measure.js";

/** The JSON written to `benchmarks/results/<name>.json`. Times are µs, ratios plain numbers. */
export const RESULTS_SCHEMA = "dgent-bench/1";

export interface ContenderInfo {
  readonly name: string;
  readonly kind: ContenderKind;
  readonly description: string;
  readonly notes?: Partial<Record<OpName, string>>;
}

export interface OpResult {
  readonly op: OpName;
  /** Stats by contender name. */
  readonly stats: Record<string, Stats>;
  /** The raw contender's name, and dgent p50 ÷ raw p50. */
  readonly raw: string | null;
  readonly ratioRaw: number | null;
  /** The fastest peer by p50, and dgent p50 ÷ its p50. */
  readonly bestPeer: string | null;
  readonly ratioBestPeer: number | null;
  /** Set when this operation could not be measured. */
  readonly error?: string;
}

export interface TierResult {
  readonly tier: string;
  readonly label: string;
  readonly prefill: number;
  readonly contenders: readonly ContenderInfo[];
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  readonly ops: readonly OpResult[];
  /** Prefill time per contender, ms. */
  readonly prefillMs: Record<string, number>;
  readonly probe?: Record<string, unknown>;
  /** Set when the tier could not run at all (no server, a missing dependency). */
  readonly error?: string;
}

export interface ScalingResult {
  readonly tier: string;
  readonly sizes: readonly [number, number];
  /** Time to load each size's dgent store and raw baseline (batches of 1000), ms. */
  readonly fillMs: readonly [number, number];
  readonly get: { readonly small: Stats; readonly large: Stats; readonly ratio: number };
  readonly list: { readonly small: Stats; readonly large: Stats; readonly ratio: number };
  /** The tier's raw baseline at the same two sizes, for context (is the growth the backend's?). */
  readonly raw?: {
    readonly get: { readonly small: Stats; readonly large: Stats; readonly ratio: number };
    readonly list: { readonly small: Stats; readonly large: Stats; readonly ratio: number };
  };
  readonly error?: string;
}

/** What the queries part measures on a tier (benchmarks/queries.ts). */
export type QueryOp = "filtered" | "ids" | "chainTail";

/** One contender on one store: `size` is the store's datums, or the chain's length for `chainTail`. */
export interface QueryCell {
  readonly contender: string;
  readonly kind: ContenderKind;
  readonly size: number;
  readonly stats: Stats;
}

export interface QueryOpResult {
  readonly op: QueryOp;
  readonly cells: readonly QueryCell[];
  readonly error?: string;
}

/** The figures the verdict and the tables read, derived from the cells (p50s, µs; ratios of p50s). */
export interface QueryFigures {
  /** dgent's filtered list(100) at the large size (full datums, and ids only). */
  readonly filtered: Stats | null;
  readonly ids: Stats | null;
  /** dgent ÷ raw at the large size. */
  readonly filteredRaw: number | null;
  readonly idsRaw: number | null;
  /** Large ÷ small, dgent and the raw driver. */
  readonly filteredScaling: number | null;
  readonly idsScaling: number | null;
  readonly rawFilteredScaling: number | null;
  /** `causalChain(id, { tail: 20 })` on the long chain ÷ on a 20-long one; dgent and raw. */
  readonly chainTail: number | null;
  readonly rawChainTail: number | null;
  /** dgent ÷ the fastest peer, filtered list(100) at the peers' size. */
  readonly bestPeer: string | null;
  readonly peerRatio: number | null;
}

/** Filtered list(100) from many concurrent callers of one process, per contender. */
export interface ConcurrentQueries {
  readonly callers: number;
  readonly size: number;
  /** Per contender: calls per second of all callers together, and each call's latency (µs). */
  readonly byContender: Record<string, { readonly opsPerSec: number; readonly calls: number; readonly p50: number; readonly p95: number }>;
  /** raw ÷ dgent throughput. */
  readonly rawOverDgent: number | null;
}

export interface QueriesResult {
  readonly tier: string;
  readonly label: string;
  /** Datums in the small and the large store. */
  readonly sizes: readonly [number, number];
  /** Chain lengths of `chainTail`: a short chain and the long one, both in the large store. */
  readonly chains: readonly [number, number];
  /** Datums the peers hold (they scan: they run on the small size only); null without peers. */
  readonly peerSize: number | null;
  /** What the tier declares: `indexed`, `scan`, or `none` (no native queries: core scans it). */
  readonly queryCost: string;
  /** Load time of each store (dgent `putMany` batches; peers their batch call), ms. */
  readonly fillMs: Record<string, number>;
  readonly contenders: readonly ContenderInfo[];
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  readonly ops: readonly QueryOpResult[];
  readonly figures: QueryFigures;
  readonly concurrent: ConcurrentQueries | null;
  /** Facts worth a line in the report (the raw SQL's schema version, a case left out and why). */
  readonly notes: readonly string[];
  readonly error?: string;
}

export interface VerdictRow {
  readonly id: string;
  /** `seed`: the seed's loose per-tier targets; `goal`: the goals. */
  readonly source: "seed" | "goal";
  readonly title: string;
  readonly tier: string;
  readonly op: string | null;
  /** What the row compares: a p50 in µs, or a ratio. */
  readonly unit: "µs" | "×";
  readonly value: number | null;
  readonly limit: number;
  /** true pass, false miss, null not measured (the reason is in `detail`). */
  readonly pass: boolean | null;
  readonly detail: string;
  /** The value must reach the limit (`value ≥ limit` passes), e.g. a throughput ratio; else `value ≤ limit`. */
  readonly atLeast?: true;
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly tmpdir: string;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly commit: string | null;
  /** Free text from `--machine`, e.g. "2-core VM, ext4 on virtio". */
  readonly note: string | null;
}

export interface BenchResults {
  readonly schema: typeof RESULTS_SCHEMA;
  readonly name: string;
  readonly mode: "full" | "quick";
  readonly command: string;
  readonly startedAt: string;
  readonly durationS: number;
  readonly machine: MachineInfo;
  readonly config: {
    readonly contentBytes: number;
    readonly tags: number;
    readonly chainDepth: number;
    readonly listLimit: number;
    readonly batch: number;
    readonly prefill: number;
    readonly objectStorePrefill: number;
    readonly scaling: readonly [number, number];
    readonly peers: boolean;
    /** The queries part's store sizes (absent in results written before it existed). */
    readonly queries?: readonly [number, number];
    /** The concurrency section's plan, when it ran. */
    readonly concurrency?: ConcurrencyPlan;
  };
  readonly tiers: readonly TierResult[];
  /** `fdatasync` alone after a 1 KiB append, on the benchmark's data directory. */
  readonly fsyncFloor: Stats | null;
  readonly hooks: readonly TierResult[];
  readonly scaling: readonly ScalingResult[];
  /** The queries part (issue 14); absent in results written before it existed. */
  readonly queries?: readonly QueriesResult[];
  /** The concurrency section (issue 23); absent in results written before it existed. */
  readonly concurrency?: readonly ConcurrencyResult[];
  readonly verdict: readonly VerdictRow[];
  readonly summary: { readonly pass: number; readonly miss: number; readonly notMeasured: number };
}

/** One contender at one concurrency (the concurrency section, issue 23). */
export interface ConcurrencyCell {
  readonly contender: string;
  readonly kind: ContenderKind;
  /** Operations per second of all callers (and processes) together. */
  readonly opsPerSec: number;
  readonly ops: number;
  /** Each operation's latency, µs (it includes waiting for a pooled connection or a group sync). */
  readonly p50: number;
  readonly p99: number;
  readonly error?: string;
}

export interface ConcurrencyRow {
  readonly op: "put" | "get";
  /** Callers in all: `processes` × callers per process. */
  readonly callers: number;
  readonly processes: number;
  readonly cells: readonly ConcurrencyCell[];
  /** dgent ÷ raw throughput (higher is better), and dgent ÷ the fastest peer's throughput. */
  readonly throughputRaw: number | null;
  readonly bestPeer: string | null;
  readonly throughputBestPeer: number | null;
}

export interface ConcurrencyResult {
  readonly tier: string;
  readonly label: string;
  readonly contenders: readonly ContenderInfo[];
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  readonly rows: readonly ConcurrencyRow[];
  /** The JSONL tier: `fdatasync` alone after a 1 KiB append, measured before and after its rows. */
  readonly fsyncFloor?: Stats | null;
  readonly notes: readonly string[];
  readonly error?: string;
}
