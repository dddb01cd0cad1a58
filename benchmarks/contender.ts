import type { Datum } from "../core/datum.js";
import type { SamplePlan } from "./measure.js";

/** The operations every tier is measured on (the table). */
export const OPS = ["put", "putMany", "get", "list", "chain"] as const;
export type OpName = (typeof OPS)[number];

/** How each operation is shown in tables and on the chart. */
export const OP_LABEL: Readonly<Record<OpName, string>> = {
  put: "put",
  putMany: "putMany(100)",
  get: "get",
  list: "list(100)",
  chain: "causalChain(10)",
};

export type ContenderKind = "dgent" | "raw" | "peer";

/**
 * One thing measured on a tier: the dgent store, the raw driver doing the same work by hand, or a
 * peer library on the same backend. An operation it cannot do is left out (peers have no causal
 * chain). Calls may be synchronous (raw drivers) or return a promise; the sampler awaits only
 * promises, so a synchronous driver is not charged for an `await` it would not need.
 */
export interface Contender {
  readonly name: string;
  readonly kind: ContenderKind;
  /** One line: what it is and how it is configured. */
  readonly description: string;
  /** How an operation is done when it is not the obvious call (e.g. a peer's list). */
  readonly notes?: Partial<Record<OpName, string>>;
  put?(datum: Datum): unknown;
  putMany?(datums: Datum[]): unknown;
  get?(id: string): unknown;
  /** The newest `limit` datums (no prefix), newest first. */
  list?(limit: number): unknown;
  chain?(id: string): unknown;
  /**
   * The newest `limit` datums whose tag `tag` equals `value`, newest first (the queries part).
   * Peers have no filters: this is what their users write instead, a scan filtered in JavaScript.
   */
  filtered?(tag: string, value: string, limit: number): unknown;
  /** How `filtered` is done, for the report. */
  readonly filteredNote?: string;
  /** Loads the shared prefill (fast path: batches, no timing). */
  prefill(datums: readonly Datum[]): Promise<void>;
  close(): Promise<void>;
}

/** What a tier case hands the runner: its contenders, already open and prefilled by the runner. */
export interface TierSetup {
  /** Key in results and the verdict: `memory`, `jsonl-none`, `sqlite`, `postgres`, `s3`, … */
  readonly tier: string;
  /** Human label with the backend's configuration. */
  readonly label: string;
  readonly contenders: Contender[];
  /** Peers that could not run here, with the reason. */
  readonly skipped?: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  /** Extra facts measured once (round trips per call, requests per call). */
  probe?(ids: { get: string; chain: string }, plan: (op: OpName) => SamplePlan): Promise<Record<string, unknown>>;
  /** Stops servers and removes files; contenders are closed by the runner before this. */
  dispose(): Promise<void>;
}

export function hasOp(c: Contender, op: OpName): boolean {
  return typeof c[op] === "function";
}
