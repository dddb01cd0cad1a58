/**
 * A sorted list of unique keys in chunks (a flat B-tree of one level, as Python's
 * `sortedcontainers`): insert and remove cost O(log n + chunk), walking a range costs what it
 * returns. Keys that arrive in order (time-ordered ids, createdAt now) append to the last chunk
 * without a search. Positions are only valid until the next change.
 */

/** Most keys a chunk takes before a new one is begun (appending) or it is split (at twice this). */
export const DEFAULT_CHUNK = 512;

/** A place in the list: chunk `c`, offset `i`; `{ c: chunks.length, i: 0 }` is the end. */
export interface Position {
  readonly c: number;
  readonly i: number;
}

/** Yields keys one by one; `undefined` once the range is done. */
export interface Walker<T> {
  next(): T | undefined;
}

const EMPTY: Walker<never> = { next: () => undefined };

export class SortedList<T> {
  #chunks: T[][] = [];
  #size = 0;
  readonly #cmp: (a: T, b: T) => number;
  readonly #chunk: number;
  /** A chunk this small after a removal is merged into a neighbour when the two fit in one. */
  readonly #small: number;

  /** `chunk`: keys per chunk (tests use tiny chunks to reach the chunk boundaries). */
  constructor(compare: (a: T, b: T) => number, chunk = DEFAULT_CHUNK) {
    this.#cmp = compare;
    this.#chunk = Math.max(2, chunk);
    this.#small = Math.max(2, this.#chunk >>> 3);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds `key`, which the list does not hold (equal keys are the caller's to prevent). */
  insert(key: T): void {
    const chunks = this.#chunks;
    this.#size++;
    const n = chunks.length;
    if (n === 0) {
      chunks.push([key]);
      return;
    }
    const tail = chunks[n - 1] as T[];
    if (this.#cmp(tail[tail.length - 1] as T, key) < 0) {
      // In order: the common case; a full last chunk starts a new one instead of splitting.
      if (tail.length >= this.#chunk) chunks.push([key]);
      else tail.push(key);
      return;
    }
    const c = this.#chunkFor(key);
    const chunk = chunks[c] as T[];
    chunk.splice(this.#offsetIn(chunk, key), 0, key);
    if (chunk.length > this.#chunk * 2) chunks.splice(c + 1, 0, chunk.splice(this.#chunk));
  }

  /** Removes the key equal to `key`; true when there was one. */
  remove(key: T): boolean {
    const chunks = this.#chunks;
    if (chunks.length === 0) return false;
    const c = this.#chunkFor(key);
    const chunk = chunks[c];
    if (chunk === undefined) return false;
    const i = this.#offsetIn(chunk, key);
    if (i >= chunk.length || this.#cmp(chunk[i] as T, key) !== 0) return false;
    if (i === chunk.length - 1) chunk.pop();
    else chunk.splice(i, 1);
    this.#size--;
    if (chunk.length === 0) chunks.splice(c, 1);
    else if (chunk.length < this.#small) this.#mergeSmall(c);
    return true;
  }

  /** Removes every key `doomed` says so of, in one pass (O(n)): cheaper than one `remove` per key when many go. */
  removeIf(doomed: (key: T) => boolean): number {
    const kept: T[][] = [];
    let current: T[] = [];
    let removed = 0;
    for (const chunk of this.#chunks) {
      for (const key of chunk) {
        if (doomed(key)) {
          removed++;
          continue;
        }
        current.push(key);
        if (current.length >= this.#chunk) {
          kept.push(current);
          current = [];
        }
      }
    }
    if (current.length > 0) kept.push(current);
    this.#chunks = kept;
    this.#size -= removed;
    return removed;
  }

  /** The smallest key. */
  first(): T | undefined {
    return this.#chunks[0]?.[0];
  }

  /** The largest key. */
  last(): T | undefined {
    const chunk = this.#chunks[this.#chunks.length - 1];
    return chunk?.[chunk.length - 1];
  }

  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }

  /** Every key in order (a copy: safe to keep across changes). */
  toArray(): T[] {
    return this.#chunks.flat();
  }

  /**
   * The first position whose key meets `atOrAfter`, a predicate false for a prefix of the list
   * and true for the rest (a lower bound); the end when no key meets it.
   */
  seek(atOrAfter: (key: T) => boolean): Position {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid] as T[];
      if (atOrAfter(chunk[chunk.length - 1] as T)) hi = mid;
      else lo = mid + 1;
    }
    if (lo === chunks.length) return { c: lo, i: 0 };
    const chunk = chunks[lo] as T[];
    let a = 0;
    let b = chunk.length - 1; // the last key meets the predicate
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (atOrAfter(chunk[mid] as T)) b = mid;
      else a = mid + 1;
    }
    return { c: lo, i: a };
  }

  /** How many keys lie in `[from, to)`, counting no further than `cap` (cost: chunks spanned). */
  countBetween(from: Position, to: Position, cap = Infinity): number {
    if (!before(from, to)) return 0;
    if (from.c === to.c) return to.i - from.i;
    const chunks = this.#chunks;
    let n = (chunks[from.c] as T[]).length - from.i;
    for (let c = from.c + 1; c < to.c && n < cap; c++) n += (chunks[c] as T[]).length;
    return n + to.i;
  }

  /**
   * About how many keys lie in `[from, to)`, in O(1): exact within one chunk or two neighbours,
   * else the chunks between counted at the average chunk size. 0 only when the range is empty.
   */
  estimateBetween(from: Position, to: Position): number {
    if (!before(from, to)) return 0;
    if (from.c === to.c) return to.i - from.i;
    const chunks = this.#chunks;
    const ends = (chunks[from.c] as T[]).length - from.i + to.i;
    return ends + ((to.c - from.c - 1) * this.#size) / chunks.length;
  }

  /** Walks `[from, to)` upwards (`ascending`) or downwards from the key before `to`. */
  walk(from: Position, to: Position, ascending: boolean): Walker<T> {
    if (!before(from, to)) return EMPTY;
    const chunks = this.#chunks;
    if (ascending) {
      let c = from.c;
      let i = from.i;
      let chunk = chunks[c] as T[];
      return {
        next: () => {
          if (c > to.c || (c === to.c && i >= to.i)) return undefined;
          const key = chunk[i++] as T;
          if (i === chunk.length) {
            c++;
            i = 0;
            chunk = chunks[c] as T[];
          }
          return key;
        },
      };
    }
    // Downwards: start at the key just before `to`.
    let c = to.c;
    let i = to.i - 1;
    if (i < 0) {
      c--;
      i = (chunks[c] as T[]).length - 1;
    }
    let chunk = chunks[c] as T[];
    return {
      next: () => {
        if (c < from.c || (c === from.c && i < from.i)) return undefined;
        const key = chunk[i--] as T;
        if (i < 0 && c > 0) {
          c--;
          chunk = chunks[c] as T[];
          i = chunk.length - 1;
        } else if (i < 0) {
          c = -1;
        }
        return key;
      },
    };
  }

  /** The start of the list. */
  get start(): Position {
    return { c: 0, i: 0 };
  }

  /** The end of the list (past the last key). */
  get end(): Position {
    return { c: this.#chunks.length, i: 0 };
  }

  /** The chunk that holds `key` or would: the first whose last key is not less than it (or the last). */
  #chunkFor(key: T): number {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid] as T[];
      if (this.#cmp(chunk[chunk.length - 1] as T, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #offsetIn(chunk: readonly T[], key: T): number {
    let lo = 0;
    let hi = chunk.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cmp(chunk[mid] as T, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Folds the small chunk `c` into a neighbour when the two fit in one chunk. */
  #mergeSmall(c: number): void {
    const chunks = this.#chunks;
    const chunk = chunks[c] as T[];
    const next = chunks[c + 1];
    if (next !== undefined && chunk.length + next.length <= this.#chunk) {
      chunks[c] = chunk.concat(next);
      chunks.splice(c + 1, 1);
      return;
    }
    const prev = chunks[c - 1];
    if (prev !== undefined && chunk.length + prev.length <= this.#chunk) {
      for (const key of chunk) prev.push(key);
      chunks.splice(c, 1);
    }
  }
}

function before(a: Position, b: Position): boolean {
  return a.c < b.c || (a.c === b.c && a.i < b.i);
}
