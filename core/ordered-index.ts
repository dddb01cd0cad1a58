import type { ResolvedListOptions } from "./protocol.js";
import { compareIds } from "./order.js";

export interface IndexEntry {
  readonly id: string;
  readonly createdAt: number;
}

/** Ascending (createdAt, id). */
function compareTime(a: IndexEntry, b: IndexEntry): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return compareIds(a.id, b.id);
}

/** First index in sorted `arr` whose element is not less than `target` under `cmp`. */
function lowerBound<T, K>(arr: readonly T[], target: K, cmp: (a: T, b: K) => number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(arr[mid] as T, target) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const compareId = (a: IndexEntry, id: string): number => compareIds(a.id, id);

/**
 * An in-memory index of entries by id, by time and by id order, answering the protocol's `list`
 * without scanning everything: newest-first walks the time order from its end and stops at
 * `limit`; a selective `prefix` is answered from the id order (a binary-searched range) instead.
 * Inserts of time-ordered ids (UUIDv7) append at the end of both orders. Used by the memory and
 * JSONL tiers; third-party adapters may use it too.
 */
export class OrderedIndex<T extends IndexEntry> {
  readonly #byId = new Map<string, T>();
  readonly #byTime: T[] = [];
  #byIdOrder: T[] = [];
  /** Entries not yet merged into `#byIdOrder` (ids that arrived out of order); merged on demand. */
  #pending: T[] = [];

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): T | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Adds or replaces the entry for `entry.id`. */
  set(entry: T): void {
    if (this.#byId.has(entry.id)) this.delete(entry.id);
    this.insert(entry);
  }

  /** Adds an entry whose id the index does not hold (the caller checked): one hash operation. */
  insert(entry: T): void {
    this.#byId.set(entry.id, entry);
    insertSorted(this.#byTime, entry, compareTime);
    const ids = this.#byIdOrder;
    const last = ids[ids.length - 1];
    if (this.#pending.length === 0 && (last === undefined || compareIds(last.id, entry.id) < 0)) ids.push(entry);
    else this.#pending.push(entry);
  }

  /**
   * Merges out-of-order ids into the id order. Random ids (content hashes) would otherwise shift
   * the array on every insert; batching makes a bulk load O(n log n) and a put O(1) amortised.
   */
  #idOrder(): T[] {
    const pending = this.#pending;
    if (pending.length === 0) return this.#byIdOrder;
    pending.sort((a, b) => compareIds(a.id, b.id));
    const old = this.#byIdOrder;
    const merged: T[] = new Array(old.length + pending.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < old.length && j < pending.length) {
      merged[k++] = compareIds((old[i] as T).id, (pending[j] as T).id) < 0 ? (old[i++] as T) : (pending[j++] as T);
    }
    while (i < old.length) merged[k++] = old[i++] as T;
    while (j < pending.length) merged[k++] = pending[j++] as T;
    this.#byIdOrder = merged;
    this.#pending = [];
    return merged;
  }

  delete(id: string): T | undefined {
    const entry = this.#byId.get(id);
    if (entry === undefined) return undefined;
    this.#byId.delete(id);
    removeAt(this.#byTime, lowerBound(this.#byTime, entry, compareTime));
    const ids = this.#idOrder();
    removeAt(ids, lowerBound(ids, id, compareId));
    return entry;
  }

  /** The oldest entry (smallest createdAt, then id). */
  oldest(): T | undefined {
    return this.#byTime[0];
  }

  clear(): void {
    this.#byId.clear();
    this.#byTime.length = 0;
    this.#byIdOrder = [];
    this.#pending = [];
  }

  values(): IterableIterator<T> {
    return this.#byId.values();
  }

  /** The protocol's list: prefix, createdAt > after, newest first, at most limit. */
  list(options: ResolvedListOptions): T[] {
    const { prefix, after, limit } = options;
    const out: T[] = [];
    if (limit <= 0) return out;
    const byTime = this.#byTime;
    if (prefix !== "") {
      const ids = this.#idOrder();
      const start = lowerBound(ids, prefix, compareId);
      let end = start;
      // The range of ids starting with prefix; stop counting once it is clearly not selective.
      const budget = Math.max(limit * 8, byTime.length >>> 3);
      while (end < ids.length && (ids[end] as T).id.startsWith(prefix) && end - start <= budget) end++;
      if (end - start <= budget) {
        for (let i = start; i < end; i++) {
          const e = ids[i] as T;
          if (e.createdAt > after) out.push(e);
        }
        out.sort((a, b) => compareTime(b, a));
        if (out.length > limit) out.length = limit;
        return out;
      }
    }
    for (let i = byTime.length - 1; i >= 0 && out.length < limit; i--) {
      const e = byTime[i] as T;
      if (e.createdAt <= after) break;
      if (prefix === "" || e.id.startsWith(prefix)) out.push(e);
    }
    return out;
  }
}

function insertSorted<T extends IndexEntry>(arr: T[], entry: T, cmp: (a: T, b: T) => number): void {
  const last = arr[arr.length - 1];
  if (last === undefined || cmp(last, entry) < 0) {
    arr.push(entry);
    return;
  }
  arr.splice(lowerBound(arr, entry, cmp), 0, entry);
}

function removeAt<T>(arr: T[], index: number): void {
  if (index === arr.length - 1) arr.pop();
  else if (index === 0) arr.shift();
  else arr.splice(index, 1);
}
