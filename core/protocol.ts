import { dgentError } from "./errors.js";
import type { Datum } from "./datum.js";
import type { DatumHeader, IdPage, ResolvedQuery } from "./query.js";
import type { Ref, RefExpectation, RefMove, ReflogEntry, TxOp, TxResult } from "./refs.js";

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

export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from "./limits.js";
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from "./limits.js";
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
  /**
   * Refs: `getRef`, `listRefs`, `reflog`, and `setRef` / `deleteRef` as one atomic
   * compare-and-set each. Absent means false: the store refuses ref operations on this tier with
   * `DGENT_UNSUPPORTED`.
   */
  readonly refs?: boolean;
  /** `commit(ops)`: puts, deletes and ref moves all or nothing. Absent means false. */
  readonly transactions?: boolean;
  /**
   * Native queries: `query`, `count`, `getMany`, `deleteMany` and `chainTail` (QUERIES.md).
   * Absent means false: the store answers them from `scan()` (or `list`) and `get`, in O(namespace).
   */
  readonly query?: boolean;
  /**
   * What a metadata filter costs on this tier: `"indexed"` (an index finds the matches, O(result))
   * or `"scan"` (every datum of the namespace is read). Absent: `"scan"`.
   */
  readonly queryCost?: "indexed" | "scan";
  /**
   * The tier projects data it does not own (the table bridge): it is the only tier of its store,
   * because a lattice would promote its datums away and journal deletes against it. Absent: false.
   */
  readonly projection?: boolean;
  /**
   * Expiry (EXPIRY.md): the tier itself hides datums whose `dgent.expiresAt` tag has passed, by
   * the context's `clock`, on every read, treats them as absent at `put`, and reclaims their
   * space. Absent means false: the store does all of that in front of the tier.
   */
  readonly expiry?: boolean;
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

/**
 * One numbered change of a namespace's change sequence: a tier's own change table (SQLite's
 * `change_log`) and `dgent serve`'s change stream share this shape. Fields a kind of change does
 * not have are absent.
 */
export interface NumberedChange {
  readonly seq: number;
  readonly op: "put" | "delete" | "setRef" | "deleteRef";
  /** The datum's id (put, delete) or the ref's name (setRef, deleteRef). */
  readonly key: string;
  /** put: the datum's tags; delete: the tags the datum had, when they were known. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly createdAt?: number;
  readonly causalParent?: string | null;
  /** setRef: the new target and version. */
  readonly target?: string;
  readonly version?: number;
  /** When it was recorded (epoch ms). */
  readonly at: number;
}

/** Events that go nowhere: for an adapter opened without a store. */
export const SILENT_EVENTS: AdapterEvents = Object.freeze({
  evicted: () => undefined,
  warning: () => undefined,
  change: () => undefined,
});

/**
 * Whether anyone hears the changes other processes make: the store's `externalChange` hook has a
 * tap. A tier that holds a connection or subscription open to hear them (Postgres `LISTEN`) can
 * wait for the first tap instead of listening, and reading other processes' changes, for nobody.
 */
export interface ChangeInterest {
  /** True once the hook has a tap (taps are never removed, so it never turns false). */
  readonly wanted: boolean;
  /**
   * Calls `listener` once, soon after the hook's first tap (in a microtask of the `tap` call);
   * never when `wanted` is already true. Returns a function that cancels the call.
   */
  onWanted(listener: () => void): () => void;
}

export interface AdapterContext {
  readonly events: AdapterEvents;
  /** The store's clock (epoch ms), for a tier with `capabilities.expiry`; absent: `Date.now`. */
  readonly clock?: () => number;
  /** Whether the store's `externalChange` hook has a tap yet; absent: assume it has. */
  readonly changeInterest?: ChangeInterest;
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
  /**
   * Optional, a faster `putMany` for bulk writers (`dgent restore`): stores every datum whose id
   * the tier does not hold and leaves every id it holds as it is, answering with how many it
   * stored and the ids held with a different value (content, parent or metadata). Listeners hear
   * the stored datums as they hear `putMany`. Writers fall back to `putMany` (and `put` for
   * conflicts) without it.
   */
  importDatums?(datums: readonly Datum[]): Promise<{ stored: number; conflicts: string[] }>;
  /** Every datum, in no particular order. */
  scan?(): AsyncIterable<Datum>;
  /**
   * Optional, a faster `scan` for bulk readers (`dgent backup`): every datum once, in the order
   * `scan` gives them, in pages, all read from one snapshot (writes made while it runs are not
   * seen). Readers fall back to `scan` without it.
   */
  exportDatums?(): AsyncIterable<readonly Datum[]>;
  stats?(): Promise<AdapterStats>;
  /** A cheap availability check with its own timeout; never throws. */
  probe?(): Promise<boolean>;

