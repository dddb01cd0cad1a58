import type { Datum } from "../../core/datum.js";

/**
 * Decides whether a value read from the tiers (or just written) may enter the cache, so that a
 * read or write racing a delete of the same id never re-caches a deleted datum.
 *
 * Every delete bumps a sequence number when it starts and again when it ends, and remembers the
 * last bump per id. A read or write records the sequence number when it starts; its result may be
 * cached only if no delete of that id bumped the sequence after that start. The per-id memory is
 * bounded: forgetting an id raises a floor that every older operation counts as a delete, which
 * only ever skips a fill, never allows a stale one.
 */
export class FillGuard {
  #seq = 0;
  #floor = 0;
  readonly #lastDelete = new Map<string, number>();
  readonly #reads = new Map<string, number[]>();
  #pendingReads = 0;
  readonly #writes = new WeakMap<Datum, number>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** A delete (ours, another process's, or an eviction) of `id` starts or ends. */
  deleted(id: string): void {
    const seq = ++this.#seq;
    this.#lastDelete.delete(id);
    this.#lastDelete.set(id, seq);
    if (this.#lastDelete.size > this.#limit) {
      const [oldest, at] = this.#lastDelete.entries().next().value as [string, number];
      this.#lastDelete.delete(oldest);
      this.#floor = Math.max(this.#floor, at);
    }
  }

  /** A get of `id` missed the cache and goes to the tiers. */
  readStarted(id: string): void {
    if (this.#pendingReads >= this.#limit) {
      // Reads that failed never finish; rather than grow, forget them all (their fills are skipped).
      this.#reads.clear();
      this.#pendingReads = 0;
    }
    const starts = this.#reads.get(id);
    if (starts) starts.push(this.#seq);
    else this.#reads.set(id, [this.#seq]);
    this.#pendingReads++;
  }

  /** The tiers answered a get of `id`: may the answer be cached? */
  readFinished(id: string): boolean {
    const starts = this.#reads.get(id);
    if (!starts || starts.length === 0) return false;
    // Which of the concurrent reads this is cannot be known: check against the earliest start and
    // retire the latest, so every remaining start is at most the true one (conservative).
    let min = Infinity;
    let maxAt = 0;
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i] as number;
      if (s < min) min = s;
      if (s >= (starts[maxAt] as number)) maxAt = i;
    }
    starts.splice(maxAt, 1);
    if (starts.length === 0) this.#reads.delete(id);
    this.#pendingReads--;
    return this.#allowed(id, min);
  }

  /** A datum is about to be written (after every other `beforePut` transform). */
  writeStarted(datum: Datum): void {
    this.#writes.set(datum, this.#seq);
  }

  /** The datum was stored: may it be cached? */
  writeFinished(datum: Datum): boolean {
    const start = this.#writes.get(datum);
    if (start === undefined) return false;
    this.#writes.delete(datum);
    return this.#allowed(datum.id, start);
  }

  #allowed(id: string, start: number): boolean {
    return (this.#lastDelete.get(id) ?? this.#floor) <= start;
  }
}
