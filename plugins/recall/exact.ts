/**
 * The exact index: every vector in one growable Float32Array, scored by a plain loop. It is the
 * reference every other index is measured against, answers filtered searches over a candidate
 * list, and serves any metric (the ANN graph is built for one).
 */

/** How vectors are compared. Scores are "higher is closer" for all three. */
export type Metric = "cosine" | "dot" | "l2";
export const METRICS: readonly Metric[] = ["cosine", "dot", "l2"];

/** One search result: a datum id and its score (cosine: similarity; dot: the product; l2: minus the Euclidean distance). */
export interface Hit {
  readonly id: string;
  readonly score: number;
}

/** What the index keeps per vector besides the numbers: the datum's `createdAt` (to notice a deleted and re-put id). */
export interface VectorEntry {
  readonly id: string;
  readonly createdAt: number;
  readonly vector: Float32Array;
}

/** Best first; equal scores by id (code unit order), so results are reproducible. */
export function compareHits(a: Hit, b: Hit): number {
  return b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Keeps the best `k` hits seen: a bounded array kept sorted (k ≤ 1000, and most candidates lose
 * against the current worst, which is one comparison).
 */
export class TopK {
  readonly #k: number;
  readonly hits: Hit[] = [];
  constructor(k: number) {
    this.#k = k;
  }
  /** The score a new hit must beat (or tie, with a smaller id) to enter; -Infinity until full. */
  get floor(): number {
    return this.hits.length < this.#k ? -Infinity : (this.hits[this.hits.length - 1] as Hit).score;
  }
  offer(id: string, score: number): void {
    const hits = this.hits;
    if (hits.length === this.#k) {
      const worst = hits[hits.length - 1] as Hit;
      if (score < worst.score || (score === worst.score && id >= worst.id)) return;
      hits.pop();
    }
    const hit = { id, score };
    let lo = 0;
    let hi = hits.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareHits(hits[mid] as Hit, hit) <= 0) lo = mid + 1;
      else hi = mid;
    }
    hits.splice(lo, 0, hit);
  }
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (v[i] as number);
  return Math.sqrt(s);
}

export class ExactIndex {
  readonly dimensions: number;
  #data: Float32Array;
  #norms: Float64Array;
  #createdAt: Float64Array;
  #ids: string[] = [];
  readonly #slots = new Map<string, number>();

  constructor(dimensions: number, capacity = 256) {
    this.dimensions = dimensions;
    this.#data = new Float32Array(capacity * dimensions);
    this.#norms = new Float64Array(capacity);
    this.#createdAt = new Float64Array(capacity);
  }

  get size(): number {
    return this.#ids.length;
  }

  has(id: string): boolean {
    return this.#slots.has(id);
  }

  /** The `createdAt` recorded with `id`'s vector, or undefined. */
  createdAt(id: string): number | undefined {
    const slot = this.#slots.get(id);
    return slot === undefined ? undefined : this.#createdAt[slot];
  }

  /** A copy of `id`'s vector, or undefined. */
  vector(id: string): Float32Array | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    const d = this.dimensions;
    return this.#data.slice(slot * d, slot * d + d);
  }

  ids(): IterableIterator<string> {
    return this.#slots.keys();
  }

  *entries(): IterableIterator<VectorEntry> {
    const d = this.dimensions;
    for (let slot = 0; slot < this.#ids.length; slot++) {
      yield { id: this.#ids[slot] as string, createdAt: this.#createdAt[slot] as number, vector: this.#data.subarray(slot * d, slot * d + d) };
    }
  }

  /** Bytes held for the vectors and their bookkeeping (typed arrays at their capacity, ids, map entries). */
  bytes(): number {
    let ids = 0;
    for (const id of this.#ids) ids += id.length * 2 + 64;
    return this.#data.byteLength + this.#norms.byteLength + this.#createdAt.byteLength + ids;
  }

  /** Adds or replaces `id`'s vector. */
  set(id: string, createdAt: number, vector: Float32Array): void {
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      slot = this.#ids.length;
      if (slot === this.#norms.length) this.#grow();
      this.#ids.push(id);
      this.#slots.set(id, slot);
    }
    this.#data.set(vector, slot * this.dimensions);
    this.#norms[slot] = norm(vector);
    this.#createdAt[slot] = createdAt;
  }

  /** Removes `id` (the last slot moves into its place). True when it was there. */
  delete(id: string): boolean {
    const slot = this.#slots.get(id);
    if (slot === undefined) return false;
    const last = this.#ids.length - 1;
    const d = this.dimensions;
    if (slot !== last) {
      const moved = this.#ids[last] as string;
      this.#data.copyWithin(slot * d, last * d, last * d + d);
      this.#norms[slot] = this.#norms[last] as number;
      this.#createdAt[slot] = this.#createdAt[last] as number;
      this.#ids[slot] = moved;
      this.#slots.set(moved, slot);
    }
    this.#ids.pop();
    this.#slots.delete(id);
    return true;
  }

  clear(): void {
    this.#ids = [];
    this.#slots.clear();
  }

  #grow(): void {
    const capacity = this.#norms.length * 2;
    const data = new Float32Array(capacity * this.dimensions);
    data.set(this.#data);
    this.#data = data;
    const norms = new Float64Array(capacity);
    norms.set(this.#norms);
    this.#norms = norms;
    const createdAt = new Float64Array(capacity);
    createdAt.set(this.#createdAt);
    this.#createdAt = createdAt;
  }

  /**
   * The best `k` of all vectors, or of `candidates` (ids; those not indexed are skipped), by
   * `metric`. Brute force: every candidate is scored.
   */
  search(query: Float32Array, k: number, metric: Metric, candidates?: Iterable<string>): Hit[] {
    const top = new TopK(k);
    const qNorm = norm(query);
    if (candidates === undefined) {
      for (let slot = 0; slot < this.#ids.length; slot++) top.offer(this.#ids[slot] as string, this.#score(query, qNorm, slot, metric));
    } else {
      for (const id of candidates) {
        const slot = this.#slots.get(id);
        if (slot !== undefined) top.offer(id, this.#score(query, qNorm, slot, metric));
      }
    }
    return top.hits;
  }

  /** The score of `id` against `query`, or undefined when it is not indexed. */
  score(id: string, query: Float32Array, metric: Metric): number | undefined {
    const slot = this.#slots.get(id);
    return slot === undefined ? undefined : this.#score(query, norm(query), slot, metric);
  }

  #score(q: Float32Array, qNorm: number, slot: number, metric: Metric): number {
    const data = this.#data;
    const d = this.dimensions;
    const o = slot * d;
    if (metric === "l2") {
      let s = 0;
      for (let j = 0; j < d; j++) {
        const diff = (data[o + j] as number) - (q[j] as number);
        s += diff * diff;
      }
      return -Math.sqrt(s);
    }
    // Four accumulators: independent chains the CPU can overlap.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let j = 0;
    for (; j + 3 < d; j += 4) {
      s0 += (data[o + j] as number) * (q[j] as number);
      s1 += (data[o + j + 1] as number) * (q[j + 1] as number);
      s2 += (data[o + j + 2] as number) * (q[j + 2] as number);
      s3 += (data[o + j + 3] as number) * (q[j + 3] as number);
    }
    for (; j < d; j++) s0 += (data[o + j] as number) * (q[j] as number);
    const dot = s0 + s1 + s2 + s3;
    if (metric === "dot") return dot;
    const n = (this.#norms[slot] as number) * qNorm;
    return n === 0 ? 0 : dot / n;
  }
}