  /** With `capabilities.refs`: the ref, or `null`. */
  getRef?(name: string): Promise<Ref | null>;
  /** With `capabilities.refs`: refs whose names start with `prefix`, by name (code point order). */
  listRefs?(prefix: string): Promise<Ref[]>;
  /** With `capabilities.refs`: the ref's last moves, newest first, at most `limit` (the tier keeps `REFLOG_LIMIT`). */
  reflog?(name: string, limit: number): Promise<ReflogEntry[]>;
  /**
   * With `capabilities.refs`: points `name` at `target` if the ref meets `expect` (always, when
   * `expect` is undefined), atomically, and records the move in the reflog; otherwise throws
   * `refConflict(…)` (`DGENT_REF_CONFLICT`) and changes nothing. Returns the new ref.
   */
  setRef?(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref>;
  /** With `capabilities.refs`: deletes the ref if it meets `expect`, atomically; true when it existed. */
  deleteRef?(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean>;
  /**
   * With `capabilities.transactions`: applies `ops` in order, all or nothing: the append-only law
   * for every put (against what is stored and earlier puts of the same transaction), every ref
   * expectation checked against the state the earlier operations leave. Any failure throws and
   * changes nothing.
   */
  commit?(ops: readonly TxOp[], move: RefMove): Promise<TxResult>;

  /**
   * With `capabilities.query`: one page of `q` — the datums meeting its filters, in `q.order`,
   * strictly beyond `q.cursor`, at most `q.limit`. Whole datums when `q.select` is `"full"`;
   * otherwise headers, and the content need not be read. For `"ids"` only each item's `id`,
   * `createdAt` and `dgent.expiresAt` tag are read: a tier may return `idEntryOf` entries
   * (core/query.ts) and skip the rest of the row.
   */
  query?(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]>;
  /**
   * Optional, with `capabilities.query`: `query` for `select: "ids"` as an `IdPage` (ids, the
   * last one's position, expiry tags) — one index read on a tier that can answer from its
   * indexes. The store uses it for an ids page when the tier holds the namespace alone.
   */
  queryIds?(q: ResolvedQuery): Promise<IdPage>;
  /** With `capabilities.query`: how many datums meet `q`'s filters (its cursor, order, limit and select aside). */
  count?(q: ResolvedQuery): Promise<number>;
  /** With `capabilities.query`: the datums of `ids` in the same order, `null` where there is none. */
  getMany?(ids: readonly string[]): Promise<Array<Datum | null>>;
  /**
   * With `capabilities.query`: deletes every datum meeting `q`'s filters (cursor and limit aside)
   * — all or nothing on a tier with `transactions` — and returns their ids.
   */
  deleteMany?(q: ResolvedQuery): Promise<string[]>;
  /**
   * With `capabilities.query`: the last `n` steps of the datum's causal chain — its `n − 1`
   * nearest ancestors and the datum, oldest first (fewer when the chain is shorter; `[]` when the
   * datum is absent). Reads only those steps, so a long chain never meets the depth limit.
   */
  chainTail?(id: string, n: number): Promise<Datum[]>;
}

/** The protocol a store speaks to its callers (an adapter plus conveniences). */
export interface DatumStore {
  put(datum: Datum): Promise<string>;
  get(id: string): Promise<Datum | null>;
  delete(id: string): Promise<boolean>;
  list(options?: ListOptions): Promise<Datum[]>;
  causalChain(id: string): Promise<Datum[]>;
}

/**
 * Validates list options and fills the defaults (prefix `""`, after `-1`, limit 100): what every
 * adapter's `list` receives. Unknown or ill-typed options are `DGENT_INVALID_OPTIONS`.
 */
export function resolveListOptions(options: ListOptions): ResolvedListOptions {
  if (options === null || typeof options !== "object") {
    throw dgentError("DGENT_INVALID_OPTIONS", "list options must be an object");
  }
  const { prefix = "", after = -1, limit = DEFAULT_LIST_LIMIT } = options;
  if (typeof prefix !== "string") {
    throw dgentError("DGENT_INVALID_OPTIONS", `list prefix must be a string, got ${typeof prefix}`);
  }
  // No id holds a control character or a lone surrogate, so such a prefix is a caller's mistake,
  // refused the same way on every tier (some backends could not even hold it).
  if (/[\u0000-\u001f\u007f-\u009f]/.test(prefix) || !prefix.isWellFormed()) {
    throw dgentError("DGENT_INVALID_OPTIONS", `list prefix ${JSON.stringify(prefix)} contains a control character or a lone surrogate; no id can start with it`);
  }
  if (typeof after !== "number" || Number.isNaN(after)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `list after must be a number of epoch milliseconds, got ${String(after)}`);
  }
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIST_LIMIT) {
    throw dgentError("DGENT_INVALID_OPTIONS", `list limit must be an integer from 0 to ${MAX_LIST_LIMIT}, got ${String(limit)}`);
  }
  return { prefix, after, limit };
}
