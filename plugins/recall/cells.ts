/**
 * Cells for the sqlite-vec storage (an IVF-style partitioning): k-means centroids of the stored
 * vectors, each vector kept in the partition of its nearest centroid (a vec0 `partition key`), and
 * a search that runs sqlite-vec's KNN in the few cells nearest the query only. Deterministic: the
 * same vectors give the same centroids.
 *
 * Cosine tables use spherical k-means (unit vectors, nearest by dot product); L2 tables plain
 * k-means (nearest by squared distance).
 */

/** The number of cells for `n` vectors: about √n ÷ 3 (~105 at 100 000, ~950 vectors a cell), at least 2. */
export function cellCount(n: number): number {
  return Math.max(2, Math.round(Math.sqrt(n) / 3));
}

export type CellMetric = "cosine" | "l2";

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += (v[j] as number) * (v[j] as number);
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  return Float32Array.from(v, (x) => x * inv);
}

/** A fixed set of centroids and the nearest-centroid search over them. */
export class Cells {
  readonly centroids: readonly Float32Array[];
  readonly metric: CellMetric;

  constructor(centroids: readonly Float32Array[], metric: CellMetric) {
    this.centroids = centroids;
    this.metric = metric;
  }

  get size(): number {
    return this.centroids.length;
  }

  /** How close `v` is to centroid `c`: larger is closer. */
  #closeness(v: Float32Array, c: Float32Array): number {
    let s = 0;
    if (this.metric === "cosine") {
      for (let j = 0; j < v.length; j++) s += (v[j] as number) * (c[j] as number);
      return s;
    }
    for (let j = 0; j < v.length; j++) {
      const d = (v[j] as number) - (c[j] as number);
      s += d * d;
    }
    return -s;
  }

  /** The cell of `v` (for cosine, `v` need not be unit: the order is the same). */
  nearest(v: Float32Array): number {
    let best = 0;
    let bestScore = -Infinity;
    this.centroids.forEach((c, i) => {
      const s = this.#closeness(v, c);
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    });
    return best;
  }

  /** The `p` cells nearest `q`, nearest first. */
  probes(q: Float32Array, p: number): number[] {
    return this.centroids
      .map((c, i) => [this.#closeness(q, c), i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, p)
      .map(([, i]) => i);
  }

  /**
   * Centroids for `vectors` (Lloyd's algorithm, `iterations` rounds on an evenly spaced sample of
   * at most 64 vectors a cell, started from evenly spaced members of the sample).
   */
  static train(vectors: readonly Float32Array[], cells: number, metric: CellMetric, iterations = 8): Cells {
    const n = vectors.length;
    const k = Math.max(1, Math.min(cells, n));
    const m = Math.min(n, 64 * k);
    const prep = (v: Float32Array) => (metric === "cosine" ? unit(v) : v);
    const sample = Array.from({ length: m }, (_, i) => prep(vectors[Math.floor((i * n) / m)] as Float32Array));
    const dims = sample[0]?.length ?? 0;
    let cs = new Cells(Array.from({ length: k }, (_, i) => Float32Array.from(sample[Math.floor((i * m) / k)] as Float32Array)), metric);
    for (let round = 0; round < iterations; round++) {
      const sums = Array.from({ length: k }, () => new Float64Array(dims));
      const counts = new Int32Array(k);
      for (const v of sample) {
        const c = cs.nearest(v);
        counts[c] = (counts[c] as number) + 1;
        const sum = sums[c] as Float64Array;
        for (let j = 0; j < dims; j++) sum[j] = (sum[j] as number) + (v[j] as number);
      }
      cs = new Cells(
        cs.centroids.map((old, c) => {
          const count = counts[c] as number;
          if (count === 0) return old;
          const mean = Float32Array.from(sums[c] as Float64Array, (x) => x / count);
          return metric === "cosine" ? unit(mean) : mean;
        }),
        metric,
      );
    }
    return cs;
  }
}
