import type { Datum } from "./datum.js";

/** Options of `list`. */
export interface ListOptions {
  /** Only ids that start with this string. */
  prefix?: string;
  /** Only datums with `createdAt > after` (epoch ms). */
  after?: number;
  /** At most this many (default 100, at most `MAX_LIST_LIMIT`). */
  limit?: number;
}

/** `ListOptions` after validation and defaults: what adapters receive. */
export interface ResolvedListOptions {
  readonly prefix: string;
  readonly after: number;
  readonly limit: number;
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 100_000;
export const DEFAULT_MAX_CHAIN_DEPTH = 10_000;

/** Declared facts about an adapter, read by the router and the conformance kit. */
export interface Capabilities {
  /** Data outlives the process. */
  readonly persistent: boolean;
  /** Several processes may open the same storage at once and see each other's writes. */
  readonly multiProcess: boolean;
  /** `causalChain` is answered natively (e.g. one recursive query), not by repeated `get`. */
  readonly nativeCausalChain: boolean;
  /** `putMany` is native (one transaction / statement). */
  readonly batch: boolean;
  /** `scan()` streams every datum (used by migration and promotion). */
  readonly scan: boolean;
  /** Datums may disappear without a delete (a bounded memory tier evicts). */
  readonly evicts: boolean;
  /**
   * The tier keeps the datums it is given and hands the same objects back, without copying
   * (`memoryAdapter({ copy: false })`): nobody may mutate a datum's content or metadata after
   * `put` or after a read. Absent means false: the tier keeps its own copy.
   */
  readonly zeroCopy?: boolean;
}

/** Events an adapter reports to whoever composed it (the store turns them into hooks). */
export interface AdapterEvents {
  /** A datum left the tier without a delete (e.g. a bounded memory tier evicted it). */
  evicted(datum: Datum, reason: string): void;
  /** Something worth a human's attention that did not fail the operation (e.g. a torn log tail). */
  warning(message: string, details?: Readonly<Record<string, unknown>>): void;
  /** A change made by someone else (another process or host) that this tier observed. */
  change(event: ChangeEvent): void;
}

/** A change to a tier's data, as reported by the tier (e.g. Postgres LISTEN/NOTIFY). */
export interface ChangeEvent {
  readonly op: "put" | "delete";
  readonly id: string;
  /** Who made it, when the tier knows (e.g. a process or connection id). */
  readonly origin?: string;
}

/** Events that go nowhere: for an adapter opened without a store. */
export const SILENT_EVENTS: AdapterEvents = Object.freeze({
  evicted: () => undefined,
  warning: () => undefined,
  change: () => undefined,
});

export interface AdapterContext {
  readonly events: AdapterEvents;
}

export interface AdapterStats {
  readonly count: number;
  readonly bytes?: number;
  readonly [key: string]: unknown;
}

/**
 * What every tier implements. Inputs arrive validated by the store (ids, datums, list options),
 * so an adapter may trust them; it must still enforce the append-only law atomically, because
 * only it can see what is stored.
 */
export interface Adapter {
  /** The registry key, folder name and error `unit`, e.g. `"sqlite"`. */
  readonly name: string;
  /** Durability rank on the lattice (see `RANKS`). */
  readonly rank: number;
  readonly capabilities: Capabilities;

  /** Connects or loads. Idempotent. */
  open(context?: AdapterContext): Promise<void>;
  /** Flushes and releases resources. Idempotent; later calls fail with `DGENT_CLOSED`. */
  close(): Promise<void>;

  /**
   * Stores `datum` and returns its id. An identical datum (see `sameValue`) already stored is a
   * no-op; a different one under the same id throws `DGENT_CONFLICT` and changes nothing.
   */
  put(datum: Datum): Promise<string>;
  get(id: string): Promise<Datum | null>;
  /** True when the id existed. */
  delete(id: string): Promise<boolean>;
  /** Newest first (createdAt desc, then id desc). */
  list(options: ResolvedListOptions): Promise<Datum[]>;

  /** Ancestors oldest first, ending with the datum; core falls back to a walk over `get`. */
  causalChain?(id: string, maxDepth: number): Promise<Datum[]>;
  /** All-or-nothing where `capabilities.batch`; core falls back to sequential `put`. */
  putMany?(datums: readonly Datum[]): Promise<string[]>;
  /** Every datum, in no particular order. */
  scan?(): AsyncIterable<Datum>;
  stats?(): Promise<AdapterStats>;
  /** A cheap availability check with its own timeout; never throws. */
  probe?(): Promise<boolean>;
}

/** The protocol a store speaks to its callers (an adapter plus conveniences). */
export interface DatumStore {
  put(datum: Datum): Promise<string>;
  get(id: string): Promise<Datum | null>;
  delete(id: string): Promise<boolean>;
  list(options?: ListOptions): Promise<Datum[]>;
  causalChain(id: string): Promise<Datum[]>;
}
