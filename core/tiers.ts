import type { Datum } from "./datum.js";
import { dgentError, isDgentError } from "./errors.js";
import type { Adapter } from "./protocol.js";

export { compareIds, compareNewestFirst } from "./order.js";

/** One tier of a store and what the router knows about it. */
export interface TierState {
  readonly adapter: Adapter;
  up: boolean;
  opened: boolean;
  /** It may hold data: reads and conflict checks consult it. */
  holds: boolean;
  failures: number;
  lastError: Error | null;
  timer: NodeJS.Timeout | null;
}

/** An error that means "this tier is out right now", as opposed to "this call is wrong". */
export function isOutage(error: unknown): boolean {
  return isDgentError(error) ? error.retryable : false;
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

/**
 * A tier that deletes many ids in one call (one statement, one transaction): `deleteIds`
 * resolves to the ids that existed. Optional; `deleteIds()` below falls back to `delete`.
 */
export interface DeletesIds {
  deleteIds(ids: readonly string[]): Promise<string[]>;
}

/** Deletes `ids` from a tier in one call where it can (`deleteIds`), else one by one; the ids that existed. */
export async function deleteIds(tier: Adapter, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const many = (tier as Adapter & Partial<DeletesIds>).deleteIds;
  if (typeof many === "function") return many.call(tier, ids);
  const existed: string[] = [];
  for (const id of ids) if (await tier.delete(id)) existed.push(id);
  return existed;
}

/** Puts `datums` on a tier in one call where it can (`putMany`), else one by one. */
export async function putAll(tier: Adapter, datums: readonly Datum[]): Promise<void> {
  if (datums.length === 0) return;
  if (tier.putMany) {
    await tier.putMany(datums);
    return;
  }
  for (const d of datums) await tier.put(d);
}

/**
 * Ids being worked on, each with the promise that settles when the work is done: a delete and a
 * promotion's read → copy → verify → remove never interleave on the same id, so a promotion never
 * copies up a datum a delete has just removed (within one process; see core/LATTICE.md).
 */
export class IdLocks {
  readonly #busy = new Map<string, Promise<void>>();
  #paused: Promise<void> | null = null;

  /** Waits until none of `ids` is held (nor all paused), holds them all, and returns the release. */
  async lock(ids: readonly string[]): Promise<() => void> {
    for (;;) {
      let wait: Promise<void> | null | undefined = this.#paused;
      if (!wait) for (const id of ids) if ((wait = this.#busy.get(id))) break;
      if (!wait) break;
      await wait;
    }
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    for (const id of ids) this.#busy.set(id, held);
    return () => {
      for (const id of ids) if (this.#busy.get(id) === held) this.#busy.delete(id);
      release();
    };
  }

  /** Until the returned resume is called, new locks wait (held ones are not affected). */
  pause(): () => void {
    let resume!: () => void;
    const paused = new Promise<void>((resolve) => (resume = resolve));
    this.#paused = paused;
    return () => {
      if (this.#paused === paused) this.#paused = null;
      resume();
    };
  }
}

/** A delete whose answer depends on tiers that are down (it is journaled for them). */
export function unknownDelete(id: string, tiers: readonly string[]) {
  const names = tiers.map((t) => `"${t}"`).join(", ");
  const one = tiers.length === 1;
  return dgentError(
    "DGENT_DELETE_UNKNOWN",
    `cannot tell whether ${JSON.stringify(id)} existed: no tier that is up held it and ${names}, which may hold it, ${one ? "is" : "are"} down; the delete is journaled and applies when ${one ? "it returns" : "they return"}`,
    { details: { id, tiers: [...tiers] } },
  );
}

export { conflictError } from "./errors.js";
