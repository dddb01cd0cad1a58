/**
 * Start times of operations in flight, keyed by what both hooks of the operation see (an id, a
 * list's options). A call that fails between the two hooks never finishes its entry, so the
 * table is bounded: at most `MAX_PER_KEY` starts per key and `MAX_KEYS` keys, the oldest dropped.
 * The newest start is taken first: a start left behind by a failed call is never paired with a
 * later call of the same key; concurrent calls of one key may pair crosswise, which leaves the
 * sum and count of the histogram unchanged.
 */
const MAX_PER_KEY = 32;
const MAX_KEYS = 4096;

export class Pending {
  readonly #starts = new Map<string, number | number[]>();

  get size(): number {
    return this.#starts.size;
  }

  start(key: string, at: number): void {
    const have = this.#starts.get(key);
    if (have === undefined) {
      if (this.#starts.size >= MAX_KEYS) {
        const oldest = this.#starts.keys().next();
        if (!oldest.done) this.#starts.delete(oldest.value);
      }
      this.#starts.set(key, at);
    } else if (typeof have === "number") {
      this.#starts.set(key, [have, at]);
    } else {
      if (have.length >= MAX_PER_KEY) have.shift();
      have.push(at);
    }
  }

  /** The newest start of `key`, removed; `undefined` when none is pending. */
  finish(key: string): number | undefined {
    const have = this.#starts.get(key);
    if (have === undefined) return undefined;
    if (typeof have === "number") {
      this.#starts.delete(key);
      return have;
    }
    const at = have.pop();
    if (have.length === 0) this.#starts.delete(key);
    return at;
  }
}

/**
 * The `q` quantile (0…1) of a cumulative histogram given as `[upperBound, cumulativeCount]`
 * pairs (the last bound `Infinity`), interpolated linearly inside the bucket it falls in — what
 * Prometheus' `histogram_quantile` does. A quantile in the `+Inf` bucket is the highest finite
 * bound. `null` when the histogram is empty.
 */
export function quantileFromBuckets(q: number, buckets: readonly (readonly [number, number])[]): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      if (count === lowerCount) return bound;
      return lowerBound + (bound - lowerBound) * ((rank - lowerCount) / (count - lowerCount));
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}
